"""Issue 30's targets, judged from the rows of one ``benchmarks.run``.

Each target is a ratio measured in one run (the median over its repetitions,
interleaved where two things are compared), against the floor or the reference the
issue names. Absolute microseconds move with the machine and the hour; these ratios
are what carry from one machine to another.

    python -m benchmarks.targets benchmarks/results/<time>.json   # a saved run's table
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """One line of the targets table."""

    key: str
    what: str
    measured: str = ""
    reference: str = ""  # the floor, or what the measurement is compared with
    ratio: str = ""
    goal: str = ""
    met: bool | None = None  # None: not measured in this run, or no threshold
    #: The issue sets no threshold: measured, the target is met by being reported.
    report_only: bool = False


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _fmt_range(values: list[float], spec: str) -> str:
    if len(values) < 2:
        return ""
    return f" ({format(min(values), spec)}-{format(max(values), spec)})"


def judge(rows: list[dict[str, Any]], raw: dict[str, Any]) -> list[Target]:
    """The targets of issue 30 from a run's rows (as dicts) and raw results."""
    by = {r["key"]: r for r in rows if not r.get("error")}

    def samples(key: str, name: str) -> list[float]:
        return list(by.get(key, {}).get("samples", {}).get(name, []))

    def value(key: str, name: str) -> float | None:
        got = by.get(key, {}).get(name)
        return float(got) if got is not None else None

    out: list[Target] = []

    # 1. Near the floor: CPU per task against the same run's three-process floor.
    ratios = samples("Fd", "ratio")
    if ratios:
        ours, floor = value("Fc", "cpu_us"), value("Fa", "cpu_us")
        relay = samples("Fe", "ratio")
        out.append(
            Target(
                "1",
                "CPU per task, the seed gather (Fc), against the floor (Fa)",
                f"{ours:.0f} µs" if ours else "",
                f"{floor:.0f} µs" if floor else "",
                f"{_median(ratios):.2f}x{_fmt_range(ratios, '.2f')}"
                + (f"; {_median(relay):.2f}x the relay (Fb)" if relay else ""),
                "at most 1.3x",
                _median(ratios) <= 1.3,
            )
        )
    else:
        out.append(Target("1", "CPU per task against the floor", goal="at most 1.3x"))

    # 2. Against Ray, paired.
    ratios = samples("8c", "ratio")
    out.append(
        Target(
            "2",
            "throughput against Ray's 2 async actors (8a / 8b), paired",
            f"{value('8a', 'rate'):,.0f} tasks/s" if ratios else "",
            f"{value('8b', 'rate'):,.0f} calls/s" if ratios else "",
            f"{_median(ratios):.1f}x{_fmt_range(ratios, '.1f')}" if ratios else "",
            "at least 12x",
            _median(ratios) >= 12 if ratios else None,
        )
    )

    # 3. The controller's share of the CPU.
    shares = samples("Ff", "share")
    out.append(
        Target(
            "3",
            "the controller's share of the gather's CPU (Fc)",
            "",
            "all processes",
            f"{_median(shares):.0%}{_fmt_range(shares, '.0%')}" if shares else "",
            "at most 25%",
            _median(shares) <= 0.25 if shares else None,
        )
    )

    # 4. Many clients.
    ratios = samples("Cc", "ratio")
    worst = samples("Cb", "worst_over_mean")
    out.append(
        Target(
            "4a",
            "many clients against one with the same total (Cb / Ca), tasks/s",
            f"{value('Cb', 'rate'):,.0f} tasks/s" if ratios else "",
            f"{value('Ca', 'rate'):,.0f} tasks/s" if ratios else "",
            f"{_median(ratios):.0%}{_fmt_range(ratios, '.0%')}" if ratios else "",
            "at least 80%",
            _median(ratios) >= 0.8 if ratios else None,
        )
    )
    out.append(
        Target(
            "4b",
            "no client starves: the slowest client's time against the mean",
            "",
            "the mean client",
            f"{_median(worst):.2f}x, most {max(worst):.2f}x" if worst else "",
            "at most 1.5x",
            max(worst) <= 1.5 if worst else None,
        )
    )

    # 5. Many replicas.
    # "Their reports cost": the controller's CPU with the workers attached and idle,
    # over its own CPU at idle with none attached (its ticks), measured in the same run.
    reports, idle = samples("Wc", "reports_cpu_pct"), samples("Wc", "idle_cpu_pct")
    out.append(
        Target(
            "5a",
            "many idle attached workers (Wc): the controller's CPU for their reports",
            f"{_median(reports):.1f}% of a core{_fmt_range(reports, '.1f')}; "
            f"{_median(idle):.1f}% in all"
            if reports
            else "",
            "one core",
            f"{_median(reports) / 100:.3f}" if reports else "",
            "at most 5% of a core",
            _median(reports) <= 5 if reports else None,
        )
    )
    # Routing: the controller's own time from a task's admission to its dispatch, from
    # its task_queue_seconds histogram (one task at a time, so never a wait for a slot).
    # Its buckets bound the p99 exactly, and no closer (0.5 ms is the first).
    many, few = samples("Wb", "route_p99_le_ms"), samples("Wa", "route_p99_le_ms")
    within = samples("Wb", "route_within_1ms")
    call_many, call_few = value("Wb", "p99_ms"), value("Wa", "p99_ms")
    out.append(
        Target(
            "5b",
            "one task at a time among many workers (Wb): routing p99, the controller's "
            "admission to dispatch",
            f"within {max(many):g} ms (max of {len(many)}), {100 * _median(within):.1f}% "
            f"within 1 ms; call to result {call_many:.3f} ms"
            if many and within and call_many
            else "",
            f"within {max(few):g} ms among {by['Wa']['label'].split()[1]} (call to result "
            f"{call_few:.3f} ms)"
            if few and call_few
            else "",
            f"{max(many):.2f}" if many else "",
            "routing at most 1 ms at p99",
            max(many) <= 1.0 if many else None,
        )
    )
    rss = [r["rss_peak"] / 1e6 for r in raw.get("benchmarks.replicas", []) if "rss_peak" in r]
    out.append(
        Target(
            "5c",
            "many attached workers: the controller's peak RSS",
            f"{max(rss):.0f} MB (max of {len(rss)})" if rss else "",
            "300 MB",
            f"{max(rss) / 300:.2f}" if rss else "",
            "at most 300 MB",
            max(rss) <= 300 if rss else None,
        )
    )

    # 6. Cold start.
    fresh = samples("2f", "seconds")
    first = value("2e", "seconds")
    out.append(
        Target(
            "6a",
            "local cold start (2f): run() to the first task, fresh pool, running controller",
            f"{_median(fresh):.2f} s{_fmt_range(fresh, '.2f')}" if fresh else "",
            f"{first:.2f} s in a fresh process (2e)" if first else "",
            "",
            "at most 0.25 s",
            _median(fresh) <= 0.25 if fresh else None,
        )
    )
    # The container section's own local replicas (Ea), from the same fresh processes:
    # the ratio compares like with like (2f's running controller has no container twin).
    local, cont, ratios = samples("Ea", "seconds"), samples("Eb", "seconds"), samples("Ec", "ratio")
    out.append(
        Target(
            "6b",
            "container cold start (Eb): run() to the first task, fresh pool, fresh process",
            f"{_median(cont):.2f} s{_fmt_range(cont, '.2f')}" if ratios else "",
            f"{_median(local):.2f} s{_fmt_range(local, '.2f')} with local replicas (Ea)"
            if ratios
            else "",
            f"{_median(ratios):.1f}x{_fmt_range(ratios, '.1f')}" if ratios else "",
            "reported next to 6a",
            report_only=True,
        )
    )

    # 7. No regressions.
    ideal = samples("9a", "ratio_to_ideal")
    out.append(
        Target(
            "7a",
            "10 ms tasks (9a): makespan against the ideal",
            f"{value('9a', 'seconds'):.2f} s" if ideal else "",
            "n x 10 ms / 200",
            f"{_median(ideal):.2f}x" if ideal else "",
            "at most 1.15x",
            _median(ideal) <= 1.15 if ideal else None,
        )
    )
    ideal = samples("9b", "ratio_to_ideal")
    out.append(
        Target(
            "7b",
            "100 ms tasks (9b): efficiency",
            f"{value('9b', 'seconds'):.2f} s" if ideal else "",
            "n x 100 ms / 200",
            f"{1 / _median(ideal):.1%}" if ideal else "",
            "at least 97%",
            1 / _median(ideal) >= 0.97 if ideal else None,
        )
    )
    controller = samples("Ba", "rss_controller_peak_mb")
    replica = samples("Ba", "rss_replica_peak_mb")
    peak = max(controller + replica) if controller else None
    out.append(
        Target(
            "7c",
            "1 MiB in + out per task (Ba): every process's peak RSS",
            f"{max(controller):.0f} / {max(replica):.0f} MB (controller / replica)" if peak else "",
            "512 MB",
            f"{peak / 512:.2f}" if peak else "",
            "under 512 MB",
            peak < 512 if peak else None,
        )
    )
    seq, limit = value("2d", "p50_ms"), value("1", "p50_ms")
    out.append(
        Target(
            "7d",
            "sequential children (2d): p50, call to result",
            f"{seq:.3f} ms" if seq else "",
            f"{limit:.3f} ms, the limit's echo (1)" if limit else "",
            f"{seq / limit:.1f}x" if seq and limit else "",
            "no regression (before/after)",
            None,
        )
    )
    return out


def render(targets: list[Target]) -> str:
    """The targets as a Markdown table."""
    lines = [
        "| # | target | measured | floor / reference | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in targets:
        unjudged = "reported" if t.report_only else ""
        met = {True: "yes", False: "**no**", None: unjudged if t.measured else "not measured"}
        lines.append(
            f"| {t.key} | {t.what} | {t.measured} | {t.reference} | {t.ratio} | {t.goal} | "
            f"{met[t.met]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.targets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("results", type=Path, help="a benchmarks/results/<time>.json")
    args = parser.parse_args(argv)
    saved = json.loads(args.results.read_text())
    print(render(judge(saved["rows"], saved["raw"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
