"""The edge's straight encoding of an analytics record is the model's, byte for byte."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ingest.ids import new_event_id, received_now
from schemas.analytics import AnalyticsEventIn
from schemas.records import AnalyticsRecord, analytics_record_bytes, wire_time

NUMBER = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=1000),
    st.floats(min_value=0, max_value=86_400_000, allow_nan=False),
)


@given(
    latency=NUMBER,
    cost=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
    score=st.one_of(st.none(), st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)),
    key=st.one_of(st.none(), st.text(alphabet="abc-_019", min_size=1, max_size=20)),
    millisecond=st.integers(min_value=0, max_value=999),
)
def test_straight_bytes_equal_the_models(
    latency: Any, cost: Any, score: Any, key: str | None, millisecond: int
) -> None:
    raw = {"prompt_id": "p", "version_hash": "sha256:ab", "latency_ms": latency}
    raw |= {"cost_usd": cost, "score": score, "idempotency_key": key}
    try:
        body = AnalyticsEventIn.model_validate(raw)
    except ValueError:
        return  # refused at the edge: never encoded
    fields = {
        "prompt_id": uuid.uuid4(),
        "version_hash": body.version_hash,
        "latency_ms": body.latency_ms,
        "cost_usd": body.cost_usd,
        "score": body.score,
        "idempotency_key": body.idempotency_key,
    }
    at = datetime(2026, 3, 1, 12, 30, 5, millisecond * 1000, tzinfo=UTC)
    event_id, org, project = new_event_id(), uuid.uuid4(), uuid.uuid4()
    model = AnalyticsRecord(
        event_id=event_id, received_at=at, org_id=org, project_id=project, **fields
    )
    assert analytics_record_bytes(event_id, wire_time(at), org, project, fields) == (
        model.to_bytes()
    )


def test_the_receive_time_keeps_its_milliseconds_in_utc() -> None:
    now = received_now()
    assert wire_time(now).endswith("Z") and len(wire_time(now)) == 24
