"""`ProjectCode`: the project code bundle a replica runs, put where its imports find it.

A replica that cannot see the client's files (a pod, a container on a remote
engine, a worker someone else started) is told, in its
:class:`~reuse_runtime.model.ReplicaInit`, the digest of its environment's code
bundle and to fetch it. It fetches it from the controller once per digest (a
folder already unpacked for the digest, by this replica or a neighbour sharing
the code folder, is used as it is), checks it against the digest, unpacks it
into a folder of its own, and puts that folder first on ``sys.path`` before it
runs its on-start hook or any task.

**Baked code.** An image made with ``Image.with_code_bundle()`` holds its
version's bundle, unpacked, in ``/opt/reuse-runtime/code/<digest>``: a replica
of it imports from there, and fetches nothing.

**One version at a time.** A pool runs one version of the code, so a replica
normally installs one bundle in its life. A worker that joins a newer version
of its environment (``worker --environment NAME --reconnect``, after its
controller restarted) unloads the old version first: every module imported
from the old folder leaves ``sys.modules`` and the loader's cache, and the old
folder leaves ``sys.path``. What else the process holds (imported libraries,
models loaded by them) stays warm.

A replica that sees the client's files only records the digest: a task calling
another task names the same pool as the client did.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from reuse_runtime import code
from reuse_runtime.bundles.archive import Unpacked, max_bundle_bytes, unpack, unpacked
from reuse_runtime.errors import CodeBundleError
from reuse_runtime.images.recipe import BAKED_CODE_DIR
from reuse_runtime.paths import code_dir
from reuse_runtime.worker.loader import CodeLoader

log = structlog.get_logger("reuse_runtime.worker")

#: Fetches a bundle's bytes by digest (from the controller, over its authenticated channel).
Fetch = Callable[[str], Awaitable[bytes]]
#: A bundle's files may unpack to this many times the limit on what a client sends.
UNPACKED_FACTOR = 4


class ProjectCode:
    """The code bundle this process runs, if any. Lives on the replica's loop."""

    def __init__(
        self, loader: CodeLoader, folder: Path | None = None, baked: Path = Path(BAKED_CODE_DIR)
    ) -> None:
        self._loader = loader
        self._folder = folder
        self._baked = baked
        self.digest = ""
        self._installed: Unpacked | None = None
        self._lock = asyncio.Lock()

    @property
    def folder(self) -> Path:
        return self._folder if self._folder is not None else code_dir()

    async def install(self, digest: str, *, fetch: Fetch | None, source: str) -> None:
        """Run bundle ``digest`` from now on: fetched with ``fetch`` (None: only recorded).

        Raises :class:`CodeBundleError`, one line naming the bundle, where it came
        from and what to do; the replica then runs nothing (it exits).
        """
        async with self._lock:
            if digest == self.digest:
                return
            found = unpacked(self._baked, digest) if digest else None  # in the image
            if found is None and (fetch is None or not digest):
                self._unload()
                self.digest = digest
                code.set_project_bundle(digest)
                return
            found = found or unpacked(self.folder, digest)
            if found is None:
                assert fetch is not None
                try:
                    data = await fetch(digest)
                except CodeBundleError:
                    raise
                except Exception as exc:
                    raise CodeBundleError(
                        f"code bundle {digest[:12]} could not be fetched from {source}: {exc}; "
                        f"check that the controller is reachable and still has it (run the "
                        f"client again to send it)"
                    ) from None
                limit = UNPACKED_FACTOR * max_bundle_bytes()
                try:
                    found = await asyncio.to_thread(
                        unpack, data, digest, self.folder, source=source, max_bytes=limit
                    )
                except OSError as exc:
                    raise CodeBundleError(
                        f"code bundle {digest[:12]} could not be unpacked in {self.folder}: "
                        f"{exc.strerror or exc}; give the replica a writable code folder "
                        f"(--code-dir or $REUSE_RUNTIME_CODE_DIR)"
                    ) from None
            self._unload()
            for path in reversed(found.paths):
                sys.path.insert(0, str(path))
            importlib.invalidate_caches()
            self._installed = found
            self.digest = digest
            code.set_project_bundle(digest)
            log.info("code bundle installed", digest=digest[:12], folder=str(found.root))

    def _unload(self) -> None:
        """Forget the installed bundle's modules and folders (a new version comes next)."""
        old = self._installed
        if old is None:
            return
        self._installed = None
        root = os.path.realpath(old.root) + os.sep
        gone = []
        for name, module in list(sys.modules.items()):
            filename = getattr(module, "__file__", None)
            if isinstance(filename, str) and os.path.realpath(filename).startswith(root):
                del sys.modules[name]
                code.forget_version(name)
                gone.append(name)
        self._loader.forget(gone)
        folders = {str(path) for path in old.paths}
        sys.path[:] = [entry for entry in sys.path if entry not in folders]
        importlib.invalidate_caches()
        log.info("code bundle unloaded", digest=old.digest[:12], modules=len(gone))


__all__ = ["Fetch", "ProjectCode"]
