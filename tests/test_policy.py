"""ReusePolicy: parity with the seeds' documented behaviour."""

from __future__ import annotations

import traceback
from datetime import timedelta

import pytest

from reuse_runtime import ReusePolicy, tracebacks
from reuse_runtime.policy import MIN_TTL_ENV, parse_bytes


def test_defaults_match_the_reference() -> None:
    p = ReusePolicy()
    assert p.replicas == (2, 2)  # Flyte stores the pair
    assert (p.min_replicas, p.max_replicas) == (2, 2)
    assert p.concurrency == 1
    assert p.idle_ttl == timedelta(seconds=30)
    assert p.get_scaledown_ttl() == timedelta(seconds=30)


def test_int_and_range_replicas() -> None:
    assert (ReusePolicy(replicas=3).min_replicas, ReusePolicy(replicas=3).max_replicas) == (3, 3)
    p = ReusePolicy(replicas=(1, 3), concurrency=2)
    assert (p.min_replicas, p.max_replicas, p.capacity) == (1, 3, 6)
    assert ReusePolicy(replicas=(0, 2)).min_replicas == 0


def test_ttls_accept_seconds_or_timedelta_and_normalise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIN_TTL_ENV, raising=False)
    p = ReusePolicy(idle_ttl=60, scaledown_ttl=timedelta(minutes=10))
    assert p.idle_ttl == timedelta(seconds=60)
    assert p.scaledown_ttl == timedelta(minutes=10)
    assert ReusePolicy(scaledown_ttl=None).get_scaledown_ttl() is None


def test_seed_policies_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIN_TTL_ENV, raising=False)
    ReusePolicy(
        replicas=2, concurrency=1, scaledown_ttl=timedelta(minutes=10), idle_ttl=timedelta(hours=1)
    )
    ReusePolicy(replicas=2, idle_ttl=60, concurrency=100, scaledown_ttl=60)
    ReusePolicy(
        replicas=4, concurrency=3, scaledown_ttl=timedelta(minutes=10), idle_ttl=timedelta(hours=1)
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"replicas": -1}, "replicas"),
        ({"replicas": 0}, "replicas"),
        ({"replicas": "2"}, "replicas"),
        ({"replicas": 2.5}, "replicas"),
        ({"replicas": True}, "replicas"),
        ({"replicas": (3, 1)}, "replicas"),
        ({"replicas": (-1, 2)}, "replicas"),
        ({"replicas": (1, 2, 3)}, "replicas"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"idle_ttl": "30"}, "idle_ttl"),
        ({"scaledown_ttl": [30]}, "scaledown_ttl"),
        ({"max_rss": "lots"}, "max_rss"),
        ({"max_tasks": 0}, "max_tasks"),
    ],
)
def test_invalid_values_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ReusePolicy(**kwargs)  # type: ignore[arg-type]


def test_ttl_floor_is_thirty_seconds_unless_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIN_TTL_ENV, raising=False)
    with pytest.raises(ValueError, match="idle_ttl must be at least 30"):
        ReusePolicy(idle_ttl=10)
    with pytest.raises(ValueError, match=f"scaledown_ttl.*{MIN_TTL_ENV}"):
        ReusePolicy(scaledown_ttl=timedelta(seconds=5))
    monkeypatch.setenv(MIN_TTL_ENV, "1")
    assert ReusePolicy(idle_ttl=5, scaledown_ttl=2).idle_ttl == timedelta(seconds=5)
    with pytest.raises(ValueError, match="idle_ttl"):
        ReusePolicy(idle_ttl=0.5)


def test_recycling_bounds() -> None:
    p = ReusePolicy(max_tasks=100, max_rss="400Mi", max_lifetime=3600)
    assert p.max_rss == 400 * 2**20
    assert p.max_lifetime == timedelta(hours=1)
    assert parse_bytes("2Gi") == 2 * 2**30
    assert parse_bytes("1G") == 10**9
    assert parse_bytes(1234) == 1234


def test_a_negative_ttl_is_shown_in_the_seconds_written() -> None:
    for value in (-5, timedelta(seconds=-5)):
        with pytest.raises(ValueError) as raised:
            ReusePolicy(idle_ttl=value)
        assert str(raised.value) == "idle_ttl must not be negative, got -5 seconds"
    with pytest.raises(ValueError, match=r"max_lifetime must not be negative, got -0\.5 seconds"):
        ReusePolicy(max_lifetime=timedelta(milliseconds=-500))


def test_a_bad_value_is_raised_at_the_callers_line() -> None:
    """Not in the dataclass's generated ``__init__`` (``<string>``) nor in the checks."""
    with pytest.raises(ValueError) as raised:
        ReusePolicy(replicas=(3, 1))
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert [f.filename for f in frames[:1]] == [__file__]
    assert frames[0].line == "ReusePolicy(replicas=(3, 1))"
    assert not [f for f in frames[1:] if not f.filename.startswith(tracebacks.HIDDEN)]
