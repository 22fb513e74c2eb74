"""Durable replay, the caller's half: every child call gets a deterministic identity.

A child call is named by its parent's identity (the parent's own call key, or
its task id for a top-level task; both survive the parent's retries), the task
it calls, a digest of its arguments, and its order among the parent's identical
calls (same task, same arguments). A parent that runs again after losing its
replica makes the same calls with the same keys, and the controller answers the
ones that already finished from its replay log
(:mod:`reuse_runtime.controller.replay`) at once, without running them again.

Keying by task and arguments rather than by position alone means that children
created in a different order on the second run (a replayed child returns at
once, so timing-dependent code may interleave differently) still find their own
results, never another call's.

A later ``flyte.trace`` hook can name a traced call with :func:`call_key` the same way.
"""

from __future__ import annotations

import hashlib

from reuse_runtime.context import TaskContext


def call_key(parent: TaskContext, site: str, args: bytes) -> str:
    """The identity of the next call of ``site`` with ``args`` from ``parent``."""
    digest = hashlib.blake2b(args, digest_size=16).digest()
    calls = parent.calls
    order = calls.get((site, digest), 0)
    calls[(site, digest)] = order + 1
    key = hashlib.blake2b(digest_size=16)
    key.update((parent.call_key or parent.task_id).encode())
    key.update(b"\0" + site.encode() + b"\0")
    key.update(digest)
    key.update(order.to_bytes(8, "little"))
    return key.hexdigest()
