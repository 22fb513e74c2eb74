"""The runs store's cost per recorded action: CPU microseconds, caller and writer together.

    python -m benchmarks.store [--n 100000] [--runs 100] [--reps 3]

Records ``n`` finished actions across ``runs`` runs (each run submitted, its
actions ended, the run ended), the way the controller will: it builds an
:class:`~reuse_runtime.store.ActionRecord` per task and calls
``store.action_ended(record)`` from its loop thread; the store's writer thread
commits them in batches. Measured:

* ``caller_us``: CPU of the calling thread per action (building the record and the
  call), ``time.thread_time``.
* ``total_us``: CPU of the whole process per action (``time.process_time``: the
  caller, the writer thread, SQLite), from the first record to the flush that
  commits the last.
* ``floor_us``: in the same run, one ``executemany`` of the same rows into a
  table with no index, in memory: what any SQLite row costs here. The ratio
  ``total / floor`` is what carries from one machine to another.

Reports one JSON object (``harness.emit``), the median of ``reps``.
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import emit
from reuse_runtime import gctune
from reuse_runtime.store import (
    ActionPhase,
    ActionRecord,
    RunEnded,
    RunSubmitted,
    SqliteRunStore,
    StoreSettings,
)

SUCCEEDED = ActionPhase.SUCCEEDED
OUTPUT = b"\x80\x05K\x01."  # pickle.dumps(1): a small task's result


def record_actions(store: SqliteRunStore, n: int, runs: int) -> tuple[float, float]:
    """Record ``n`` actions over ``runs`` runs; (caller CPU s, process CPU s) to the flush.

    The ids and call keys are made beforehand: the controller has them anyway."""
    prefix = secrets.token_hex(10)
    ids = [f"{prefix}{i:012x}" for i in range(n + runs)]  # as the SDK makes task ids
    keys = [secrets.token_hex(16) for _ in range(n)]  # call keys: random digests
    per_run = n // runs
    counter = 0
    now = time.time()
    process0, thread0 = time.process_time(), time.thread_time()
    for r in range(runs):
        run = f"r{prefix[:8]}-{r}"
        root = ids[n + r]
        store.run_submitted(RunSubmitted(run, "main", "bench", root, now))
        for _ in range(per_run):
            store.action_ended(
                tuple.__new__(  # as the controller builds it (RunBook._record_action)
                    ActionRecord,
                    (
                        run,
                        ids[counter],
                        root,
                        keys[counter],
                        "bench.noop",
                        "bench",
                        "",
                        SUCCEEDED,
                        now,
                        now,
                        now,
                        "bench-1",
                        "",  # the controller records no preview of a child's inputs
                        OUTPUT,
                        None,
                        (),
                        (),
                    ),
                )
            )
            counter += 1
        store.run_ended(RunEnded(run, SUCCEEDED, time.time(), OUTPUT))
    caller = time.thread_time() - thread0
    if not store.flush(timeout=300):
        raise RuntimeError("the store did not flush in 300 s")
    return caller, time.process_time() - process0


def floor(n: int) -> float:
    """CPU seconds to insert ``n`` rows of the same shape into an unindexed in-memory table."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (" + ", ".join(f"c{i}" for i in range(16)) + ")")
    now = time.time()
    tail = ("bench-1", "(1,)", bytearray(OUTPUT), "", "")
    rows = [
        (1, f"{i:032x}", "p" * 32, "k" * 32, "bench.noop", "bench", "", 5, now, now, now, *tail)
        for i in range(n)
    ]
    start = time.process_time()
    for i in range(0, n, 10_000):
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * 16)})", rows[i : i + 10_000])
        conn.execute("COMMIT")
    spent = time.process_time() - start
    conn.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    gctune.tune()  # the controller's process collects at this pace
    caller, total, floors = [], [], []
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory() as directory:
            settings = StoreSettings(path=Path(directory) / "runs.sqlite")
            with SqliteRunStore.open(settings) as store:
                spent_caller, spent_total = record_actions(store, args.n, args.runs)
                stats = store.statistics()
        caller.append(spent_caller / args.n * 1e6)
        total.append(spent_total / args.n * 1e6)
        floors.append(floor(args.n) / args.n * 1e6)
    median_total, median_floor = statistics.median(total), statistics.median(floors)
    emit(
        {
            "bench": "store",
            "n": args.n,
            "runs": args.runs,
            "caller_us": round(statistics.median(caller), 2),
            "total_us": round(median_total, 2),
            "floor_us": round(median_floor, 2),
            "total_over_floor": round(median_total / median_floor, 2),
            "batches": stats.batches,
            "db_bytes": stats.db_bytes,
            "reps": {"caller_us": caller, "total_us": total, "floor_us": floors},
        }
    )


if __name__ == "__main__":
    main()
