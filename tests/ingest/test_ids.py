"""Event ids built straight from uuid_utils; receive times in the records' wire form."""

from __future__ import annotations

import pickle
import uuid
from datetime import UTC, datetime, timedelta

from ingest.ids import new_event_id, received_stamp
from schemas.records import wire_time


def test_the_receive_stamp_is_now_in_the_wire_form() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    stamps = [received_stamp() for _ in range(3)]
    after = datetime.now(UTC)
    for stamp in stamps:
        moment = datetime.fromisoformat(stamp)
        assert wire_time(moment) == stamp
        assert before <= moment <= after


def test_an_event_id_is_a_standard_library_uuid7_like_any_other() -> None:
    first, second = new_event_id(), new_event_id()
    assert type(first) is uuid.UUID and first.version == 7
    same = uuid.UUID(str(first))
    assert first == same and hash(first) == hash(same) and first.is_safe is same.is_safe
    assert pickle.loads(pickle.dumps(first)) == first
    assert first < second  # sortable by the time the edge accepted them
