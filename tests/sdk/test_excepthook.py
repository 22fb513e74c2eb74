"""The uncaught-error hook: a bad setting is reported at the user's line, in one line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.helpers import run_python

SCRIPT = textwrap.dedent(
    """
    import dataclasses
    from datetime import timedelta
    import reuse_runtime as flyte
    from reuse_runtime.sdk.excepthook import one_line

    def report(make):
        try:
            make()
        except Exception as e:
            print(one_line(e))

    report(lambda: flyte.Resources(cpu=(2, 1)))
    report(lambda: flyte.ReusePolicy(idle_ttl=timedelta(seconds=-5)))
    report(lambda: dataclasses.replace(flyte.ReusePolicy(), concurrency=0))
    report(lambda: flyte.Backoff(base=timedelta(seconds=-3)))
    report(lambda: flyte.Timeout(deadline=-1))
    report(lambda: flyte.RetryStrategy(count=-1))
    report(lambda: flyte.Cache(behavior="sometimes"))
    report(lambda: flyte.Secret(key=""))
    flyte.ReusePolicy(replicas=(3, 1))
    """
)


def test_a_bad_setting_is_reported_at_the_users_line(tmp_path: Path) -> None:
    done = run_python(tmp_path, SCRIPT)
    lines = SCRIPT.splitlines()

    def at(call: str) -> str:
        return f"script.py, line {lines.index(call) + 1}: "

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        at("report(lambda: flyte.Resources(cpu=(2, 1)))")
        + "PolicyError: Resources.cpu request (2, 1) is above its limit",
        at("report(lambda: flyte.ReusePolicy(idle_ttl=timedelta(seconds=-5)))")
        + "PolicyError: idle_ttl must not be negative, got -5 seconds",
        at("report(lambda: dataclasses.replace(flyte.ReusePolicy(), concurrency=0))")
        + "PolicyError: concurrency must be at least 1, got 0",
        at("report(lambda: flyte.Backoff(base=timedelta(seconds=-3)))")
        + "ValueError: Backoff.base must be >= 0, got -3 seconds",
        at("report(lambda: flyte.Timeout(deadline=-1))")
        + "ValueError: deadline must not be negative, got -1 seconds",
        at("report(lambda: flyte.RetryStrategy(count=-1))")
        + "ValueError: retries must be a non-negative int, got -1",
        at('report(lambda: flyte.Cache(behavior="sometimes"))')
        + "ValueError: Invalid cache behavior: 'sometimes'. Must be one of "
        "['auto', 'override', 'disable'] (aliases accepted: ['enable', 'enabled', 'false', "
        "'no', 'none', 'off', 'on', 'true', 'yes']).",
        at('report(lambda: flyte.Secret(key=""))')
        + "ValueError: Secret key must be a non-empty string, got ''",
    ]
    assert done.stderr == (
        at("flyte.ReusePolicy(replicas=(3, 1))")
        + "PolicyError: replicas: min (3) must not be greater than max (1)\n"
    )
