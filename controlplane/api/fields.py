"""Field types of request bodies, with the limits the store's columns impose.

PostgreSQL rejects NUL characters in text and strings longer than a ``VARCHAR``; checking
here turns what would be a database error (a 500) into a clear 4xx naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from controlplane.api.references import MAX_NAME_LENGTH, MAX_VERSION_NUMBER

MAX_TEXT_LENGTH = 10_000
MAX_CONTENT_LENGTH = 500_000
MAX_LABEL_LENGTH = 200

_NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f/]+")
"""No ``/`` and no control character: C0 (U+0000 to U+001F), DEL and C1 (U+0080 to U+009F),
Unicode's whole ``Cc`` category, which terminals and logs would act on or hide."""
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _name(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if not _NAME.fullmatch(value):
        raise ValueError("must not contain '/' or control characters")
    return value


def _variable(value: str) -> str:
    if not _VARIABLE.fullmatch(value):
        raise ValueError("must be a variable name such as 'customer_name' or 'user.country'")
    return value


Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_name)
]
"""A prompt name: used in URL paths, so no ``/``; no control characters (C0, DEL or C1)."""

Content = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_CONTENT_LENGTH), AfterValidator(_no_nul)
]
"""A prompt's text: not empty."""

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH), AfterValidator(_no_nul)]
"""Free text such as a description or a commit message; may be empty."""

Label = Annotated[str, StringConstraints(max_length=MAX_LABEL_LENGTH), AfterValidator(_no_nul)]
"""A deployment label (a 200-character column)."""

Variable = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_variable)
]
"""A template variable name, as ``{{name}}`` placeholders spell it."""

VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION_NUMBER)]
"""An explicit version number (seed 002), within the column's range."""
