"""``flyte.RetryStrategy``, ``Backoff`` and ``Timeout``, and timedelta timeouts."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.sdk.retry import timeout_from_request
from tests.helpers import run_python


def test_backoff_and_retry_strategy_check_their_values() -> None:
    b = flyte.Backoff(base=timedelta(seconds=1), factor=2.0, cap=timedelta(seconds=5))
    assert [b.compute_delay(n).total_seconds() for n in range(4)] == [1, 2, 4, 5]
    with pytest.raises(ValueError, match="cap is required"):
        flyte.Backoff(base=timedelta(seconds=1), factor=2.0)
    with pytest.raises(ValueError, match="factor"):
        flyte.Backoff(base=timedelta(seconds=1), factor=0.5)
    with pytest.raises(ValueError, match="retries"):
        flyte.RetryStrategy(count=-1)
    assert b.to_model().delay(10) == 5.0


def test_timeouts_accept_seconds_timedeltas_and_timeout_objects() -> None:
    assert timeout_from_request(30).runtime_seconds == 30
    assert timeout_from_request(timedelta(minutes=1)).runtime_seconds == 60
    assert timeout_from_request(0).runtime_seconds is None
    t = flyte.Timeout(max_runtime=timedelta(seconds=5), deadline=20)
    assert (t.runtime_seconds, t.deadline_seconds) == (5, 20)
    with pytest.raises(ValueError):
        timeout_from_request("soon")  # type: ignore[arg-type]
    with pytest.warns(flyte.ReuseRuntimeWarning, match="max_queued_time"):
        flyte.Timeout(max_queued_time=60)


def test_retries_back_off_and_deadlines_bound_all_attempts(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import asyncio, time
            from datetime import timedelta
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(name="retry", reusable=flyte.ReusePolicy(replicas=1))
            attempts = []

            @env.task(retries=flyte.RetryStrategy(
                count=2, backoff=flyte.Backoff(base=timedelta(seconds=0.4))))
            async def flaky() -> list:
                attempts.append((flyte.ctx().attempt_number, time.monotonic()))
                if len(attempts) < 3:
                    raise RuntimeError("not yet")
                return attempts

            @env.task(retries=5, timeout=flyte.Timeout(max_runtime=10, deadline=1.0))
            async def hopeless() -> None:
                await asyncio.sleep(0.3)
                raise RuntimeError("again")

            if __name__ == "__main__":
                seen = flyte.run(flaky).outputs()[0]
                print([n for n, _ in seen])
                gaps = [b - a for (_, a), (_, b) in zip(seen, seen[1:])]
                print(all(g >= 0.35 for g in gaps))
                started = time.monotonic()
                try:
                    flyte.run(hopeless).outputs()[0]
                except flyte.errors.TaskTimeoutError as e:
                    print("deadline", round(time.monotonic() - started) < 5)
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[0, 1, 2]", "True", "deadline True"]
