"""How often the cyclic garbage collector runs in the processes that move tasks.

A fan-out keeps many objects alive at once (a coroutine, a future and a record per
task in flight), and Python's default thresholds (700, 10, 10) collect the young
generation every 700 allocations and traverse the older ones often: in the seed
workload that was a fifth of the CPU of every process, for garbage that reference
counting frees anyway. reuse-runtime's own processes (replicas, a standalone
controller) and a driver that holds an embedded controller therefore collect less
often (:data:`TUNED`); a replica also freezes what it imported at start, so a full
collection does not walk the runtime's own modules.

``REUSE_RUNTIME_GC`` chooses: unset for :data:`TUNED`, ``python`` to keep Python's
own pace, or three numbers ``"gen0,gen1,gen2"`` for :func:`gc.set_threshold`. A
driver whose thresholds were already changed from Python's default keeps them.
"""

from __future__ import annotations

import gc
import os

from reuse_runtime.errors import PolicyError

GC_ENV = "REUSE_RUNTIME_GC"
#: Collect the young generation every 50,000 allocations (not 700); measured on the
#: seed workload: the CPU per task fell by about a quarter, peak RSS did not move.
TUNED = (50_000, 20, 100)
PYTHON_DEFAULT = (700, 10, 10)


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
            f"gc.set_threshold (like 50000,20,100), got {raw!r}"
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
    return wanted
