"""Prints the contract fuzzer's counts at the end of the run, whatever pytest captures."""

from __future__ import annotations

import pytest

REPORT = pytest.StashKey[str]()
"""The fuzzer's report: operations, requests, 2xx per operation, failures."""


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    report = config.stash.get(REPORT, None)
    if report is not None:
        terminalreporter.section("API contract (schemathesis)")
        terminalreporter.write_line(report)
