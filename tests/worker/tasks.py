"""Task functions the worker tests run, imported by reference in the worker process."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

# ---- limiter: observe how many run at once
_inflight = 0


async def sleepy(seconds: float) -> int:
    """Sleep and return the largest in-flight count this task saw."""
    global _inflight
    _inflight += 1
    seen = _inflight
    try:
        await asyncio.sleep(seconds)
        return max(seen, _inflight)
    finally:
        _inflight -= 1


# ---- warm globals
_counter = 0


async def count() -> int:
    global _counter
    _counter += 1
    return _counter


_model: dict[str, int] | None = None
_model_loads = 0
_model_lock = asyncio.Lock()


async def _load_model() -> dict[str, int]:
    global _model_loads
    _model_loads += 1
    await asyncio.sleep(0.2)  # an expensive load
    return {"weights": 42}


async def predict(x: int) -> tuple[int, int]:
    """The seeds' load-the-model-once pattern; returns (prediction, loads so far)."""
    global _model
    async with _model_lock:
        if _model is None:
            _model = await _load_model()
    return x * _model["weights"], _model_loads


@functools.cache
def cached_square(x: int) -> int:
    return x * x


def cache_info() -> int:
    cached_square(3)
    return cached_square.cache_info().hits


# ---- sync tasks
_sync_running = 0
_sync_overlaps = 0
_sync_lock = threading.Lock()


def blocking(seconds: float) -> int:
    """A sync task: returns how many sync tasks overlapped it so far."""
    global _sync_running, _sync_overlaps
    with _sync_lock:
        _sync_running += 1
        if _sync_running > 1:
            _sync_overlaps += 1
    time.sleep(seconds)
    with _sync_lock:
        _sync_running -= 1
    return _sync_overlaps


async def finish_time(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return time.time()


def talk(n: int) -> str:
    for i in range(n):
        print(f"line {i}")
    return "done"


async def log_inside() -> str:
    import structlog

    structlog.get_logger("user").warning("inside the task")
    return "logged"


async def touch(path: str) -> str:
    """The canary: creates a file, so a test can see whether any code ran."""
    with open(path, "w") as f:  # noqa: ASYNC230 - a tiny write
        f.write("ran")
    return path


async def fails(x: int) -> int:
    raise ValueError(f"fails {x}")
