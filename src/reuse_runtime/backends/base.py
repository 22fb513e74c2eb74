"""The backend interface: start, stop, list, and health of replicas.

A backend only launches and stops replica processes (or containers, or pods).
Every replica attaches back to the controller by itself (``--controller``), so
a backend never needs to know a replica's address.
"""

from __future__ import annotations

import concurrent.futures
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from reuse_runtime.aio import in_executor
from reuse_runtime.model import EnvironmentSpec
from reuse_runtime.security import Security

# The caller's settings a replica in a container or pod needs too: importing the
# caller's module in a replica validates its ReusePolicy against the same TTL floor.
FORWARDED_SETTINGS = (
    "REUSE_RUNTIME_MIN_TTL_SECONDS",
    "REUSE_RUNTIME_LOG_LEVEL",
    "REUSE_RUNTIME_MAX_OUTSTANDING",
    "REUSE_RUNTIME_MAX_OUTSTANDING_BYTES",
    "REUSE_RUNTIME_GC",
    "REUSE_RUNTIME_MALLOC",
    "REUSE_RUNTIME_MAX_BUNDLE_BYTES",
)


@dataclass(frozen=True)
class ReplicaLaunch:
    """Everything a backend needs to start one replica."""

    replica_id: str
    environment: EnvironmentSpec
    controller_address: str
    security: Security
    grace_period: float = 10.0
    heartbeat: float = 1.0
    max_payload: str = "64Mi"
    #: The replica fetches the environment's code bundle from the controller instead of
    #: seeing the client's files: the backend mounts none, and gives it a folder to
    #: unpack into (see ``Backend.shares_files``).
    fetch_code: bool = False
    #: Reads a code bundle from the controller's store by digest (blocking): what an
    #: image made with ``with_code_bundle()`` bakes.
    read_code: Callable[[str], bytes] | None = None


@dataclass(frozen=True)
class ExitStatus:
    """How a replica ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None
    oom: bool = False
    detail: str = ""
    # The memory limit the replica reached, as configured ("200Mi"), when it ran out.
    memory_limit: str = ""
    # The backend itself killed it (a stuck task, a stop past its grace period).
    by_runtime: bool = False
    # The orchestrator's word for it, where there is one (Kubernetes: "OOMKilled").
    reason: str = ""

    def describe(self) -> str:
        if self.oom:
            said = f" ({self.reason})" if self.reason else ""
            if self.memory_limit:
                return (
                    f"ran out of memory{said}: the OOM killer ended it at its memory limit of "
                    f"{self.memory_limit}"
                )
            return f"ran out of memory{said}: killed by the OOM killer"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            if self.signal == signal.SIGKILL and not self.by_runtime:
                return f"killed by {name} from outside reuse-runtime (kill -9, or the OOM killer)"
            return f"killed by {name}"
        if self.code is not None:
            return f"exited with code {self.code}"
        return self.detail or "ended for an unknown reason"


def worker_arguments(launch: ReplicaLaunch, host: str = "127.0.0.1", port: int = 0) -> list[str]:
    """The ``reuse-runtime worker`` arguments of a replica; secrets go in its environment."""
    return [
        "--host",
        host,
        "--port",
        str(port),
        "--controller",
        launch.controller_address,
        "--replica-id",
        launch.replica_id,
        "--concurrency",
        str(launch.environment.policy.concurrency),
        "--grace-period",
        f"{launch.grace_period:g}",
        "--heartbeat",
        f"{launch.heartbeat:g}",
        "--max-payload",
        launch.max_payload,
    ]


class ReplicaHandle(Protocol):
    replica_id: str

    def describe(self) -> str:
        """Where the replica runs: a pid, a container id, a pod name."""
        ...

    def stderr_tail(self) -> str:
        """The last lines the replica wrote to stderr, to explain a failed start."""
        ...


H = TypeVar("H")


def own_handle(handle: ReplicaHandle, kind: type[H], backend: str) -> H:
    """``handle`` as the ``kind`` its backend made; a handle of another backend is a bug."""
    if not isinstance(handle, kind):
        raise TypeError(f"the {backend} backend got a {type(handle).__name__} handle")
    return handle


async def follow_in_thread(
    follow: Callable[[threading.Event], None],
    name: str,
    executor: concurrent.futures.Executor,
) -> threading.Thread:
    """Start ``follow`` (an engine's event stream, a pod watch: blocking calls) in a
    daemon thread, and wait, up to 30 s, until it sets the event it is given: it has
    subscribed, so nothing that happens from now on is missed."""
    subscribed = threading.Event()
    thread = threading.Thread(target=follow, args=(subscribed,), name=name, daemon=True)
    thread.start()
    await in_executor(executor, subscribed.wait, 30.0)
    return thread


@runtime_checkable
class AdoptingBackend(Protocol):
    """A backend whose replicas outlive a controller restart (Kubernetes pods).

    A restarted controller finds them by label; each pool claims its own when it
    is created, so it starts no fresh replica for them. Their workers dial the
    controller again by themselves (``reuse-runtime worker --reconnect``).
    """

    def claim(self, env_key: str) -> list[ReplicaHandle]:
        """The live replicas of environment ``env_key`` a predecessor left; each is
        handed out once. Wait for their end with ``wait()``, as for started ones."""
        ...


class Backend(Protocol):
    name: str

    @property
    def shares_files(self) -> bool:
        """Whether replicas see the client's files (this machine's), so code reaches them
        by path; otherwise each replica fetches the code bundle from the controller."""
        ...

    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        """Launch a replica; returns once it is launched, not once it is ready."""
        ...

    async def stop(self, handle: ReplicaHandle, grace: float) -> None:
        """Ask the replica to drain (SIGTERM), and kill it after ``grace`` seconds."""
        ...

    async def kill(self, handle: ReplicaHandle) -> None:
        """Kill the replica at once."""
        ...

    async def wait(self, handle: ReplicaHandle) -> ExitStatus:
        """Return once the replica has ended, with how it ended."""
        ...

    def list(self) -> list[ReplicaHandle]:
        """Replicas this backend started that have not ended yet."""
        ...

    async def healthy(self, handle: ReplicaHandle) -> bool:
        """Whether the replica's process (container, pod) is still running."""
        ...

    async def close(self) -> None:
        """Stop every replica this backend started."""
        ...
