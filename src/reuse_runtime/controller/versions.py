"""`CodeVersions`: the code bundles clients send, and which version of an environment is current.

A client sends its project's code bundle before it registers an environment
that runs it (``PutBundle``); the controller keeps it in a
:class:`~reuse_runtime.bundles.store.BundleStore` and serves it to replicas
that cannot see the client's files (``FetchBundle``). A registration naming a
bundle the controller lacks is refused, with what to do.

Each code version of an environment is a pool of its own (the bundle's digest
is part of the pool's key). Pools of one *lineage* (same name and settings, see
:meth:`~reuse_runtime.model.EnvironmentSpec.lineage`) are versions of one
environment: the one made last is current, and the one it replaces is
superseded (see :meth:`~reuse_runtime.controller.pool.ReplicaPool.supersede`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from reuse_runtime.bundles.store import BundleStore, BundleUpload
from reuse_runtime.errors import BadInputError, CodeBundleError
from reuse_runtime.model import EnvironmentSpec

if TYPE_CHECKING:
    from reuse_runtime.controller.pool import ReplicaPool

log = structlog.get_logger("reuse_runtime.controller")


class CodeVersions:
    """The controller's code bundles (``store``, None for none) and current versions."""

    def __init__(self, store: BundleStore | None, pools: Mapping[str, ReplicaPool]) -> None:
        self.store = store
        self._pools = pools  # the controller's, by key
        if store is not None:
            store.in_use = self.in_use
        # lineage -> the key of its newest pool
        self._current: dict[str, str] = {}

    # ------------------------------------------------------------ bundles (the wire's)

    @property
    def bundles_received(self) -> int:
        """Code bundle uploads this controller has taken whole."""
        return self.store.received if self.store is not None else 0

    def bundle_size(self, digest: str) -> int | None:
        return self.store.size(digest) if self.store is not None else None

    def receive_bundle(self, digest: str, size: int, source: str) -> BundleUpload:
        if self.store is None:
            raise CodeBundleError("this controller takes no code bundles")
        return self.store.receive(digest, size, source)

    def read_bundle(self, digest: str) -> bytes:
        if self.store is None:
            raise CodeBundleError("this controller keeps no code bundles")
        return self.store.read(digest)

    def check(self, spec: EnvironmentSpec) -> None:
        """Refuse an environment whose code bundle is not here."""
        digest = spec.code_bundle
        if not digest:
            return
        if self.store is None or not self.store.has(digest):
            raise BadInputError(
                f"environment {spec.name!r} runs code bundle {digest[:12]}, which this "
                f"controller does not have: send it first (PutBundle); run() does so itself"
            )
        self.store.touch(digest)

    # ------------------------------------------------------------ versions

    def supersede(self, spec: EnvironmentSpec, key: str) -> None:
        """Pool ``key`` of ``spec`` was made: the newest version of its environment. The
        one it replaces serves the work it has, then scales to zero (see ``decide_scale``)."""
        lineage = spec.lineage()
        replaced = self._current.get(lineage, "")
        self._current[lineage] = key
        previous = self._pools.get(replaced) if replaced != key else None
        if previous is not None:
            previous.supersede(key)
            log.info(
                "environment has a new version",
                env=spec.name,
                version=spec.version(),
                superseded=previous.spec.version(),
            )

    def in_use(self) -> set[str]:
        """Bundles a pool may still start replicas of: not those of idle old versions.
        Called from the store's thread: it reads a copy of the pools."""
        return {
            pool.spec.code_bundle
            for pool in list(self._pools.values())
            if pool.spec.code_bundle and not (pool.superseded and pool.scale_state.dormant)
        }


__all__ = ["CodeVersions"]
