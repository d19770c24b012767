"""The edge benchmark's bookkeeping: a 207 counts its accepted events, ratios are printed."""

from __future__ import annotations

import orjson

from bench.edge_load import table
from bench.edge_loadgen import outcome


def test_a_207_counts_its_accepted_events_and_a_refusal_counts_none() -> None:
    partial = orjson.dumps({"results": [], "accepted": 97, "rejected": 3})
    assert outcome(207, partial, 100) == (97, 3)
    assert outcome(200, b"{}", 100) == (100, 0)
    assert outcome(204, b"", 1) == (1, 0)
    assert outcome(503, b'{"error": {}}', 100) == (0, 100)


def test_the_table_gives_each_scenario_as_a_fraction_of_both_bare_rates() -> None:
    result = {"events_per_second": 500.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}
    lines = table({"single": result}, {"awaited_per_task": 1000.0, "pipelined": 2000.0})
    assert "/awaited" in lines[0] and "/pipelined" in lines[0]
    assert lines[1].split()[-2:] == ["0.50", "0.25"]
    assert table({"single": result}, {"awaited_per_task": 0.0, "pipelined": 0.0})[1].endswith("n/a")
