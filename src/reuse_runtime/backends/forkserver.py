"""`ForkServer`: local replicas forked from a process that has imported the runtime once.

Starting ``python -m reuse_runtime worker`` costs an interpreter and every import of
the runtime (grpc, protobuf, the SDK): most of a replica's cold start. The fork
server (a *zygote*: ``python -m reuse_runtime.cli.forkserver``) pays that once, when
the local backend opens, and then forks a replica per request, in a few
milliseconds. The forked process becomes what ``exec`` would have made:

* its own session and process group (as ``start_new_session``), stdin and stdout on
  ``/dev/null``, stderr on a pipe the controller reads, every other descriptor closed;
* exactly the environment, working directory and ``sys.path`` (``PYTHONPATH``) it
  would have had; secrets reach it in that environment, over a Unix socket, never on
  a command line;
* ``reuse_runtime worker ARGS`` as its program: the CLI's own main, so signal
  handling and exit codes are a worker's.

Only what a fresh interpreter would read at its start cannot follow: variables such
as ``PYTHON*`` (``PYTHONPATH`` aside), ``LD_*``, ``MALLOC_*``, ``GLIBC_TUNABLES``,
``GRPC_*``, ``PROTOCOL_BUFFERS_*``, locale and ``TZ``. A replica whose environment
differs from the zygote's in one of them is started with ``exec``, as is one whose
``sys.path`` would find another copy of a module the zygote imported (a ``PYTHONPATH``
that shadows the runtime or one of its dependencies), and all of them without
``os.pidfd_open`` (Linux 5.3), or with ``REUSE_RUNTIME_FORK_SERVER=off``. Forked
replicas share the zygote's hash seed; at exit they run ``atexit`` handlers, but do not
wait for non-daemon threads as an interpreter's exit would.

The zygote is the replicas' parent: it reaps them, reports each exit status, and
sends the signals the controller asks for, so a signal never reaches a process that
took a reaped replica's pid. Each replica dies with the zygote (``PR_SET_PDEATHSIG``);
the zygote outlives its controller only until its replicas, which see their
controller gone, have exited (:data:`ORPHAN_WAIT_S` at most).

The protocol: JSON messages on a ``SOCK_SEQPACKET`` socket pair, the stderr pipe of a
new replica passed with its request (``SCM_RIGHTS``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import errno
import importlib
import importlib.machinery
import json
import os
import select
import signal
import socket
import stat
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from reuse_runtime.aio import wait_within

log = structlog.get_logger("reuse_runtime.backends")

FORK_SERVER_ENV = "REUSE_RUNTIME_FORK_SERVER"
#: Seconds the zygote may take to import the runtime before replicas are exec'd instead.
READY_TIMEOUT_S = 60.0
#: Seconds a zygote whose controller is gone waits for its replicas to exit by themselves
#: before it kills them.
ORPHAN_WAIT_S = 120.0
#: The largest request (a replica's environment, mostly) sent to the zygote.
MAX_MESSAGE = 256 * 1024
#: Variables a new interpreter reads when it starts (or the runtime's imports read when
#: they run, once, in the zygote): a replica whose values differ is exec'd.
START_TIME_PREFIXES = ("PYTHON", "LD_", "MALLOC_", "GRPC_", "PROTOCOL_BUFFERS_", "LC_")
START_TIME_NAMES = frozenset({"GLIBC_TUNABLES", "TZ", "LANG", "LANGUAGE"})
_PR_SET_PDEATHSIG = 1


def wanted() -> bool:
    """Whether ``$REUSE_RUNTIME_FORK_SERVER`` allows the fork server (unset: yes)."""
    raw = os.environ.get(FORK_SERVER_ENV, "").strip().lower()
    if raw in ("", "on", "1", "true", "yes"):
        return True
    if raw in ("off", "0", "false", "no"):
        return False
    log.warning(f"{FORK_SERVER_ENV} must be on or off; got {raw!r}, using on")
    return True


def supported() -> bool:
    """Whether this system can run the fork server (Linux, with pidfds)."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open")


def start_time_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that only a new interpreter would read (see the module)."""
    return {
        name: value
        for name, value in env.items()
        if (name.startswith(START_TIME_PREFIXES) and name != "PYTHONPATH")
        or name in START_TIME_NAMES
    }


class ForkServerError(Exception):
    """The fork server could not start a replica (a bug, or the system's limits): the
    caller starts it with ``exec`` instead."""


class ForkRefused(ForkServerError):
    """A replica that a fork would not give what ``exec`` would (its ``sys.path`` finds
    another copy of a module the zygote imported): it is exec'd, as it should be."""


# ---------------------------------------------------------------- the controller's side


class ForkedProcess:
    """A replica the zygote forked: the interface of ``asyncio.subprocess.Process`` that
    the local backend uses, its signals sent through the zygote."""

    def __init__(self, server: ForkServer, request_id: int, pid: int) -> None:
        self._server = server
        self._id = request_id
        self.pid = pid
        self.returncode: int | None = None
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            self._server.signal(self._id, signum, group=False)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def kill_group(self) -> None:
        """SIGKILL its process group (what a task forked goes too), and it."""
        if self.returncode is None:
            self._server.signal(self._id, signal.SIGKILL, group=True)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def _ended(self, returncode: int) -> None:
        if self.returncode is None:
            self.returncode = returncode
            self._exited.set_result(returncode)


class ForkServer:
    """The controller's end of one zygote.

    Call-order contract: :meth:`start` (on the controller's loop; it does not wait for
    the zygote), then :meth:`spawn` as often as wanted, then :meth:`close` once every
    replica it forked has ended.
    """

    def __init__(self, log_path: Path | None = None) -> None:
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._environment: dict[str, str] = {}
        self._ids = 0
        self._starting: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._forked: dict[int, ForkedProcess] = {}
        self._outbox: list[tuple[bytes, list[int]]] = []
        self.failure = ""  # why it cannot fork, once it cannot

    async def start(self, environment: Mapping[str, str]) -> None:
        """Start the zygote with ``environment`` (no secrets: it needs none)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent.setblocking(False)
        self._sock = parent
        self._environment = dict(environment)
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        stderr: Any = asyncio.subprocess.DEVNULL
        if self._log_path is not None:
            stderr = os.open(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reuse_runtime.cli.forkserver", str(child.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(child.fileno(),),
                env=self._environment,
                cwd=os.getcwd(),
                start_new_session=True,  # no Ctrl-C of the caller's terminal reaches it
            )  # fmt: skip
        except OSError as exc:
            self._fail(f"could not start the fork server: {exc}")
            return
        finally:
            child.close()
            if isinstance(stderr, int) and stderr >= 0:
                os.close(stderr)
        self._reader = loop.create_task(self._read(), name="fork-server")

    def can_fork(self, env: Mapping[str, str]) -> bool:
        """Whether a replica with ``env`` may be forked (see :func:`start_time_environment`)."""
        return not self.failure and start_time_environment(env) == start_time_environment(
            self._environment
        )

    async def spawn(
        self, args: Sequence[str], env: Mapping[str, str], cwd: str, stderr: int
    ) -> ForkedProcess:
        """Fork ``reuse_runtime ARGS`` with ``env`` in ``cwd``, its stderr on the pipe
        end ``stderr`` (which this takes, and closes once sent). Raises
        :class:`ForkServerError`."""
        try:
            if self._ready is None:
                raise ForkServerError("the fork server was not started")
            try:
                await wait_within(asyncio.shield(self._ready), READY_TIMEOUT_S)
            except asyncio.TimeoutError:
                self._fail(f"the fork server was not ready within {READY_TIMEOUT_S:g} s")
            if self.failure:
                raise ForkServerError(self.failure)
            self._ids += 1
            request_id = self._ids
            message = json.dumps(
                {"op": "spawn", "id": request_id, "args": list(args), "env": dict(env), "cwd": cwd}
            ).encode()
            if len(message) > MAX_MESSAGE:
                raise ForkServerError(f"the replica's environment is over {MAX_MESSAGE} bytes")
        except BaseException:
            os.close(stderr)
            raise
        started: asyncio.Future[ForkedProcess] = asyncio.get_running_loop().create_future()
        self._starting[request_id] = started
        try:
            self._send(message, [stderr])
            return await started
        finally:
            self._starting.pop(request_id, None)

    def signal(self, request_id: int, signum: int, *, group: bool) -> None:
        """Have the zygote signal a replica it forked, if it has not reaped it yet."""
        if self._sock is not None and not self.failure:
            message = {"op": "signal", "id": request_id, "signal": signum, "group": group}
            self._send(json.dumps(message).encode(), [])

    async def close(self) -> None:
        """End the zygote: it exits once the replicas it forked have."""
        self._fail("the fork server is closed")
        if self._process is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await wait_within(self._process.wait(), ORPHAN_WAIT_S + 10)
            if self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    # ------------------------------------------------------------ internals

    def _send(self, data: bytes, fds: list[int]) -> None:
        """Queue a message, and the descriptors it passes (closed here once sent)."""
        if self._sock is None:
            _close_all(fds)
            return
        self._outbox.append((data, fds))
        if len(self._outbox) == 1:
            self._flush()

    def _flush(self) -> None:
        """Send what is queued; what the socket cannot take now waits until it can."""
        sock = self._sock
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        while self._outbox:
            data, fds = self._outbox[0]
            try:
                socket.send_fds(sock, [data], fds)
            except BlockingIOError:
                loop.add_writer(sock.fileno(), self._writable)
                return
            except OSError as exc:
                self._fail(f"the fork server is gone: {exc}")
                return
            self._outbox.pop(0)
            _close_all(fds)

    def _writable(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_writer(self._sock.fileno())
        self._flush()

    async def _read(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self._sock, 65536)
                if not data:
                    break
                self._receive(json.loads(data))
        except (OSError, ValueError) as exc:
            self._fail(f"the fork server's socket failed: {exc}")
        finally:
            self._fail("the fork server exited")
            # Its replicas died with it (PR_SET_PDEATHSIG): their exits come from here.
            for process in list(self._forked.values()):
                process._ended(-signal.SIGKILL)
            self._forked.clear()

    def _receive(self, message: dict[str, Any]) -> None:
        op, request_id = message.get("op"), message.get("id", 0)
        if op == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif op == "started":
            process = ForkedProcess(self, request_id, int(message["pid"]))
            self._forked[request_id] = process
            waiter = self._starting.get(request_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(process)
        elif op in ("failed", "refused"):
            waiter = self._starting.get(request_id)
            if waiter is not None and not waiter.done():
                kind = ForkServerError if op == "failed" else ForkRefused
                waiter.set_exception(kind(str(message.get("error"))))
        elif op == "exited":
            forked = self._forked.pop(request_id, None)
            if forked is not None:
                forked._ended(int(message["returncode"]))

    def _fail(self, why: str) -> None:
        """It forks nothing more: pending requests fail, and later ones are exec'd."""
        if not self.failure:
            self.failure = why
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        for waiter in self._starting.values():
            if not waiter.done():
                waiter.set_exception(ForkServerError(self.failure))
        for _, fds in self._outbox:
            _close_all(fds)
        self._outbox.clear()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_writer(sock.fileno())
            # Shut down first: uvloop holds the socket open while a read waits on it,
            # and the zygote must see its end close now, not when that read ends.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# ---------------------------------------------------------------- the zygote's side


def serve(
    sock: socket.socket,
    run: Callable[[list[str]], int],
    warm: Callable[[], object] | None = None,
) -> int:
    """The zygote's loop: fork a replica per request, running ``run(args)`` in it; reap
    them and report their exits; send the signals asked for. Returns once the
    controller's end is closed and every replica has exited.

    ``warm``, if given, runs once the first time no request waits: work that makes later
    replicas start faster, which the first ones need not wait for."""
    zygote = _Zygote(sock, run)
    zygote.warm = warm
    zygote.tell({"op": "ready", "pid": os.getpid()})
    return zygote.loop()


class _Zygote:
    def __init__(self, sock: socket.socket, run: Callable[[list[str]], int]) -> None:
        self._sock = sock
        self._run = run
        self.warm: Callable[[], object] | None = None
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._children: dict[int, tuple[int, int]] = {}  # pidfd -> (request id, pid)
        self._by_id: dict[int, int] = {}  # request id -> pid, while not reaped
        # sys.path without the zygote's own start (its working directory and PYTHONPATH):
        # from the standard library's zip on, what every interpreter of this Python has.
        stdlib_zip = os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}"
                                  f"{sys.version_info[1]}.zip")  # fmt: skip
        if stdlib_zip in sys.path:
            self._base_path = sys.path[sys.path.index(stdlib_zip) :]
        else:
            own = os.environ.get("PYTHONPATH", "")
            self._base_path = sys.path[1 + (len(own.split(os.pathsep)) if own else 0) :]
        self._main = str(Path(importlib.import_module("reuse_runtime").__file__ or "").parent)

    def tell(self, message: dict[str, Any]) -> None:
        if self._sock.fileno() < 0:
            return
        try:
            self._sock.send(json.dumps(message).encode())
        except OSError:  # the controller is gone: its replicas exit by themselves
            self._hang_up()

    def loop(self) -> int:
        orphaned_at: float | None = None
        while self._sock.fileno() >= 0 or self._children:
            if orphaned_at is not None and time.monotonic() - orphaned_at > ORPHAN_WAIT_S:
                for _, pid in self._children.values():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                orphaned_at = time.monotonic() + 3600  # once
            events = self._poll.poll(0 if self.warm is not None else 1000)
            if not events and self.warm is not None:
                warm, self.warm = self.warm, None
                warm()
                continue
            for fd, _ in events:
                if fd in self._children:
                    self._reap(fd)
                elif not self._receive():
                    orphaned_at = time.monotonic()
        return 0

    def _hang_up(self) -> None:
        if self._sock.fileno() >= 0:
            self._poll.unregister(self._sock.fileno())
            self._sock.close()

    def _receive(self) -> bool:
        """Handle one request; False once the controller's end is closed."""
        try:
            data, fds, _, _ = socket.recv_fds(self._sock, MAX_MESSAGE, 4)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            self._hang_up()
            return False
        try:
            message = json.loads(data)
            if message["op"] == "spawn":
                self._spawn(message, fds[0])
            elif message["op"] == "signal":
                self._signal(message)
        except Exception as exc:  # a bad request fails alone
            self.tell({"op": "failed", "id": _id_of(data), "error": f"{type(exc).__name__}: {exc}"})
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return True

    def _spawn(self, message: dict[str, Any], stderr: int) -> None:
        path = self._path_for(message["cwd"], message["env"].get("PYTHONPATH", ""))
        shadowed = _shadowed(path)
        if shadowed:
            why = f"its sys.path has another {shadowed!r} than the one the fork server imported"
            self.tell({"op": "refused", "id": message["id"], "error": why})
            return
        message["path"] = path
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the replica
            code = 1
            try:
                code = self._become(message, stderr)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                with contextlib.suppress(Exception):
                    traceback.print_exc()
            finally:
                with contextlib.suppress(BaseException):
                    atexit._run_exitfuncs()  # as the interpreter's exit would
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        pidfd = os.pidfd_open(pid)
        self._children[pidfd] = (message["id"], pid)
        self._by_id[message["id"]] = pid
        self._poll.register(pidfd, select.POLLIN)
        self.tell({"op": "started", "id": message["id"], "pid": pid})

    def _become(self, message: dict[str, Any], stderr: int) -> int:
        """In the forked child: become ``reuse_runtime ARGS``, as exec would have made it."""
        zygote = os.getppid()
        os.setsid()
        _die_with_parent()
        if os.getppid() != zygote:
            return 1  # the zygote died before that took hold
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(stderr, 2)
        self._sock.detach()  # closed below with the rest, never by its finalizer
        os.closerange(3, _max_fd())
        env: dict[str, str] = message["env"]
        cwd: str = message["cwd"]
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = message["path"]
        importlib.invalidate_caches()
        args: list[str] = message["args"]
        sys.argv = [os.path.join(self._main, "__main__.py"), *args]
        return self._run(args)

    def _path_for(self, cwd: str, pythonpath: str) -> list[str]:
        """The ``sys.path`` of ``python -m`` in ``cwd`` with ``pythonpath``: the directory,
        then each entry made absolute (an empty one is the directory), without repeats."""
        path: list[str] = []
        entries = pythonpath.split(os.pathsep) if pythonpath else []
        for entry in [*(os.path.join(cwd, e) for e in entries), *self._base_path]:
            entry = os.path.normpath(entry)
            if entry not in path:
                path.append(entry)
        return [cwd, *path]

    def _signal(self, message: dict[str, Any]) -> None:
        pid = self._by_id.get(message["id"])
        if pid is None:
            return  # reaped already: its pid may be another process's now
        signum = int(message["signal"])
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if message.get("group"):
                # It leads its own group, whose id stays reserved until it is reaped.
                os.killpg(pid, signum)
            os.kill(pid, signum)

    def _reap(self, pidfd: int) -> None:
        request_id, pid = self._children[pidfd]
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            reaped, status = pid, 0
        if reaped == 0:
            return
        self._poll.unregister(pidfd)
        os.close(pidfd)
        del self._children[pidfd]
        del self._by_id[request_id]
        self.tell(
            {"op": "exited", "id": request_id, "returncode": os.waitstatus_to_exitcode(status)}
        )


def _shadowed(path: list[str]) -> str:
    """A module the zygote imported that ``path`` would find elsewhere ("" if none): a
    replica on that path must be exec'd, to import what it would import."""
    origins: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if "." in name or not file:
            continue
        where = os.path.dirname(file)
        if hasattr(module, "__path__"):  # a package: found in its directory's parent
            where = os.path.dirname(where)
        origins[name] = os.path.normpath(where)
    for entry in path:
        if not origins:
            break
        try:
            names = _importable_names(entry)
        except OSError:
            continue
        for name in names & origins.keys():
            if origins.pop(name) != os.path.normpath(entry):
                return name
    # What is left is found after the listed entries (by an import hook, or as a
    # built-in), as in the zygote; unless the zygote found it in a directory path dropped.
    dropped = set(sys.path) - set(path)
    return next((n for n, where in origins.items() if where in dropped), "")


def _importable_names(entry: str) -> set[str]:
    """The top-level names ``entry`` holds a module or a regular package of. A folder with
    no ``__init__.py`` (a built site, a data folder) is at most a namespace portion, which
    a module found later on the path wins over: it shadows nothing."""
    suffixes = importlib.machinery.all_suffixes()
    names = set()
    for item in os.listdir(entry):
        if os.path.isfile(os.path.join(entry, item, "__init__.py")):
            names.add(item)
            continue
        for suffix in suffixes:
            if item.endswith(suffix):
                names.add(item[: -len(suffix)].partition(".")[0])
                break
    return names


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _id_of(data: bytes) -> int:
    with contextlib.suppress(Exception):
        return int(json.loads(data).get("id", 0))
    return 0


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent (the zygote) dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def check_directory(path: str) -> None:
    """Raise what ``exec`` into ``path`` would: a missing directory, or not one."""
    mode = os.stat(path).st_mode
    if not stat.S_ISDIR(mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
