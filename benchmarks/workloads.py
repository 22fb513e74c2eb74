"""Task functions the benchmarks run, imported by reference in the worker processes."""

from __future__ import annotations


async def noop(x: int) -> int:
    return x


def noop_sync(x: int) -> int:
    return x
