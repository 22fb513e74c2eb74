"""How often the cyclic garbage collector runs in the processes that move tasks.

A fan-out keeps many objects alive at once (a coroutine, a future and a record per
task in flight), and Python's default thresholds (700, 10, 10) collect the young
generation every 700 allocations and traverse the older ones often: in the seed
workload that was a fifth of the CPU of every process, for garbage that reference
counting frees anyway. reuse-runtime's own processes (replicas, a standalone
controller) and a driver that holds an embedded controller therefore collect less
often (:data:`TUNED`); a replica also freezes what it imported at start, so a full
collection does not walk the runtime's own modules.

At that pace a process that stops allocating could keep its young garbage cycles for
ever, so such a process also sweeps its young generation every :data:`SWEEP_S`
seconds from a daemon thread, when anything is pending there (:func:`sweep_young`).

``REUSE_RUNTIME_GC`` chooses: unset for :data:`TUNED`, ``python`` to keep Python's
own pace, or three numbers ``"gen0,gen1,gen2"`` for :func:`gc.set_threshold`. A
driver whose thresholds were already changed from Python's default keeps them.
"""

from __future__ import annotations

import gc
import os
import threading
import time

from reuse_runtime.errors import PolicyError

GC_ENV = "REUSE_RUNTIME_GC"
#: Collect the young generation every 1,000,000 allocations (not 700), net of those
#: freed. Measured on the seed workload: 50,000 (not 700) took the CPU per task down
#: by about a quarter; 1,000,000, where a 50k-child fan-out's in-flight objects fit
#: in the young generation, took it down by another 6% and raised the rate by 8%
#: (4 interleaved pairs). Peak RSS moved by under 1% at n=100,000.
TUNED = (1_000_000, 20, 100)
PYTHON_DEFAULT = (700, 10, 10)
#: How often a process at :data:`TUNED`'s pace sweeps its young generation at least.
SWEEP_S = 10.0
#: Young-generation thresholds above this (ten times Python's) get the sweep; a
#: process that collects every few thousand allocations frees its cycles soon anyway.
SWEEP_ABOVE = 10 * PYTHON_DEFAULT[0]


def thresholds() -> tuple[int, int, int] | None:
    """The thresholds ``$REUSE_RUNTIME_GC`` asks for; None to keep Python's."""
    raw = os.environ.get(GC_ENV, "").strip()
    if not raw:
        return TUNED
    if raw.lower() == "python":
        return None
    parts = raw.split(",")
    try:
        numbers = tuple(int(part) for part in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != 3 or min(numbers) < 0:
        raise PolicyError(
            f'{GC_ENV} must be "python" or three whole numbers "gen0,gen1,gen2" for '
            f"gc.set_threshold (like 1000000,20,100), got {raw!r}"
        )
    return numbers[0], numbers[1], numbers[2]


def tune(*, freeze: bool = False, respect_caller: bool = False) -> tuple[int, int, int] | None:
    """Apply :func:`thresholds`; with ``freeze``, first move every object alive now
    to the permanent generation. With ``respect_caller`` (a user's process), thresholds
    the process already changed stay, unless ``$REUSE_RUNTIME_GC`` names numbers."""
    wanted = thresholds()
    if wanted is None:
        return None
    caller_chose = gc.get_threshold() != PYTHON_DEFAULT
    if respect_caller and caller_chose and not os.environ.get(GC_ENV, "").strip():
        return None
    if freeze:
        gc.freeze()
    gc.set_threshold(*wanted)
    if wanted[0] > SWEEP_ABOVE:
        sweep_young(SWEEP_S)
    return wanted


_sweeping: threading.Thread | None = None


def sweep_young(every_s: float) -> None:
    """Collect the young generation every ``every_s`` seconds while it holds anything,
    from a daemon thread (one per process): garbage cycles a quiet process made do
    not wait for a million more allocations. A sweep walks what is young, at most
    once per ``every_s`` beyond the threshold's collections: 11-37 ms for a million
    young objects on the 2-core machine of benchmarks/README.md, so under 0.4% of a
    core at 10 s, and nothing when little is young."""
    global _sweeping
    if _sweeping is not None and _sweeping.is_alive():
        return

    def sweep() -> None:
        while True:
            time.sleep(every_s)
            if gc.isenabled() and gc.get_count()[0]:
                gc.collect(0)

    _sweeping = threading.Thread(target=sweep, name="reuse-gc-sweep", daemon=True)
    _sweeping.start()
