"""Pickling that keeps a script's classes themselves on both sides of a task call.

A script run as ``__main__`` is imported in replicas under its bundle name
(``_reuse_main_<stem>``, see :mod:`reuse_runtime.code`). So that a dataclass or
an exception defined in the script is the *same* class in the driver and in the
task (``isinstance``, ``==`` and ``except MyError`` all work):

* the driver registers its ``__main__`` module under the bundle name too
  (:func:`alias_main`), so results naming ``_reuse_main_x.Point`` unpickle to
  ``__main__.Point``;
* :func:`dumps` pickles the driver's ``__main__`` classes and functions by
  reference, under the bundle name, where plain cloudpickle would copy them by
  value and the replica would get a look-alike class.

Replicas pickle bundle classes by reference as any importable module's.

:func:`dumps` also keeps two promises cloudpickle alone does not:

* an exception arrives as itself, with its attributes, even when its
  ``__init__`` takes other arguments than its ``args`` (:func:`load_exception`);
  where its class cannot be loaded, it arrives as a
  :class:`~reuse_runtime.errors.TaskRaisedError` that is an instance of the
  nearest base class that can;
* a value that only means something in its own process (an open file, a
  socket, a lock; see :data:`RESOURCES`) is refused with
  :class:`~reuse_runtime.errors.ProcessResourceError`, where cloudpickle would
  send an open file's contents as an ``io.StringIO``, and others fail obscurely.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import mmap
import pickle
import socket
import subprocess
import sys
import threading
import types
from typing import Any

import cloudpickle

from reuse_runtime import errors, user_exceptions

#: The module name a script run as ``__main__`` has in replicas (``_reuse_main_<stem>``).
BUNDLE_PREFIX = "_reuse_main_"

_main_alias: str | None = None

_FILE = ("an open file", "{send} its path instead, or a flyte.io.File")
_LOCK = ("a lock", "it only works within one process; create it where it is used")
#: Values that only mean something in their own process: what each is, and what to
#: send instead ("{send}" is "pass" for an argument, "return" for a result).
RESOURCES: dict[type, tuple[str, str]] = {
    io.TextIOWrapper: _FILE,
    io.BufferedReader: _FILE,
    io.BufferedWriter: _FILE,
    io.BufferedRandom: _FILE,
    io.BufferedRWPair: _FILE,
    io.FileIO: _FILE,
    mmap.mmap: ("a memory map", "{send} the path of its file instead"),
    socket.socket: ("a socket", "{send} its address instead, and connect where it is used"),
    type(threading.Lock()): _LOCK,
    type(threading.RLock()): _LOCK,
    threading.Condition: _LOCK,
    threading.Semaphore: _LOCK,
    threading.Event: ("a threading.Event", "it only works within one process"),
    threading.Barrier: ("a threading.Barrier", "it only works within one process"),
    threading.Thread: ("a thread", "start it where it is used"),
    subprocess.Popen: ("a running process", "{send} its pid or its output instead"),
    asyncio.Lock: _LOCK,
    asyncio.Condition: _LOCK,
    asyncio.Semaphore: _LOCK,
    asyncio.Event: ("an asyncio.Event", "it only works within one process"),
    asyncio.Queue: ("an asyncio.Queue", "{send} a list of its items instead"),
    asyncio.Future: ("a future (or asyncio task)", "await it, and {send} its result instead"),
    asyncio.AbstractEventLoop: ("an event loop", "each process has its own"),
    types.CoroutineType: ("a coroutine", "await it, and {send} its result instead"),
    types.GeneratorType: ("a generator", "{send} a list of its items instead"),
    types.AsyncGeneratorType: ("an async generator", "{send} a list of its items instead"),
}
_RESOURCE_TYPES = tuple(RESOURCES)
#: The streams cloudpickle sends by name (the replica's own stdout, ...): not refused.
_STANDARD_STREAMS = ("stdout", "stderr")


def alias_main(module_name: str) -> None:
    """Make ``module_name`` another name of this process's ``__main__`` module."""
    global _main_alias
    main = sys.modules.get("__main__")
    if main is None:
        return
    sys.modules.setdefault(module_name, main)
    if sys.modules[module_name] is main:
        _main_alias = module_name


def import_attr(module: str, qualname: str) -> Any:
    """``module.qualname``, importing the module: how :func:`dumps` names script objects."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _by_reference(obj: object) -> tuple[Any, ...] | None:
    alias = _main_alias
    if alias is None or getattr(obj, "__module__", None) != "__main__":
        return None
    qualname = getattr(obj, "__qualname__", "")
    if not qualname or "<" in qualname:  # <locals>, <lambda>: not reachable by name
        return None
    try:
        found = import_attr("__main__", qualname)
    except (AttributeError, ImportError):
        return None
    return (import_attr, (alias, qualname)) if found is obj else None


def user_type_name(cls: type) -> str:
    """``module.qualname``, but only ``qualname`` for a class of the user's script.

    In a replica the script is the module ``_reuse_main_<stem>``: a name the user
    never wrote, as Python leaves out ``__main__``.
    """
    module = getattr(cls, "__module__", "") or ""
    if not module or module.startswith(BUNDLE_PREFIX):
        return str(cls.__qualname__)
    return f"{module}.{cls.__qualname__}"


def refuse_resource(obj: object) -> None:
    """Raise :class:`~reuse_runtime.errors.ProcessResourceError` if ``obj`` is one of
    :data:`RESOURCES` (or of a subclass)."""
    for kind in type(obj).__mro__:
        found = RESOURCES.get(kind)
        if found is not None:
            break
    else:
        return
    if isinstance(obj, io.TextIOWrapper) and any(
        obj is getattr(sys, name, None) for name in _STANDARD_STREAMS
    ):
        return
    what, advice = found
    name = getattr(obj, "name", None) if isinstance(obj, io.IOBase) else None
    if isinstance(name, str):
        what = f"{what} ({name!r})"
    raise errors.ProcessResourceError(obj, what, advice)


def _reduced_as_builtin(cls: type[BaseException]) -> bool:
    """Whether ``cls`` pickles as its builtin base does (``cls(*args)``, say): it did
    not choose how it pickles."""
    for name in ("__reduce_ex__", "__reduce__"):
        owner = next(klass for klass in cls.__mro__ if name in vars(klass))
        if owner.__flags__ & errors.HEAP_TYPE:
            return False
    return True


def _import_name(cls: type) -> tuple[str, str]:
    module = cls.__module__
    if module == "__main__" and _main_alias is not None:
        module = _main_alias
    return module, cls.__qualname__


def load_exception(
    pickled_class: bytes,
    names: tuple[tuple[str, str], ...],
    args: tuple[Any, ...],
    fields: tuple[tuple[str, Any], ...],
    type_name: str,
    message: str,
) -> BaseException:
    """An exception as :meth:`_Pickler.reducer_override` sent it: its own class if that
    loads here, else a :class:`~reuse_runtime.errors.TaskRaisedError` that is an
    instance of the nearest of its bases (``names``, nearest first) that loads."""
    try:
        cls = pickle.loads(pickled_class)
    except Exception:
        cls = None
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return user_exceptions.rebuild_exception(cls, args, fields)
        except Exception:
            pass
    bases: list[type[BaseException]] = []
    for module, qualname in names:
        try:
            base = import_attr(module, qualname)
        except Exception:
            continue
        if isinstance(base, type) and issubclass(base, BaseException):
            bases.append(base)
    return user_exceptions.stand_in(bases, type_name, message)


def _reduce_exception(pickler: _Pickler, error: BaseException) -> tuple[Any, ...] | None:
    cls = user_exceptions.original_class(type(error))
    if cls.__module__ == "builtins" or not _reduced_as_builtin(cls):
        return None  # a builtin, or a class that chose how it pickles
    buffer = io.BytesIO()
    type(pickler)(buffer, protocol=pickler.proto).dump(cls)
    names = tuple(_import_name(base) for base in cls.__mro__[1:-1] if "<" not in base.__qualname__)
    try:
        message = str(error)
    except Exception:
        message = f"<unprintable {cls.__name__}>"
    loaded_with = (
        buffer.getvalue(),
        names,
        error.args,
        user_exceptions.builtin_fields(error),
        user_type_name(cls),
        message,
    )
    # The state is applied after the exception is made (as pickle does with the
    # third item), so an attribute that refers back to the exception still loads.
    return (load_exception, loaded_with, user_exceptions.exception_state(error) or None)


#: What :meth:`_Pickler.reducer_override` (or cloudpickle's) reduces; anything else is
#: left to pickle at once. Classes and functions are all cloudpickle's own override handles.
_OVERRIDDEN = (type, types.FunctionType, BaseException, *_RESOURCE_TYPES)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    def reducer_override(self, obj: Any) -> Any:
        # Called for every object that is not a plain builtin: one check for the rest.
        if not isinstance(obj, _OVERRIDDEN):
            return NotImplemented
        if isinstance(obj, (type, types.FunctionType)):
            reduced = _by_reference(obj)
            if reduced is not None:
                return reduced
        elif isinstance(obj, BaseException):
            reduced = _reduce_exception(self, obj)
            if reduced is not None:
                return reduced
        elif isinstance(obj, _RESOURCE_TYPES):
            refuse_resource(obj)
        return super().reducer_override(obj)


def dumps(obj: object, protocol: int | None = None) -> bytes:
    """``cloudpickle.dumps``, naming the script's own classes and functions by reference.

    Raises :class:`~reuse_runtime.errors.ProcessResourceError` for an open file, a
    socket, a lock, ... anywhere in ``obj`` (see :data:`RESOURCES`).
    """
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=protocol or cloudpickle.DEFAULT_PROTOCOL).dump(obj)
    return buffer.getvalue()
