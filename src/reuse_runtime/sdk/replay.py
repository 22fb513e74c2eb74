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

import xxhash

from reuse_runtime.context import TaskContext

#: Arguments up to this size go into the key as they are; larger ones by their digest.
DIGEST_ABOVE = 4096


def call_key(parent: TaskContext, site: str, args: bytes) -> str:
    """The identity of the next call of ``site`` with ``args`` from ``parent``."""
    calls = parent.calls
    if calls is None:
        calls = parent.calls = {}
    if len(args) <= DIGEST_ABOVE:
        # The order counts identical calls; a collision of Python's hash only makes two
        # calls share a counter, and the key below still holds all of the arguments.
        seen: tuple[str, int | bytes] = (site, hash(args))
        content = b"=" + args
    else:
        # One pass over arguments that may be megabytes: their digest both counts
        # identical calls and goes into the key. XXH3-128 digests 1 MiB in about 10 µs
        # on the 2-core machine of benchmarks/README.md, against 490 for SHA-256 (the
        # fastest digest in hashlib there). It is not cryptographic, and need not be:
        # the key below is BLAKE2b over the parent's identity too, so only one parent's
        # own calls could collide, with arguments crafted to, and that parent would
        # only be given the result of another of its own calls.
        digest = xxhash.xxh3_128_digest(args)
        seen = (site, digest)
        content = b"#" + digest
    order = calls.get(seen, 0)
    calls[seen] = order + 1
    prefix = parent.key_prefix
    if prefix is None:  # the parent's identity, hashed once for all of its calls
        prefix = parent.key_prefix = hashlib.blake2b(
            f"{parent.call_key or parent.task_id}\0".encode(), digest_size=16
        )
    key = prefix.copy()
    key.update(f"{site}\0{order}\0".encode())
    key.update(content)
    return key.hexdigest()
