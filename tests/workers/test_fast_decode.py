"""The fast decode path against the pydantic reference, on valid and subtly invalid records.

Whenever ``fast_row`` answers, the reference must make the same row, value for value and type
for type; when it does not, ``decode`` must answer as the reference does. And a record in the
edge's own wire form must take the fast path, or the speed-up is lost without a test failing.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptline.topics import EventKind
from schemas.domains import COST_USD_MAX, LATENCY_MS_MAX, SCORE_MAX
from schemas.records import AnalyticsRecord, ExposureRecord, RecordBase, SignalRecord, UsageRecord
from workers.decode import Poison, decode, reference_row
from workers.fast_decode import fast_row
from workers.tables import TABLES, Lineage

LINEAGE = Lineage(3, 1234)
HASH = "sha256:" + "ab" * 32

ids = st.uuids()
moments = st.datetimes(
    min_value=datetime(1899, 12, 1), max_value=datetime(2300, 2, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
texts = st.text(max_size=12)
keys = st.one_of(st.none(), st.just(""), texts)


def domain(high: float, signed: bool) -> st.SearchStrategy[float | None]:
    magnitudes = st.one_of(st.just(0.0), st.just(-0.0), st.floats(1e-100, high))
    values = magnitudes.flatmap(lambda m: st.sampled_from([m, -m])) if signed else magnitudes
    return st.one_of(st.none(), values)


common = st.fixed_dictionaries(
    {
        "event_id": ids,
        "received_at": moments,
        "org_id": ids,
        "project_id": ids,
        "prompt_id": ids,
        "idempotency_key": keys,
    }
)
metadata_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**33),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["4", " v7 ", "V0", "1.2.3", HASH, "sha256:xyz", "SHA256:" + "0" * 64]),
    ids.map(str),
    ids.map(lambda value: value.hex.upper()),
    texts,
)
metadata = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["version", "version_hash", "trace_id", "app"]), metadata_values
    ),
)


@st.composite
def wire_records(draw: st.DrawFn) -> tuple[EventKind, dict[str, Any]]:
    """A record as the edge would put it on the wire (``to_bytes``), of any kind."""
    base: dict[str, Any] = draw(common)
    kind = draw(st.sampled_from(list(TABLES)))
    record: RecordBase
    if kind is EventKind.ANALYTICS:
        record = AnalyticsRecord.model_construct(
            **base,
            version_hash=draw(texts),
            latency_ms=draw(domain(LATENCY_MS_MAX, False)),
            cost_usd=draw(domain(COST_USD_MAX, False)),
            score=draw(domain(SCORE_MAX, True)),
        )
    elif kind is EventKind.SIGNAL:
        record = SignalRecord.model_construct(
            **base,
            signal_id=draw(st.integers(-1, 2**64 - 2)),
            value=draw(st.sampled_from(["positive", "negative"])),
            metadata=draw(metadata),
        )
    elif kind is EventKind.USAGE:
        record = UsageRecord.model_construct(
            **base,
            prompt_name=draw(texts),
            version=draw(st.integers(-1, 2**32)),
            version_hash=draw(texts),
            trace_id=draw(ids),
            span_id=draw(st.one_of(st.none(), ids)),
        )
    else:
        record = ExposureRecord.model_construct(
            **base,
            version=draw(st.integers(0, 2**31)),
            version_hash=draw(st.sampled_from([HASH, HASH.upper(), HASH + "\n", "sha256:1"])),
            deployment_id=draw(st.one_of(st.none(), ids)),
            rule=draw(st.text(max_size=3)),
            by_split=draw(st.booleans()),
            unit_id=draw(st.text(max_size=3)),
            source=draw(st.sampled_from(["resolve", "client"])),
        )
    return kind, orjson.loads(record.to_bytes())


def respellings(value: Any) -> list[Any]:
    """Other spellings of a wire value that some models may take and some not."""
    odd: list[Any] = [None, True, 1, 1.0, "", [], {}]
    if isinstance(value, str):
        odd += [value.upper(), value + " ", "\n" + value, value[:-1], value + "0"]
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            pass
        else:
            odd += [parsed.hex, f"{{{value}}}", f"urn:uuid:{value}", value.replace("-", "_")]
        if value.endswith("Z") and len(value) == 24:
            moment = datetime.fromisoformat(value)
            odd += [
                value[:-1],
                value[:-1] + "+00:00",
                value[:-1] + "+01:00",
                value.replace("T", " "),
                value[:19] + "Z",
                value[:23] + "456Z",
                moment.timestamp(),
                int(moment.timestamp()),
                value[:8] + "31" + value[10:],
                value[:11] + "24:00:00.000Z",
            ]
    if isinstance(value, bool):
        odd += [int(value), str(value).lower()]
    elif isinstance(value, int):
        odd += [float(value), str(value), value + 1, -1, 2**64 - 1, 2**32]
    elif isinstance(value, float):
        odd += [int(value), str(value), 1e-101, 1e300, -value]
    return odd


@st.composite
def mutated(draw: st.DrawFn) -> tuple[EventKind, dict[str, Any]]:
    """A wire record, perhaps with a field gone, respelled or added."""
    kind, data = draw(wire_records())
    change = draw(st.sampled_from(["none", "drop", "respell", "add", "null"]))
    names = sorted(data)
    if change == "drop":
        del data[draw(st.sampled_from(names))]
    elif change == "respell":
        name = draw(st.sampled_from(names))
        data[name] = draw(st.sampled_from(respellings(data[name])))
    elif change == "add":
        extra = ["extra", "kind", "v", "metadata", "span_id", "deployment_id", "latency_ms"]
        data[draw(st.sampled_from(extra))] = draw(st.sampled_from([None, 1, "analytics", {}]))
    elif change == "null":
        optional = ["idempotency_key", "latency_ms", "metadata", "span_id", "deployment_id"]
        data[draw(st.sampled_from(optional))] = None
    return kind, data


def same_row(fast: list[Any], reference: list[Any]) -> bool:
    """Equal value for value, of the same types (a time's tzinfo and a float's sign too)."""
    return len(fast) == len(reference) and all(
        type(a) is type(b) and repr(a) == repr(b) for a, b in zip(fast, reference, strict=True)
    )


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_the_fast_path_makes_the_reference_row_or_defers(case: tuple[EventKind, Any]) -> None:
    kind, data = case
    spec = TABLES[kind]
    reference = reference_row(spec, data, LINEAGE) if data.get("v") == 1 else None
    fast = fast_row(spec, data, LINEAGE) if data.get("v") == 1 else None
    if fast is not None:
        assert isinstance(reference, list), (data, reference)
        assert same_row(fast, reference), (data, fast, reference)
    decoded = decode(spec, orjson.dumps(data), LINEAGE)
    if isinstance(reference, list):
        assert isinstance(decoded, list) and same_row(decoded, reference)
    else:
        assert isinstance(decoded, Poison)


@settings(max_examples=400, deadline=None)
@given(wire_records())
def test_wire_records_that_fit_take_the_fast_path(case: tuple[EventKind, Any]) -> None:
    kind, data = case
    spec = TABLES[kind]
    reference = reference_row(spec, data, LINEAGE)
    if isinstance(reference, list):
        fast = fast_row(spec, data, LINEAGE)
        assert fast is not None, data
        assert same_row(fast, reference)


def test_a_bench_shaped_batch_is_all_fast() -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    org, project, prompt = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for n in range(50):
        record = AnalyticsRecord(
            event_id=uuid.uuid4(),
            received_at=start + timedelta(milliseconds=n),
            org_id=org,
            project_id=project,
            prompt_id=prompt,
            version_hash=HASH,
            latency_ms=float(n),
            idempotency_key=f"k{n}" if n % 2 else None,
        )
        data = orjson.loads(record.to_bytes())
        assert fast_row(TABLES[EventKind.ANALYTICS], data, LINEAGE) is not None


def test_a_spec_made_otherwise_takes_the_reference_path() -> None:
    spec = dataclasses.replace(TABLES[EventKind.ANALYTICS], record=AnalyticsRecord)
    record = AnalyticsRecord(
        event_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        org_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        prompt_id=uuid.uuid4(),
        version_hash=HASH,
    )
    assert fast_row(spec, orjson.loads(record.to_bytes()), LINEAGE) is None
