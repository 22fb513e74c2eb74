"""What the commands share: flags, the event loop, signal handlers, the error line.

The CLI is the only place that installs signal handlers (:func:`install_signal_handlers`);
the servers it starts take shutdown requests as plain calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reuse_runtime.envvars import env_number, env_port
from reuse_runtime.errors import ReuseRuntimeError, ScriptFailedError
from reuse_runtime.model import CodeBundle
from reuse_runtime.security import Security

#: What ``add_subparsers`` returns: each command module adds its parser to it.
if TYPE_CHECKING:
    from typing import TypeAlias

    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Commands = argparse._SubParsersAction  # not subscriptable at run time

#: Where ``reuse-runtime controller`` listens unless told otherwise; ``status`` looks here.
#: ``$REUSE_RUNTIME_CONTROLLER_PORT`` changes it for both.
PORT_ENV = "REUSE_RUNTIME_CONTROLLER_PORT"
DEFAULT_CONTROLLER_PORT = 50050
#: Where a standalone controller serves its web UI unless told otherwise, and where
#: ``reuse-runtime ui`` serves a runs store: ``$REUSE_RUNTIME_UI_PORT`` changes it.
UI_PORT_ENV = "REUSE_RUNTIME_UI_PORT"
DEFAULT_UI_PORT = 50080


def default_port() -> int:
    return env_number(
        PORT_ENV,
        DEFAULT_CONTROLLER_PORT,
        int,
        valid=lambda port: 0 < port <= 65535,
        needs="a port number",
        error=ReuseRuntimeError,
    )


def ui_port(given: int | None) -> tuple[int, bool]:
    """The web UI's port: ``given``, else ``$REUSE_RUNTIME_UI_PORT``, else
    DEFAULT_UI_PORT; and whether a taken port may give way to a free one (the default's
    alone may)."""
    if given is not None:
        return given, False
    from_env = env_port(UI_PORT_ENV, -1, error=ReuseRuntimeError)
    if from_env >= 0:
        return from_env, False
    return DEFAULT_UI_PORT, True


def add_command(commands: Commands, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` (and the CLI reference) opens with its one-line help."""
    return commands.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")


# ---------------------------------------------------------------- flags


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("credentials")
    group.add_argument(
        "--token",
        help="the shared token (default: $REUSE_RUNTIME_TOKEN, else the file named by "
        "$REUSE_RUNTIME_TOKEN_FILE)",
    )
    group.add_argument(
        "--tls-cert", metavar="PEM", help="certificate file (default: $REUSE_RUNTIME_TLS_CERT)"
    )
    group.add_argument(
        "--tls-key", metavar="PEM", help="private key file (default: $REUSE_RUNTIME_TLS_KEY)"
    )
    group.add_argument(
        "--tls-ca",
        metavar="PEM",
        help="CA file that client certificates must chain to: enables mTLS "
        "(default: $REUSE_RUNTIME_TLS_CA)",
    )


def add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (0 picks a port; default off)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics endpoint binds (default 127.0.0.1); it is read-only "
        "and unauthenticated",
    )


def security_from(args: argparse.Namespace) -> Security:
    """The credentials of :func:`add_security_flags`, the environment filling the gaps."""
    return Security.from_env(args.token, args.tls_cert, args.tls_key, args.tls_ca)


# ---------------------------------------------------------------- completion


def complete_choices(*choices: str) -> Callable[..., Iterable[str]]:
    """A shell completer (argcomplete's protocol) offering ``choices`` for a free-form value."""

    def complete(prefix: str, **_: Any) -> Iterable[str]:
        return [choice for choice in choices if choice.startswith(prefix)]

    return complete


def complete_python_files(prefix: str, **_: Any) -> Iterable[str]:
    """A shell completer: directories and ``*.py`` files (argcomplete is imported only here)."""
    from argcomplete.completers import FilesCompleter

    return list(FilesCompleter(allowednames=("py",))(prefix))


# ---------------------------------------------------------------- running


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return int(uvloop.run(main))


def install_signal_handlers(on_signal: Callable[[str], None]) -> None:
    """First SIGTERM/SIGINT asks for a graceful shutdown; a second one exits at once."""
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    def handle(signum: int) -> None:
        if seen:
            os._exit(128 + signum)
        seen.append(signum)
        on_signal(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)


def record_made_token(kind: str, server: Any) -> None:
    """A server started without credentials made up a token: keep it for this user's clients."""
    if not server.made_token:
        return
    from reuse_runtime.tokens import record_server

    path = record_server(kind, server.address, server.port, server.security.token)
    print(
        f"reuse-runtime {kind}: no token configured, so this {kind} made one; it is in {path} "
        f"(mode 0600), where clients of this user on this machine find it. Others need "
        f"REUSE_RUNTIME_TOKEN set to it.",
        file=sys.stderr,
        flush=True,
    )


def forget_made_token(server: Any) -> None:
    if server.made_token and server.port:
        from reuse_runtime.tokens import forget_server

        forget_server(server.port)


def load_script(path: Path) -> Any:
    """Import a script under its bundle name, so its tasks travel as a code bundle."""
    import importlib.util

    from reuse_runtime import code
    from reuse_runtime.sdk.excepthook import one_line

    source = path.read_bytes()
    name = code.bundle_module_name(str(path))
    bundle = CodeBundle(name, code.digest(source), str(path.resolve()), source)
    code.register_bundle(name, bundle)
    sys.path.insert(0, str(path.resolve().parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        # As in a replica: a run started while the script is imported is a mistake.
        with code.importing_script(str(path)):
            spec.loader.exec_module(module)
    except ReuseRuntimeError:
        raise
    except Exception as exc:
        raise ScriptFailedError(f"{path} failed when imported: {one_line(exc)}") from exc
    return module


# ---------------------------------------------------------------- errors


def describe(exc: BaseException) -> str:
    """The error line's text: the message of an expected error, else a bug's type too."""
    if isinstance(exc, (ReuseRuntimeError, ValueError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return (
        f"{type(exc).__name__}: {exc} (this is a bug in reuse-runtime; run with "
        f"--log-level debug for the traceback, and please report it)"
    )


def stdout_is_closed() -> bool:
    """Whether nobody reads our stdout any more (``reuse-runtime logs | head`` after head)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    if not hasattr(select, "poll"):
        return True  # no way to ask: take the broken pipe for stdout's
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    # A pipe's write end polls POLLERR once its last reader is gone.
    return any(events & select.POLLERR for _, events in poll.poll(0))
