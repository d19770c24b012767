"""The keys of a signal's metadata that the workers copy into columns, and what each may hold.

Seed 000's signals name only the prompt; a client ties one to a version by naming, in
its metadata, the version (``version``), its content hash (``version_hash``) or a trace a
usage link ties to one (``trace_id``), and the workers copy those into the ``version``
(UInt32), ``version_hash`` and ``trace_id`` (UUID) columns of ``signal_events``. Seed 000
lets metadata be any JSON object, so a value that does not name a version (an app's
``"version": "1.2.3"``, a trace id of another shape) is the client's own data: kept in the
``metadata`` column as sent, it names nothing. But a value that names one (a number, a
``"v4"``, a ``sha256:`` hash) that the column cannot hold faithfully (a version beyond
UInt32, a hash of another length) would be stored as "no version", and the signal would
silently count for none: so the edge refuses it (422 naming ``metadata.version`` etc.),
and a record holding one is poison to the workers. ``null`` is the same as leaving the key
out. The edge and the workers read the keys with these same functions, so what one
accepts the other stores.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

UINT32_MAX = 2**32 - 1
VERSION_KEY, HASH_KEY, TRACE_KEY = "version", "version_hash", "trace_id"
_VERSION_TEXT = re.compile(r"[vV]?([0-9]+)")
_HASH_TEXT = re.compile(r"sha256:[0-9a-f]{64}")
_UUID = TypeAdapter(uuid.UUID)

NamedColumns = tuple[int, str, uuid.UUID | None]
"""(version number, content hash, trace id); 0, "" and None for a key not named."""


def named_version(value: Any) -> int:
    """The version number ``value`` names (0 for none), or ValueError if it names one that
    does not fit.

    A number names a version, and must be an integer from 1 to 4294967295 (0 would read as
    "no version", and more does not fit UInt32); so must a string spelling one (``"4"``,
    ``"v4"``; blanks around it are ignored). Any other value names none.
    """
    number: int | None = None
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int | float):
        number = int(value) if isinstance(value, int) else None
    elif isinstance(value, str) and (match := _VERSION_TEXT.fullmatch(value.strip())):
        number = int(match.group(1))
    else:
        return 0
    if number is None or not 1 <= number <= UINT32_MAX:
        raise ValueError(
            f"must be a version number: an integer from 1 to {UINT32_MAX}, "
            'or a string such as "4" or "v4"'
        )
    return number


def named_hash(value: Any) -> str:
    """The content hash ``value`` names ("" for none), or ValueError for a ``sha256:`` value
    that is not one (a content hash is ``sha256:`` and 64 lowercase hex digits)."""
    if not isinstance(value, str) or value[:7].lower() != "sha256:":
        return ""
    if _HASH_TEXT.fullmatch(value):
        return value
    raise ValueError("must be a content hash: 'sha256:' and 64 lowercase hex digits")


def named_trace(value: Any) -> uuid.UUID | None:
    """The trace ``value`` names: a UUID string, in the spellings the usage route takes for
    its ``trace_id``, so that the signal joins the links that name the same trace. Any other
    value (a trace id of another system's shape) names none."""
    if isinstance(value, str):
        try:
            return _UUID.validate_python(value)
        except ValidationError:
            return None
    return None


_READERS = ((VERSION_KEY, named_version), (HASH_KEY, named_hash), (TRACE_KEY, named_trace))


def named_columns(metadata: Mapping[str, Any] | None) -> NamedColumns:
    """What ``metadata`` names for the three columns; ValueError (naming the key) if unfit."""
    if not metadata:
        return 0, "", None
    values: list[Any] = []
    for key, reader in _READERS:
        try:
            values.append(reader(metadata.get(key)))
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    return values[0], values[1], values[2]


def check_named_columns(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` unchanged, or a validation error located at the key at fault.

    The error's location is the key (``metadata.version`` in the answer), so a client
    is told which key to fix, as for any other field.
    """
    problems = []
    for key, reader in _READERS:
        try:
            reader(metadata.get(key))
        except ValueError as error:
            problems.append(
                InitErrorDetails(
                    type=PydanticCustomError("metadata_column", str(error)),
                    loc=(key,),
                    input=metadata.get(key),
                )
            )
    if problems:
        raise ValidationError.from_exception_data("metadata", problems)
    return metadata
