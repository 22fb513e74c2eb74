"""Runs for the web UI's tests, written through the store's own recorder.

:func:`record_three_levels` makes what a real run of ``main -> group("prep") of
``prepare`` calls, and a ``flyte.map`` of ``square``, each calling ``leaf````
records; the browser tests run such a run for real as well.
"""

from __future__ import annotations

import pickle
import time

from reuse_runtime.store import (
    ActionPhase,
    ActionRecord,
    Attempt,
    ErrorInfo,
    LogRecord,
    RunEnded,
    RunProgress,
    RunSubmitted,
    SqliteRunStore,
)

#: What a hostile task writes: in its output, its name, its error.
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def action(run: str, action_id: str, parent: str, task: str, **fields: object) -> ActionRecord:
    now = float(fields.pop("at", time.time()))  # type: ignore[arg-type]
    return ActionRecord(
        run=run,
        action_id=action_id,
        parent_id=parent,
        call_key=f"k-{action_id}",
        task=task,
        environment=str(fields.pop("environment", "env")),
        group=str(fields.pop("group", "")),
        phase=fields.pop("phase", ActionPhase.SUCCEEDED),  # type: ignore[arg-type]
        created=now - 1.0,
        started=now - 0.8,
        ended=now,
        replica=str(fields.pop("replica", "env-1-aaaa")),
        inputs_preview=str(fields.pop("inputs_preview", "(1,)")),
        output=fields.pop("output", pickle.dumps(1)),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def record_three_levels(store: SqliteRunStore, name: str = "three-levels") -> None:
    """main -> group "prep" of 3 ``prepare`` -> 2 ``leaf`` each; main -> map of 20 ``square``."""
    now = time.time() - 60
    store.run_submitted(
        RunSubmitted(name, "main", "env", "root", created=now, inputs_preview="(n=20)")
    )
    store.run_progress(RunProgress(name, ActionPhase.RUNNING, now + 0.1))
    at = now + 1
    for p in range(3):
        for leaf in range(2):
            at += 0.1
            leaf_id = f"prep{p}-leaf{leaf}"
            store.log_line(LogRecord(name, leaf_id, "stdout", f"leaf {p}.{leaf} says hello", at))
            store.action_ended(
                action(name, leaf_id, f"prep{p}", "leaf", at=at, output=pickle.dumps(p))
            )
        store.action_ended(
            action(
                name, f"prep{p}", "root", "prepare", group="prep", at=at, output=pickle.dumps([p])
            )
        )
    for i in range(20):
        at += 0.05
        store.log_line(LogRecord(name, f"sq{i}", "stdout", f"squaring {i}", at))
        store.action_ended(
            action(name, f"sq{i}", "root", "square", group="square_map", at=at,
                   inputs_preview=f"({i},)", output=pickle.dumps(i * i),
                   replica=f"env-{1 + i % 2}-aaaa")
        )  # fmt: skip
    store.action_ended(
        action(
            name,
            "root",
            "",
            "main",
            at=at + 0.1,
            output=pickle.dumps(sum(i * i for i in range(20))),
        )
    )
    store.run_ended(RunEnded(name, ActionPhase.SUCCEEDED, at + 0.2, pickle.dumps(2470)))


def record_hostile(store: SqliteRunStore, name: str = "hostile") -> None:
    """A failed run whose task name, output, log and error are XSS probes."""
    now = time.time() - 30
    store.run_submitted(RunSubmitted(name, XSS, "env", "root", created=now, inputs_preview=XSS))
    error = ErrorInfo("USER", "ValueError", XSS, f"Traceback:\n  raise ValueError({XSS!r})\n")
    store.log_line(LogRecord(name, "child", "stdout", XSS, now + 1))
    store.action_ended(action(name, "child", "root", XSS, at=now + 1, output=pickle.dumps(XSS)))
    store.action_ended(
        action(name, "root", "", XSS, at=now + 2, phase=ActionPhase.FAILED, output=b"",
               error=error, attempts=(
                   Attempt(1, "env-1-aaaa", now + 0.5, now + 1, ActionPhase.FAILED, error),
                   Attempt(2, "env-2-bbbb", now + 1.2, now + 2, ActionPhase.FAILED, error),
               ))
    )  # fmt: skip
    store.run_ended(RunEnded(name, ActionPhase.FAILED, now + 2.1, error=error))


def record_wide(store: SqliteRunStore, name: str, children: int, *, group: str = "") -> None:
    """A run whose root called ``children`` tasks (in ``group``), all succeeded."""
    now = time.time() - 600
    store.run_submitted(RunSubmitted(name, "fan_out", "env", "root", created=now))
    out = pickle.dumps(4)
    records = [
        action(name, f"c{i}", "root", "child", group=group, at=now + 1 + i * 0.001, output=out,
               inputs_preview=f"({i},)", replica=f"env-{i % 4}-aaaa")
        for i in range(children)
    ]  # fmt: skip
    for start in range(0, len(records), 5000):
        for record in records[start : start + 5000]:
            store.action_ended(record)
        assert store.flush(timeout=120)
    store.action_ended(action(name, "root", "", "fan_out", at=now + 2 + children * 0.001))
    store.run_ended(RunEnded(name, ActionPhase.SUCCEEDED, now + 3 + children * 0.001))
