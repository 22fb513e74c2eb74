"""Fixtures of the runs store's tests: a real store file in a fresh directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reuse_runtime.store import SqliteRunStore, StoreSettings


@pytest.fixture
def settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(path=tmp_path / "state" / "runs.sqlite", flush_interval=0.01)


@pytest.fixture
def store(settings: StoreSettings) -> Iterator[SqliteRunStore]:
    with SqliteRunStore.open(settings) as opened:
        yield opened
