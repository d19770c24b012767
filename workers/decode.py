"""Turning a Kafka record into a table row, or into a reason to dead-letter it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.validation import describe_validation_error
from workers.fast_decode import fast_row
from workers.tables import Lineage, TableSpec, Unstorable


@dataclass(frozen=True, slots=True)
class Poison:
    """A record no worker can store, and why."""

    reason: str


def decode(spec: TableSpec, value: bytes | None, lineage: Lineage) -> list[Any] | Poison:
    """The row for ``value``, or a :class:`Poison` naming what is wrong with it."""
    if value is None:
        return Poison("empty record")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        return Poison(f"undecodable JSON: {error}")
    if not isinstance(data, dict):
        return Poison("record is not a JSON object")
    if data.get("v") != 1:
        return Poison(f"unsupported schema version {data.get('v')!r}")
    row = fast_row(spec, data, lineage)
    return row if row is not None else reference_row(spec, data, lineage)


def reference_row(spec: TableSpec, data: dict[str, Any], lineage: Lineage) -> list[Any] | Poison:
    """The row the pydantic record model and ``spec.to_row`` make of ``data``, or why not:
    the reference for every record the fast path (``workers.fast_decode``) does not vouch for."""
    try:
        record = spec.record.model_validate(data)
    except ValidationError as error:
        return Poison(f"schema mismatch: {describe_validation_error(error)[1]}")
    try:
        return spec.to_row(record, lineage)
    except Unstorable as error:
        return Poison(f"unstorable: {error}")
