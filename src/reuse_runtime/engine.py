"""The container engine: Docker, or Podman's Docker-compatible service.

Everything that talks to an engine finds it here (:func:`connect`), the usual
way: ``$DOCKER_HOST``, else Podman's socket, else Docker's. When none answers,
the error says how to start one.

**The ulimit trap** lives here too, and only here. An engine asks the kernel
for its default ulimits (nofile 1048576, say) when it starts a container, and
on a host whose hard limits are lower (nofile 20000, nproc 32768 on these
machines) the start fails with ``error setting rlimit type 7 (nofile):
operation not permitted``. So:

* containers we create get explicit ulimits at or below this process's hard
  limits (:func:`container_ulimits`);
* ``reuse-runtime engine start`` runs ``podman system service`` with
  ``CONTAINERS_CONF`` pointing at a file with the same limits
  (:func:`write_containers_conf`), so a hand-run ``podman run`` works too.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reuse_runtime.errors import EngineUnavailableError

if TYPE_CHECKING:
    import docker

DOCKER_HOST_ENV = "DOCKER_HOST"
#: The Engine API version we speak; Docker and Podman 4+ both serve it.
API_VERSION = "1.41"
#: Connections kept to the engine: waits for container exits do not hold one.
MAX_CONNECTIONS = 64
_CONTAINER_EXTRA = "pip install 'reuse-runtime[container]'"


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


def container_ulimits() -> list[Ulimit]:
    """Ulimits every container of ours gets: this host's hard limits, which it can grant.

    nproc stays high: without a user namespace it counts every root process on
    the host. It is capped at ``kernel.pid_max``, which Podman applies to itself.
    """
    nofile = _hard_limit(resource.RLIMIT_NOFILE, 1_048_576)
    nproc = min(_hard_limit(resource.RLIMIT_NPROC, 4_194_304), _pid_max())
    return [Ulimit("nofile", nofile, nofile), Ulimit("nproc", nproc, nproc)]


def _hard_limit(which: int, ceiling: int) -> int:
    _, hard = resource.getrlimit(which)
    return ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 32768


def containers_conf_text() -> str:
    """A ``containers.conf`` that keeps Podman inside this host's limits."""
    limits = ", ".join(f'"{u.name}={u.soft}:{u.hard}"' for u in container_ulimits())
    return (
        "# Written by reuse-runtime: ulimits this host can grant (see reuse_runtime/engine.py).\n"
        "[containers]\n"
        f"default_ulimits = [{limits}]\n"
        "\n[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
    )


def write_containers_conf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(containers_conf_text())
    return path


def default_podman_socket() -> Path:
    """Where Podman's service listens by default: root's, or this user's."""
    if os.geteuid() == 0:
        return Path("/run/podman/podman.sock")
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return Path(runtime_dir) / "podman" / "podman.sock"


def candidate_hosts() -> list[str]:
    """Engine addresses to try, in order: $DOCKER_HOST alone when set."""
    explicit = os.environ.get(DOCKER_HOST_ENV)
    if explicit:
        return [explicit]
    sockets = [
        default_podman_socket(),
        Path("/run/podman/podman.sock"),
        Path("/var/run/docker.sock"),
        Path.home() / ".docker" / "run" / "docker.sock",
    ]
    unique = dict.fromkeys(f"unix://{s}" for s in sockets)
    return list(unique)


def connect(host: str | None = None, *, timeout: float = 60.0) -> docker.DockerClient:
    """A client of the first engine that answers; raises with how to start one."""
    return _answering(host, timeout)[1]


def find_engine(timeout: float = 10.0) -> str:
    """The address of the engine :func:`connect` would use (DOCKER_HOST form)."""
    address, client = _answering(None, timeout)
    client.close()
    return address


def _answering(host: str | None, timeout: float) -> tuple[str, docker.DockerClient]:
    try:
        import docker
    except ImportError:
        raise EngineUnavailableError(
            f"the container backend needs the Docker client library: {_CONTAINER_EXTRA}"
        ) from None
    hosts = [host] if host else candidate_hosts()
    tried = []
    for address in hosts:
        if address.startswith("unix://") and not Path(address[len("unix://") :]).exists():
            tried.append(f"{address} (no such socket)")
            continue
        client = None
        try:
            client = docker.DockerClient(
                base_url=address, version=API_VERSION, timeout=int(timeout),
                max_pool_size=MAX_CONNECTIONS,
            )  # fmt: skip
            client.ping()
        except Exception as exc:
            if client is not None:  # a socket that does not answer: close what was opened
                client.close()
            tried.append(f"{address} ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        return address, client
    raise EngineUnavailableError(
        "no container engine answered; tried "
        + "; ".join(tried)
        + ". Start one: `reuse-runtime engine start` runs Podman's Docker-compatible service "
        "(with ulimits this host can grant), or `systemctl --user start podman.socket`, or "
        f"start Docker; or point ${DOCKER_HOST_ENV} at a running engine"
    )


def engine_name(client: docker.DockerClient) -> str:
    """``"Podman 4.3.1"`` or ``"Docker 27.0.1"``, for messages."""
    version: dict[str, Any] = client.version()
    components = {c.get("Name", "") for c in version.get("Components", []) if isinstance(c, dict)}
    product = "Podman" if any("Podman" in name for name in components) else "Docker"
    return f"{product} {version.get('Version', '?')}"


# ------------------------------------------------------------------ podman service


def start_podman_service(
    socket: Path, *, conf: Path, log: Path, wait: float = 30.0, idle_exit: int = 0
) -> subprocess.Popen[bytes]:
    """Start ``podman system service`` on ``socket``, detached, and wait until it answers.

    It runs with ``CONTAINERS_CONF=conf`` (written here); stop it by its pid
    (written next to the log as ``podman-service.pid``). With ``idle_exit``, it
    also exits by itself after that many seconds without a client (so one
    started for a test run cannot outlive a test run that was killed).
    """
    podman = shutil.which("podman")
    if podman is None:
        raise EngineUnavailableError(
            "podman is not installed: `apt-get install -y podman runc` (Debian, Ubuntu) or "
            "`dnf install -y podman`, or start Docker and point $DOCKER_HOST at it"
        )
    write_containers_conf(conf)
    socket.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [podman, "system", "service", f"--time={idle_exit}", f"unix://{socket}"],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=env,
            start_new_session=True,  # outlives this command, and ignores its Ctrl-C
        )
    (log.parent / "podman-service.pid").write_text(str(process.pid))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailableError(
                f"podman system service exited with code {process.returncode}; see {log}"
            )
        if socket.exists():
            try:
                connect(f"unix://{socket}", timeout=5.0).close()
                return process
            except EngineUnavailableError:
                pass
        time.sleep(0.1)
    process.kill()
    raise EngineUnavailableError(
        f"podman system service did not answer within {wait:g} s; see {log}"
    )


def stop_podman_service(process: subprocess.Popen[bytes], wait: float = 30.0) -> None:
    """Stop a service :func:`start_podman_service` started: SIGTERM, then SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=wait)


@contextlib.contextmanager
def engine_for_run(where: Path, *, idle_exit: int = 600) -> Iterator[str]:
    """The address of an engine for one run (a test session, a benchmark).

    The engine that answers the usual way (:func:`find_engine`), else Podman's service
    started on a socket in ``where``, which exits by itself after ``idle_exit``
    seconds without a client and is stopped when the run ends, however it ends.
    Raises :class:`EngineUnavailableError`, saying what to do, when there is neither.
    """
    try:
        running: str | None = find_engine()
    except EngineUnavailableError as exc:
        if shutil.which("podman") is None:
            raise EngineUnavailableError(
                f"{exc}. Podman is not installed here: apt-get install -y podman runc"
            ) from None
        running = None
    if running is not None:
        yield running
        return
    socket = where / "podman.sock"
    service = start_podman_service(
        socket, conf=where / "containers.conf", log=where / "podman.log", idle_exit=idle_exit
    )
    try:
        yield f"unix://{socket}"
    finally:
        stop_podman_service(service)
