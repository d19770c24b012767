"""Server-side query parameters: the ``param_NAME`` values for ``{NAME:Type}`` placeholders.

No substitution happens here. chDB binds ``{name:Type}`` itself (``query(..., params=)``)
through ClickHouse's own ReplaceQueryParameterVisitor, parsing each value as the
escaped text of its type exactly as the real server does; so a value is passed on
verbatim, as clickhouse-connect formatted it (``a\\'b`` strings, ``['x', 'y']`` arrays,
``\\N`` for NULL), and chDB reports type errors and missing values with the real codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PREFIX = "param_"
# ClickHouse parameter names are bare words; anything else could never match a placeholder.
_NAME = re.compile(r"[A-Za-z0-9_$]+")


def is_param(key: str) -> bool:
    """Whether a URL or form field is a query parameter rather than a setting."""
    return key.startswith(PREFIX)


def query_params(fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{name: value}`` for every ``param_name`` field; the first of repeated fields wins."""
    params: dict[str, str] = {}
    for key, value in fields:
        name = key[len(PREFIX) :]
        if is_param(key) and _NAME.fullmatch(name) and name not in params:
            params[name] = value
    return params
