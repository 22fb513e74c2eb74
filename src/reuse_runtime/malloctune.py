"""How glibc's allocator keeps freed memory in the processes that move payloads.

Every hop of a task with a large argument or result copies it a few times (gRPC to
bytes, protobuf's parse and encode, pickling), each into a freshly allocated buffer.
With glibc's defaults a freed buffer of a megabyte or more goes back to the OS
(``munmap``, or a trim of the heap's top), so the next one is new memory and every
page of it faults on first touch: about 0.4 ms per MiB on the 2-core machine of
``benchmarks/README.md``, more than the copy itself. reuse-runtime's own processes
(replicas, a standalone controller) and a driver that holds an embedded controller
therefore keep freed memory for reuse: blocks under :data:`MMAP_THRESHOLD` come from
the heap, the heap gives back its free top only past :data:`TRIM_THRESHOLD`, and all
threads share one heap (:data:`ARENA_MAX`), so gRPC's threads keep no memory aside.
Measured on the 1 MiB in, 1 MiB out benchmark (``sdk_probe bytes``, 4 interleaved
pairs): 283 -> 326 tasks/s, the controller's CPU per task 2.73 -> 2.32 ms, and peak RSS
fell (driver with the controller 370-416 -> 271-317 MB, busiest replica 361-406 ->
318-336 MB).

``REUSE_RUNTIME_MALLOC`` chooses: unset for the settings above, ``glibc`` for glibc's
own. A process started with malloc settings of its own in its environment (any
``MALLOC_*`` variable, or ``GLIBC_TUNABLES``) keeps them. On a C library other than
glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import os

from reuse_runtime.errors import PolicyError

MALLOC_ENV = "REUSE_RUNTIME_MALLOC"
#: Blocks below this come from the heap, where freed ones are reused (glibc: 128 KiB,
#: rising by itself as large blocks are freed). Above a batch message (4 MiB).
MMAP_THRESHOLD = 16 * 2**20
#: Free memory at the heap's top beyond this goes back to the OS (glibc: 128 KiB, or
#: twice the moving threshold above).
TRIM_THRESHOLD = 64 * 2**20
#: The caller's own glibc settings (any variable with this prefix): present at start,
#: they stay.
GLIBC_SETTINGS_PREFIX = "MALLOC_"
GLIBC_TUNABLES = "GLIBC_TUNABLES"
#: Heaps (arenas) malloc may use: gRPC's threads otherwise get heaps of their own,
#: each keeping its own freed memory (glibc: 8 per core).
ARENA_MAX = 1
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def wanted() -> bool:
    """Whether ``$REUSE_RUNTIME_MALLOC`` asks for the runtime's settings."""
    raw = os.environ.get(MALLOC_ENV, "").strip()
    if not raw:
        return True
    if raw.lower() == "glibc":
        return False
    raise PolicyError(
        f'{MALLOC_ENV} must be "glibc" (glibc\'s own malloc settings) or unset (the '
        f"runtime's), got {raw!r}"
    )


def tune() -> bool:
    """Apply the settings when wanted and possible; whether they were applied."""
    if not wanted() or _callers_own() or not on_glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    # mallopt returns 1 on success; a refused value leaves glibc's own.
    mmap_set = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_set = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    arenas_set = mallopt(_M_ARENA_MAX, ARENA_MAX)
    return bool(mmap_set and trim_set and arenas_set)


def _callers_own() -> bool:
    return bool(os.environ.get(GLIBC_TUNABLES)) or any(
        name.startswith(GLIBC_SETTINGS_PREFIX) for name in os.environ
    )


def on_glibc() -> bool:
    """Whether this process runs on glibc, the C library whose settings these are."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # not a GNU C library
        return False
