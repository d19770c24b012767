"""Records of the usual shape straight to rows, without a pydantic model per record.

Validating each record with its pydantic model cost about a fifth of a worker's CPU. The
edge writes every record in one shape (``RecordBase.to_bytes``: canonical UUIDs, UTC
milliseconds with "Z", floats as floats), so :func:`fast_row` checks that shape by hand and
builds the row ``spec.to_row`` would build from the validated model: the same values of the
same types. Anything else (a field missing, extra or of another type, a UUID or time in
another spelling, a number outside its domain or column) gets None, and ``workers.decode``
runs the pydantic models on that record: they stay the reference, deciding every record the
fast path does not vouch for, so what is stored or dead-lettered never depends on how much
of the models this file replicates (``tests/workers/test_fast_decode.py`` holds it to that).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic_core import TzInfo

from schemas.domains import COST_USD, LATENCY_MS, SCORE, Domain
from schemas.exposures import MAX_RULE_LENGTH, MAX_UNIT_ID_LENGTH
from schemas.usage import MAX_VERSION_NUMBER
from workers.tables import (
    ANALYTICS,
    EARLIEST,
    EXPOSURES,
    LATEST,
    NEVER_DEPLOYED,
    SIGNALS,
    UINT32_MAX,
    UINT64_MAX,
    USAGE,
    Lineage,
    TableSpec,
    Unstorable,
    signal_version,
    usage_key,
)

UTC_TZ = TzInfo(0)
"""The tzinfo pydantic gives a time ending in "Z": a row's ``received_at`` carries the same."""
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_TIME_TEXT = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-[0-3][0-9]T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"
)
_HASH_TEXT = re.compile(r"sha256:[0-9a-f]{64}")
_EARLIEST_TEXT = EARLIEST.isoformat(timespec="milliseconds").replace("+00:00", "Z")
_LATEST_TEXT = LATEST.isoformat(timespec="milliseconds").replace("+00:00", "Z")
"""DateTime64's range in the wire form, whose fixed width makes text order time order."""
_MILLIS = {f"{n:03d}": timedelta(milliseconds=n) for n in range(1000)}
_SECONDS_KEPT = 4_096
_seconds: dict[str, datetime] = {}
_SAFE = uuid.SafeUUID.unknown
_new = object.__new__
_set = object.__setattr__
_IDS_KEPT = 4_096
"""Ids that repeat across records (org, project, prompt, deployment) parsed once."""
_ids: dict[str, uuid.UUID] = {}


class _Unusual(Exception):
    """The record is not of the usual shape: the pydantic models decide it."""


def _parse_uuid(value: Any) -> uuid.UUID:
    if type(value) is not str or _UUID_TEXT.fullmatch(value) is None:
        raise _Unusual
    # uuid.UUID() is pure Python with every spelling's branches; this is the hyphenated one.
    parsed = _new(uuid.UUID)
    _set(parsed, "int", int(value.replace("-", ""), 16))
    _set(parsed, "is_safe", _SAFE)
    return parsed


def _known_uuid(value: Any) -> uuid.UUID:
    known = _ids.get(value) if type(value) is str else None
    if known is None:
        known = _parse_uuid(value)
        if len(_ids) >= _IDS_KEPT:
            _ids.clear()
        _ids[value] = known
    return known


def _optional_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else _parse_uuid(value)


def _time(value: Any) -> datetime:
    # A batch's times share their seconds: each second is parsed and checked once, and its
    # milliseconds added (datetime.replace and aware comparisons cost a microsecond or more).
    if type(value) is not str or len(value) != 24 or value[19] != "." or value[23] != "Z":
        raise _Unusual
    second = _seconds.get(value[:19])
    millis = _MILLIS.get(value[20:23])
    if second is None:
        second = _second(value)
    if millis is None or not _EARLIEST_TEXT <= value <= _LATEST_TEXT:
        raise _Unusual  # Unstorable if out of range: the reference path words it
    return second + millis


def _second(value: str) -> datetime:
    if _TIME_TEXT.fullmatch(value) is None:
        raise _Unusual
    try:
        naive = datetime.fromisoformat(value[:19])
    except ValueError:  # a day the month does not have
        raise _Unusual from None
    second = datetime(*naive.timetuple()[:6], 0, UTC_TZ)
    if len(_seconds) >= _SECONDS_KEPT:
        _seconds.clear()
    _seconds[value[:19]] = second
    return second


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Unusual
    return value


def _number(value: Any, domain: Domain) -> float | None:
    if value is None or (type(value) is float and domain.holds(value)):
        return value
    raise _Unusual


def _integer(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _Unusual
    return value


def _dedup_key(data: dict[str, Any], event_text: str) -> str:
    key = data.get("idempotency_key")
    if key is None:
        return event_text.lower()  # str(UUID) of a canonical spelling
    if type(key) is not str:
        raise _Unusual
    return key or event_text.lower()


_BASE_KEYS = frozenset({"v", "event_id", "received_at", "org_id", "project_id", "idempotency_key"})
_ANALYTICS_KEYS = _BASE_KEYS | {
    "kind",
    "prompt_id",
    "version_hash",
    "latency_ms",
    "cost_usd",
    "score",
}
_SIGNAL_KEYS = _BASE_KEYS | {"kind", "signal_id", "prompt_id", "value", "metadata"}
_USAGE_KEYS = _BASE_KEYS | {
    "kind",
    "prompt_id",
    "prompt_name",
    "version",
    "version_hash",
    "trace_id",
    "span_id",
}
_EXPOSURE_KEYS = _BASE_KEYS | {
    "kind",
    "prompt_id",
    "version",
    "version_hash",
    "deployment_id",
    "rule",
    "by_split",
    "unit_id",
    "source",
}


def _common(data: dict[str, Any], keys: frozenset[str], kind: str) -> None:
    if type(data["v"]) is not int or not keys.issuperset(data) or data.get("kind", kind) != kind:
        raise _Unusual


def _head(data: dict[str, Any], event_text: str) -> tuple[Any, ...]:
    """The columns every raw table starts with: event, time, organisation, project, prompt."""
    return (
        _parse_uuid(event_text),
        _time(data["received_at"]),
        _known_uuid(data["org_id"]),
        _known_uuid(data["project_id"]),
        _known_uuid(data["prompt_id"]),
    )


def _analytics(data: dict[str, Any], lineage: Lineage) -> list[Any]:
    _common(data, _ANALYTICS_KEYS, "analytics")
    event_text = data["event_id"]
    return [
        *_head(data, event_text),
        _text(data["version_hash"]),
        _number(data.get("latency_ms"), LATENCY_MS),
        _number(data.get("cost_usd"), COST_USD),
        _number(data.get("score"), SCORE),
        _dedup_key(data, event_text),
        lineage.partition,
        lineage.offset,
    ]


def _signal(data: dict[str, Any], lineage: Lineage) -> list[Any]:
    _common(data, _SIGNAL_KEYS, "signal")
    event_text = data["event_id"]
    value = data["value"]
    if value != "positive" and value != "negative":
        raise _Unusual
    metadata = data.get("metadata")
    if metadata is not None and type(metadata) is not dict:
        raise _Unusual
    try:
        number, digest, trace_id = signal_version(metadata)
    except Unstorable:
        raise _Unusual from None
    return [
        *_head(data, event_text),
        _integer(data["signal_id"], 0, UINT64_MAX),
        value,
        number,
        digest,
        trace_id,
        orjson.dumps(metadata or {}).decode(),
        _dedup_key(data, event_text),
        lineage.partition,
        lineage.offset,
    ]


def _usage(data: dict[str, Any], lineage: Lineage) -> list[Any]:
    _common(data, _USAGE_KEYS, "usage")
    event_text = data["event_id"]
    _dedup_key(data, "")  # the link's own key is its dedup key, but the record must be valid
    version = _integer(data["version"], 0, UINT32_MAX)
    trace_id = _parse_uuid(data["trace_id"])
    span_id = _optional_uuid(data.get("span_id"))
    return [
        *_head(data, event_text),
        _text(data["prompt_name"]),
        version,
        _text(data["version_hash"]),
        trace_id,
        span_id,
        usage_key(version, trace_id, span_id),
        lineage.partition,
        lineage.offset,
    ]


def _bounded_text(value: Any, longest: int) -> str:
    if type(value) is not str or not 1 <= len(value) <= longest:
        raise _Unusual
    return value


def _exposure_columns(data: dict[str, Any], lineage: Lineage) -> dict[str, Any]:
    _common(data, _EXPOSURE_KEYS, "exposure")
    event_text = data["event_id"]
    version_hash = data["version_hash"]
    if type(version_hash) is not str or _HASH_TEXT.fullmatch(version_hash) is None:
        raise _Unusual
    by_split = data["by_split"]
    source = data["source"]
    if type(by_split) is not bool or (source != "resolve" and source != "client"):
        raise _Unusual
    deployment = data.get("deployment_id")
    return {
        "event_id": _parse_uuid(event_text),
        "received_at": _time(data["received_at"]),
        "org_id": _known_uuid(data["org_id"]),
        "project_id": _known_uuid(data["project_id"]),
        "prompt_id": _known_uuid(data["prompt_id"]),
        "version": _integer(data["version"], 1, MAX_VERSION_NUMBER),
        "version_hash": version_hash,
        "deployment_id": NEVER_DEPLOYED if deployment is None else _known_uuid(deployment),
        "rule": _bounded_text(data["rule"], MAX_RULE_LENGTH),
        "by_split": by_split,
        "unit_id": _bounded_text(data["unit_id"], MAX_UNIT_ID_LENGTH),
        "source": source,
        "dedup_key": _dedup_key(data, event_text),
        "kafka_partition": lineage.partition,
        "kafka_offset": lineage.offset,
    }


_BUILDERS: dict[int, Callable[[dict[str, Any], Lineage], list[Any]]] = {
    id(ANALYTICS): _analytics,
    id(SIGNALS): _signal,
    id(USAGE): _usage,
}
"""By the identity of the spec replicated: a spec made otherwise (another record model, as an
older worker's in a test, or another ``to_row``) always takes the reference path."""


def fast_row(spec: TableSpec, data: dict[str, Any], lineage: Lineage) -> list[Any] | None:
    """``spec.to_row`` of the validated record ``data``, if ``data`` has the usual shape;
    None if the pydantic models must decide it (also every record they would refuse)."""
    try:
        if spec is EXPOSURES:
            columns = _exposure_columns(data, lineage)
            return [columns[name] for name in spec.columns]
        build = _BUILDERS.get(id(spec))
        return None if build is None else build(data, lineage)
    except (_Unusual, KeyError):
        return None
