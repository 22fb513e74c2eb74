"""The UI's pure parts: sessions and CSRF, the hour's history, previews of values."""

from __future__ import annotations

import datetime
import os
import pickle

import cloudpickle

from reuse_runtime.ui.auth import LINK_SECONDS, SESSION_SECONDS, Sessions, safe_next
from reuse_runtime.ui.history import PoolHistory
from reuse_runtime.ui.live import PoolCounters
from reuse_runtime.ui.preview import MAX_CHARS, preview


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lasts_its_time_and_is_bound_to_the_token() -> None:
    clock = Clock()
    sessions = Sessions("token-a", clock=clock)
    cookie = sessions.issue()
    nonce = sessions.verify(cookie)
    assert nonce is not None
    assert Sessions("token-b", clock=clock).verify(cookie) is None  # a new token ends it
    expires, n, mac = cookie.split(".")
    assert sessions.verify(f"{int(expires) + 3600}.{n}.{mac}") is None  # tampered
    assert sessions.verify("garbage") is None and sessions.verify(None) is None
    csrf = sessions.csrf(nonce)
    assert sessions.csrf_matches(nonce, csrf)
    assert not sessions.csrf_matches(nonce, "") and not sessions.csrf_matches("other", csrf)
    clock.now += SESSION_SECONDS + 1
    assert sessions.verify(cookie) is None


def test_login_links_are_single_use_and_expire() -> None:
    clock = Clock()
    sessions = Sessions("token", clock=clock)
    code = sessions.link_code()
    assert sessions.redeem(code) and not sessions.redeem(code)
    late = sessions.link_code()
    clock.now += LINK_SECONDS + 1
    assert not sessions.redeem(late)


def test_after_the_login_only_paths_of_this_server() -> None:
    assert safe_next("/runs/x?tab=timeline") == "/runs/x?tab=timeline"
    for bad in ("//evil.example", "https://evil.example/", "/\\evil.example", "", None):
        assert safe_next(bad) == "/runs"


def test_the_history_keeps_an_hour_of_rates_queues_and_replicas() -> None:
    history = PoolHistory(interval=10, span=60)
    t = 1000.0
    for step in range(10):
        done = step * 50  # 5 tasks/s
        history.record(
            t + 10 * step,
            [
                PoolCounters("k1", "env", done, 0, 3, 2),
                PoolCounters("k2", "env", 0, step * 10, 1, 1),  # another version, failing
            ],
        )
    points = history.points("env")
    assert len(points) == 7  # the span, and one more
    assert points[-1].tasks_per_second == 6.0 and points[-1].backlog == 4
    assert points[-1].replicas == 3 and points[-1].at == t + 90
    assert history.names() == ["env"] and history.points("other") == ()


def test_a_pool_made_between_two_samples_counts_its_tasks_from_the_first() -> None:
    history = PoolHistory(interval=10, span=60)
    history.record(1000.0, [])  # the UI's first sample: no pool yet
    # The pool is made, runs 60 tasks and is sampled (or peeked) 10 s later.
    assert (
        history.peek(1010.0, [PoolCounters("k", "env", 60, 0, 0, 3)])["env"].tasks_per_second == 6.0
    )
    history.record(1010.0, [PoolCounters("k", "env", 60, 0, 0, 3)])
    assert history.points("env")[-1].tasks_per_second == 6.0
    # Before any sample there is no rate to give.
    fresh = PoolHistory(interval=10, span=60)
    assert fresh.peek(1010.0, [PoolCounters("k", "env", 60, 0, 0, 3)])["env"].tasks_per_second == 0


def test_previews_show_plain_values_and_only_name_the_rest() -> None:
    assert preview(pickle.dumps({"a": [1, 2]})) == "{'a': [1, 2]}"
    assert preview(cloudpickle.dumps(datetime.date(2026, 1, 2))) == "datetime.date(2026, 1, 2)"
    assert len(preview(pickle.dumps("x" * 10_000))) <= MAX_CHARS
    # Something that would run code is named, never built.
    assert preview(pickle.dumps(os.system)) == "<posix.system, 31 bytes>"

    class Model:
        pass

    assert preview(cloudpickle.dumps(Model())).endswith("bytes>")
    assert preview(b"not a pickle").endswith("do not unpickle>")
    assert preview(None) == "" and preview(b"") == ""
