"""Records for the runs store's tests, and a flush that must succeed."""

from __future__ import annotations

from reuse_runtime.store import (
    ActionPhase,
    ActionRecord,
    RunEnded,
    RunSubmitted,
    SqliteRunStore,
)

NOW = 1_800_000_000.0


def action(run: str, n: int, **fields: object) -> ActionRecord:
    """The ``n``-th child of ``run``'s root ``<run>-root``, succeeded with output ``b"v<n>"``."""
    base = ActionRecord(
        run=run,
        action_id=f"{run}-a{n}",
        parent_id=f"{run}-root",
        call_key=f"{run}-k{n}",
        task="child",
        environment="env",
        group="",
        phase=ActionPhase.SUCCEEDED,
        created=NOW + n,
        started=NOW + n + 0.5,
        ended=NOW + n + 1,
        replica="env-1",
        inputs_preview=f"({n},)",
        output=f"v{n}".encode(),
    )
    return base._replace(**fields)


def submitted(name: str, created: float = NOW, **fields: object) -> RunSubmitted:
    return RunSubmitted(
        name=name,
        task=str(fields.pop("task", "main")),
        environment=str(fields.pop("environment", "env")),
        root_action_id=f"{name}-root",
        created=created,
        **fields,  # type: ignore[arg-type]
    )


def ended(name: str, phase: ActionPhase = ActionPhase.SUCCEEDED) -> RunEnded:
    return RunEnded(name, phase, NOW + 1000, b"out")


def record_run(store: SqliteRunStore, name: str, actions: int = 2, created: float = NOW) -> None:
    """A whole finished run: submitted, ``actions`` children and its root, ended."""
    store.run_submitted(submitted(name, created))
    for n in range(actions):
        store.action_ended(action(name, n))
    store.action_ended(action(name, -1, action_id=f"{name}-root", parent_id="", call_key=""))
    store.run_ended(ended(name))


def flushed(store: SqliteRunStore) -> SqliteRunStore:
    assert store.flush(timeout=30), store.statistics()
    return store
