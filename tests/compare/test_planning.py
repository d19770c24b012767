"""Windows split into whole hours and edges; versions, baselines and references, from a catalog."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from compare.queries import Scope, analytics_sql
from compare.versions import deployed_shares, fallback_baseline, find_version, number_of_hash
from compare.window import Bucket, Span, Window, parse_instant
from controlplane.catalog import PromptEntry, VersionEntry
from controlplane.ids import IdShape, encode
from tests.compare.support import prompt_entry

T = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("window", "hours", "edges"),
    [
        (Window(), Span(None, None), []),
        (Window(T, T + 3 * 60 * MIN), Span(T, T + 180 * MIN), []),
        (
            Window(T + 15 * MIN, T + 200 * MIN),
            Span(T + 60 * MIN, T + 180 * MIN),
            [Span(T + 15 * MIN, T + 60 * MIN), Span(T + 180 * MIN, T + 200 * MIN)],
        ),
        (Window(T + 15 * MIN, None), Span(T + 60 * MIN, None), [Span(T + 15 * MIN, T + 60 * MIN)]),
        (Window(None, T + 15 * MIN), Span(None, T), [Span(T, T + 15 * MIN)]),
        (Window(T + 5 * MIN, T + 50 * MIN), None, [Span(T + 5 * MIN, T + 50 * MIN)]),
        (Window(T + 50 * MIN, T + 70 * MIN), None, [Span(T + 50 * MIN, T + 70 * MIN)]),
    ],
)
def test_window_reads_whole_hours_from_aggregates_and_edges_from_raw_rows(
    window: Window, hours: Span | None, edges: list[Span]
) -> None:
    assert window.hours() == hours
    assert window.edges() == edges


def test_window_must_not_be_empty_and_times_default_to_utc() -> None:
    with pytest.raises(ValueError, match="before"):
        Window(T, T)
    assert parse_instant("2026-03-01T10:00:00") == T
    assert parse_instant("2026-03-01T12:00:00+02:00") == T
    assert parse_instant("2026-03-01T10:00:00Z") == T
    with pytest.raises(ValueError, match="isoformat"):
        parse_instant("last tuesday")


def test_sql_reads_aggregates_only_for_whole_hours() -> None:
    project, prompt = uuid.uuid4(), uuid.uuid4()
    whole, parameters = analytics_sql(Scope(project, prompt, Window(T, T + 120 * MIN)))
    assert "analytics_hourly" in whole and "analytics_events" not in whole
    ragged, _ = analytics_sql(Scope(project, prompt, Window(T + MIN, T + 120 * MIN), Bucket.DAY))
    assert "analytics_hourly" in ragged and "analytics_events" in ragged
    assert "toStartOfDay(at) AS bucket" in ragged
    inside, _ = analytics_sql(Scope(project, prompt, Window(T + MIN, T + 2 * MIN)))
    assert "analytics_hourly" not in inside
    assert parameters["project"] == project and parameters["prompt"] == prompt


def _entry(numbers_and_hashes: dict[int, str]) -> PromptEntry:
    versions = {n: VersionEntry(uuid.uuid4(), n, h) for n, h in numbers_and_hashes.items()}
    return PromptEntry(
        uuid.uuid4(),
        uuid.uuid4(),
        "p",
        versions,
        {v.content_hash: v for v in versions.values()},
    )


def test_baseline_is_the_deployed_majority_then_the_busiest_then_the_latest() -> None:
    deployed = prompt_entry(uuid.uuid4(), "p", 3, split=[(1, 20), (2, 60), (3, 20)])
    assert deployed_shares(deployed) == {1: 2000, 2: 6000, 3: 2000}
    assert fallback_baseline(deployed, {3: 999}) == 2
    tie = prompt_entry(uuid.uuid4(), "p", 2, split=[(1, 50), (2, 50)])
    assert fallback_baseline(tie, {}) == 2
    never_deployed = prompt_entry(uuid.uuid4(), "p", 3)
    assert fallback_baseline(never_deployed, {1: 5}) == 3  # resolve serves the latest
    unrouted = _entry({1: "sha256:a", 2: "sha256:b"})
    assert fallback_baseline(unrouted, {1: 5, 2: 3}) == 1
    assert fallback_baseline(unrouted, {}) == 2
    assert fallback_baseline(_entry({}), {}) is None


def test_version_references_and_shared_content() -> None:
    entry = prompt_entry(uuid.uuid4(), "p", 2)
    digest = entry.versions_by_number[2].content_hash
    version_id = entry.versions_by_number[1].id
    assert [find_version(entry, ref) for ref in ("2", "v2", "V1", digest)] == [2, 2, 1, 2]
    assert find_version(entry, encode(IdShape.VERSION, version_id)) == 1
    assert find_version(entry, str(version_id)) == 1
    assert [find_version(entry, ref) for ref in ("v3", "0", "latest")] == [None, None, None]
    shared = _entry({1: "sha256:same", 2: "sha256:other", 3: "sha256:same"})
    assert number_of_hash(shared) == {"sha256:same": 3, "sha256:other": 2}
