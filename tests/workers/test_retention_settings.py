"""Raw rows must outlive the duplicate lookup that reads them (ARCHITECTURE.md, "Tables")."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from promptline.settings import Settings


@pytest.mark.parametrize(("ttl", "window"), [(0, 7), (0, 0), (7, 7), (30, 7), (30, 1)])
def test_a_ttl_at_least_the_window_or_none_is_accepted(ttl: int, window: int) -> None:
    settings = Settings(clickhouse_raw_ttl_days=ttl, worker_dedup_window_days=window)
    assert (settings.clickhouse_raw_ttl_days, settings.worker_dedup_window_days) == (ttl, window)


@pytest.mark.parametrize(("ttl", "window"), [(3, 7), (6, 7), (30, 0)])
def test_a_ttl_shorter_than_the_window_is_refused(ttl: int, window: int) -> None:
    with pytest.raises(ValidationError, match="worker_dedup_window_days"):
        Settings(clickhouse_raw_ttl_days=ttl, worker_dedup_window_days=window)


def test_the_environment_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLINE_CLICKHOUSE_RAW_TTL_DAYS", "3")
    with pytest.raises(ValidationError, match="at most 3"):
        Settings()
