"""``flyte.ctx().checkpoint``: what a task saves for its next attempt, in the file store.

::

    @env.task(retries=3)
    def train(steps: int) -> int:
        checkpoint = flyte.ctx().checkpoint
        path = checkpoint.load_sync()             # the last attempt's save, or None
        start = int(path.read_bytes()) if path else 0
        for step in range(start, steps):
            ...
            checkpoint.save_sync(str(step + 1).encode())
        return steps

As in Flyte: ``save`` (``save_sync`` in a ``def`` task) takes ``bytes``, a
file's path, or a directory's (stored as a gzip tar); ``load`` (``load_sync``)
gives the previous attempt's save, unpacked under ``checkpoint.path``: a tar's
tree there (it returns ``path``), anything else as ``path / "payload"`` (it
returns that); None when there is none. ``prev_exists()`` is true on a retry.

A checkpoint is a file of the file store, ``<store>/checkpoints/<run>/<action>/<attempt>``,
so it reaches every replica that shares the store: local replicas, and those of
the container backend with a local engine (which mounts it). Replicas of a
remote engine or of Kubernetes have their own store, which a retry on another
replica cannot read: there ``flyte.ctx().checkpoint`` raises
:class:`~reuse_runtime.errors.CheckpointUnavailableError`. Where Flyte hands a
retry only the attempt just before it, here a retry loads the newest save of
any earlier attempt.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from reuse_runtime.errors import CheckpointUnavailableError
from reuse_runtime.paths import STORE_SHARED_ENV, store_dir

#: Where a non-tar checkpoint is put under ``Checkpoint.path`` by ``load`` (Flyte's name).
PAYLOAD = "payload"


class Checkpoint:
    """An attempt's checkpoint: ``dest`` is where it saves, ``prev`` what it loads from, and
    ``workspace`` where it restores ``prev`` (next to ``dest``, not a temporary directory:
    ``flyte.ctx()`` makes a new ``Checkpoint`` each time, and a path ``load`` returned
    must outlive the object)."""

    def __init__(self, dest: Path, prev: Path | None, workspace: Path) -> None:
        self._dest = dest
        self._prev = prev
        self._workspace = workspace
        self._loaded: Path | None = None
        self._restored = False

    @property
    def path(self) -> Path:
        """The local directory ``load`` restores into (created on first use)."""
        self._workspace.mkdir(parents=True, exist_ok=True)
        return self._workspace

    @property
    def remote_destination(self) -> str:
        """Where ``save`` writes."""
        return str(self._dest)

    @property
    def remote_source(self) -> str | None:
        """Where ``load`` reads from, on a retry."""
        return str(self._prev) if self._prev is not None else None

    def prev_exists(self) -> bool:
        """Whether this attempt has an earlier one to load from (a retry)."""
        return self._prev is not None

    def load_sync(self) -> Path | None:
        """The previous attempt's save, restored under :attr:`path`; None when there is none."""
        if self._restored:
            return self._loaded
        self._restored = True
        prev = self._prev
        if prev is None or not prev.is_file() or prev.stat().st_size == 0:
            return None
        into = self.path
        for child in into.iterdir():  # what an earlier load of this attempt restored
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        if tarfile.is_tarfile(prev):
            with tarfile.open(prev, "r:*") as tar:
                tar.extractall(into, filter="data")
            self._loaded = into
        else:
            self._loaded = into / PAYLOAD
            shutil.copyfile(prev, self._loaded)
        return self._loaded

    async def load(self) -> Path | None:
        """``load_sync`` for async tasks: the file work runs in a thread."""
        return await asyncio.to_thread(self.load_sync)

    def save_sync(self, data: Path | str | bytes) -> None:
        """Save ``bytes``, a file, or a directory (as a gzip tar) for the next attempt."""
        self._dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._dest.parent, prefix=".saving-")
        partial = Path(name)
        try:
            if isinstance(data, bytes):
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            else:
                os.close(fd)
                source = Path(data)
                if source.is_dir():
                    with tarfile.open(partial, "w:gz") as tar:
                        for child in sorted(source.iterdir()):
                            tar.add(child, arcname=child.name)
                elif source.exists():
                    shutil.copyfile(source, partial)
                else:
                    raise FileNotFoundError(f"Checkpoint source path does not exist: {source}")
            os.replace(partial, self._dest)  # a crash mid-save leaves the last save whole
        finally:
            partial.unlink(missing_ok=True)

    async def save(self, data: Path | str | bytes) -> None:
        """``save_sync`` for async tasks: the file work runs in a thread."""
        await asyncio.to_thread(self.save_sync, data)

    def __repr__(self) -> str:
        return f"Checkpoint(dest={str(self._dest)!r}, prev={self.remote_source!r})"


def checkpoint_for(run_id: str, action: str, attempt: int) -> Checkpoint:
    """The checkpoint of ``attempt`` (from 1) of an action; it loads the newest earlier save."""
    if os.environ.get(STORE_SHARED_ENV) == "0":
        raise CheckpointUnavailableError(
            "flyte.ctx().checkpoint needs the file store shared with the replica that retries; "
            "this replica (Kubernetes or a remote container engine) has a store of its own"
        )
    folder = store_dir() / "checkpoints" / run_id / action
    attempt = max(attempt, 1)
    prev = None
    for earlier in range(attempt - 1, 0, -1):
        if (folder / str(earlier)).is_file():
            prev = folder / str(earlier)
            break
    if prev is None and attempt > 1:
        prev = folder / str(attempt - 1)  # a retry with nothing saved: load gives None
    return Checkpoint(folder / str(attempt), prev, folder / f"{attempt}.restored")


__all__ = ["PAYLOAD", "Checkpoint", "checkpoint_for"]
