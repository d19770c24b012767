import uuid
from datetime import UTC, datetime

import orjson
import pytest

from schemas.records import AnalyticsRecord
from workers.decode import Poison, decode
from workers.tables import ANALYTICS, Lineage

LINEAGE = Lineage(partition=2, offset=41)


def _record() -> AnalyticsRecord:
    return AnalyticsRecord(
        event_id=uuid.uuid4(),
        received_at=datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC),
        org_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        prompt_id=uuid.uuid4(),
        version_hash="sha256:abc",
        latency_ms=10.5,
        score=1.0,
    )


def test_record_round_trips_into_a_row_in_column_order() -> None:
    record = _record()
    row = decode(ANALYTICS, record.to_bytes(), LINEAGE)
    assert not isinstance(row, Poison)
    by_column = dict(zip(ANALYTICS.columns, row, strict=True))
    assert by_column["event_id"] == record.event_id
    assert by_column["received_at"] == record.received_at
    assert by_column["latency_ms"] == 10.5 and by_column["cost_usd"] is None
    assert by_column["dedup_key"] == str(record.event_id)
    assert (by_column["kafka_partition"], by_column["kafka_offset"]) == (2, 41)


def test_idempotency_key_becomes_the_dedup_key() -> None:
    record = _record().model_copy(update={"idempotency_key": "retry-7"})
    row = decode(ANALYTICS, record.to_bytes(), LINEAGE)
    assert not isinstance(row, Poison)
    assert dict(zip(ANALYTICS.columns, row, strict=True))["dedup_key"] == "retry-7"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record"),
        (b"{not json", "undecodable JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"v": 2, "kind": "analytics"}', "unsupported schema version 2"),
        (b'{"kind": "analytics"}', "unsupported schema version None"),
        (orjson.dumps({"v": 1, "kind": "analytics"}), "schema mismatch"),
    ],
)
def test_poison_records_say_why(value: bytes | None, reason: str) -> None:
    result = decode(ANALYTICS, value, LINEAGE)
    assert isinstance(result, Poison)
    assert reason in result.reason


def test_received_at_goes_on_the_wire_in_utc_milliseconds() -> None:
    record = _record()
    assert orjson.loads(record.to_bytes())["received_at"] == "2026-11-23T12:00:00.123Z"
