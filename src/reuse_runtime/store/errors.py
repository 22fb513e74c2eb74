"""The store's errors, in the package's one hierarchy."""

from __future__ import annotations

from reuse_runtime.errors import ClosedError, RunsStoreError


class StoreError(RunsStoreError):
    """Expected: the runs store cannot do what was asked; the message says why and where."""


class StoreLockedError(StoreError):
    """Expected: another controller holds the state dir's runs store (the message names its
    pid). Stop it, or give this controller another state dir."""


class StoreClosedError(StoreError, ClosedError):
    """Expected: the store was used after ``close()``."""


class ValueMissingError(StoreError):
    """Expected: a value's file is gone or damaged (the message names the file)."""
