"""Network tests: hosts in network namespaces that the tests make and remove (root)."""

from __future__ import annotations

import pytest

from tests.network.netns import available


@pytest.fixture(scope="session")
def network_ready() -> None:
    why = available()
    if why:
        pytest.skip(f"network tests need network namespaces: {why}")
