"""What each network test measured: one row per fault, printed at the end of the run.

A row counts tasks (parents and their children) as the test's client and tasks saw
them: submitted, succeeded (its parent returned every child's right result),
executions (lines the tasks logged: a task may run twice), duplicate deliveries
(results a client or parent received for a task it had already resolved), lost
(submitted and never succeeded), and the seconds from the heal until the cut-off
party was back (a worker attached again, the client sent its tasks again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.network.cluster import Cluster


@dataclass
class Outcome:
    fault: str
    submitted: int
    succeeded: int
    executions: int
    duplicates: int
    recovery: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.submitted - self.succeeded

    def line(self) -> str:
        recovery = "-" if self.recovery is None else f"{self.recovery:.1f} s"
        return (
            f"{self.fault:<34} {self.submitted:>9} {self.succeeded:>9} {self.executions:>10} "
            f"{self.duplicates:>10} {self.lost:>5} {recovery:>9}  {'; '.join(self.notes)}"
        )


HEADER = (
    f"{'fault':<34} {'submitted':>9} {'succeeded':>9} {'executions':>10} {'duplicates':>10} "
    f"{'lost':>5} {'recovery':>9}  notes"
)
ROWS: list[str] = []
#: Rates through the network at each round trip (see test_throughput.py).
THROUGHPUT: list[str] = []


def outcome(
    fault: str, cluster: Cluster, report: dict[str, Any], children: int, log: str = ""
) -> Outcome:
    """The counts of a fan-out run (``report`` from the driver) and its executions log
    (``log``, else the cluster's)."""
    executions = cluster.executions(log)
    # A process's count is cumulative: its last (largest) line counts.
    dupes: dict[tuple[str, int], int] = {}
    for e in executions:
        if e.kind == "dupes":
            dupes[e.host, e.pid] = max(dupes.get((e.host, e.pid), 0), int(e.index))
    return Outcome(
        fault,
        submitted=report["submitted"] * (1 + children),
        succeeded=report["succeeded"] * (1 + children),
        executions=sum(e.kind in ("leaf", "parent") for e in executions),
        duplicates=report["duplicates"] + sum(dupes.values()),
    )


def record(result: Outcome) -> Outcome:
    """Keep the row for the summary, print it (seen with -s), and check the promises."""
    line = result.line()
    ROWS.append(line)
    print(f"\n{HEADER}\n{line}")
    assert result.duplicates == 0, f"results delivered twice: {line}"
    assert result.lost == 0, f"tasks lost: {line}"
    return result
