"""An organisation's limit overrides: parsed and checked before they are stored.

``Organization.limit_overrides`` is read on every call (rate limits) and every signal
(monthly quota), where a bad value can only be ignored with a warning. So the admin
command checks each override up front and refuses what would be ignored:

- ``METHOD /path=LIMITS``: a rate limit replacing the plan's for one endpoint, e.g.
  ``POST /v1/resolve=2000/second`` or ``GET /prompts=100/minute;5000/hour`` (the
  ``limits`` notation; every limit must allow the call);
- ``signals_per_month=N``: the monthly signal quota, a whole number (seed 000).
"""

from __future__ import annotations

import re

from limits import parse_many

SIGNALS_PER_MONTH = "signals_per_month"
"""The quota override's key; ``ingest.quota`` reads it."""

_ENDPOINT = re.compile(r"(GET|POST|PUT|PATCH|DELETE) (/\S*)", re.IGNORECASE)


def override_name(name: str) -> str:
    """An override's name as stored: spaces collapsed, an endpoint's method upper-cased."""
    name = " ".join(name.split())
    matched = _ENDPOINT.fullmatch(name)
    return f"{matched.group(1).upper()} {matched.group(2)}" if matched else name


def parse_override(text: str) -> tuple[str, str | int]:
    """``NAME=VALUE`` as the (key, value) stored; raises ValueError saying what is wrong."""
    name, separator, value = text.partition("=")
    name, value = override_name(name), value.strip()
    if not separator or not name or not value:
        raise ValueError(f"{text!r}: expected NAME=VALUE, e.g. 'POST /v1/resolve=2000/second'")
    if name == SIGNALS_PER_MONTH:
        if not value.isdigit():
            raise ValueError(f"{text!r}: {SIGNALS_PER_MONTH} must be a whole number")
        return name, int(value)
    if _ENDPOINT.fullmatch(name) is None:
        raise ValueError(
            f"{text!r}: the name must be '{SIGNALS_PER_MONTH}' or an endpoint such as "
            "'POST /v1/resolve'"
        )
    try:
        parse_many(value)
    except ValueError as error:
        raise ValueError(
            f"{text!r}: {value!r} is not a rate limit such as '500/second' or '20/minute;1000/hour'"
        ) from error
    return name, value
