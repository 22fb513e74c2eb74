"""Network tests: hosts in network namespaces that the tests make and remove (root)."""

from __future__ import annotations

import pytest

from tests.network.netns import available


@pytest.fixture(scope="session")
def network_ready() -> None:
    why = available()
    if why:
        pytest.skip(f"network tests need network namespaces: {why}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.network.report import HEADER, ROWS, THROUGHPUT

    if ROWS:
        terminalreporter.section("network faults")
        terminalreporter.write_line(HEADER)
        for line in ROWS:
            terminalreporter.write_line(line)
    if THROUGHPUT:
        terminalreporter.section("throughput across round trips (x: of the rate at 0 ms)")
        for line in THROUGHPUT:
            terminalreporter.write_line(line)
