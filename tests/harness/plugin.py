"""pytest plugin: attach the logs of every harness-managed server to the report of a failing test."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator

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


@contextlib.contextmanager
def show_progress(config: pytest.Config) -> Iterator[None]:
    """Let first-run download progress reach the terminal: pytest captures fixture output otherwise."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield
