"""pytest plugin: attach the logs of every harness-managed server to the report of a failing test."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from auxip_testing.process import RUNNING


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for name, process in sorted(RUNNING.items()):
            report.sections.append((f"server log: {name} ({process.log_path})", process.log_tail(40)))
    return report
