"""Receive times in the records' wire form, formatted once a second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.ids import received_stamp
from schemas.records import wire_time


def test_the_receive_stamp_is_now_in_the_wire_form() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    stamps = [received_stamp() for _ in range(3)]
    after = datetime.now(UTC)
    for stamp in stamps:
        moment = datetime.fromisoformat(stamp)
        assert wire_time(moment) == stamp
        assert before <= moment <= after
