"""`CodeLoader`: imports task code once per replica and keeps it warm.

A module is imported once and stays in ``sys.modules``, so its globals,
``functools.cache`` entries and lazily loaded models persist across tasks.

When a task asks for another *version* of a module, the loader executes that
version into a fresh module object and puts it in ``sys.modules``. Tasks that
are still running keep the old module's globals, and new tasks see only the
new ones: old and new state never mix.

Imports run in a worker thread, so a slow import never blocks the event loop.

A script's code bundle is kept from the moment its task arrives (:meth:`CodeLoader.keep`),
whether that task then runs or not: the controller sends each version to a replica
once, and the replica's later tasks of it come without it.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import linecache
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reuse_runtime import code
from reuse_runtime.errors import CodeNotFoundError, ScriptImportError
from reuse_runtime.model import CodeBundle, FunctionRef

#: The attribute on an SDK task object that holds the user's function.
TASK_FUNCTION_ATTR = "__reuse_function__"


class CodeLoader:
    """Resolve :class:`FunctionRef` to callables, importing each module version once.

    ``private=True`` (for ``reuse_runtime.testing``, which runs several emulated
    replicas in one process): each loader executes its own copy of a module,
    outside ``sys.modules``, so module globals and caches are per loader, as they
    are per replica process. Classes stay shared with the process's own import,
    so exceptions and results compare equal to the caller's.

    ``on_load(module, seconds)`` is called after each module is loaded (metrics).
    """

    def __init__(
        self,
        *,
        private: bool = False,
        on_load: Callable[[str, float], None] | None = None,
    ) -> None:
        # module name -> (module, code version it was loaded at)
        self._loaded: dict[str, tuple[types.ModuleType, str]] = {}
        # module name -> its load in progress (at most one per module at a time)
        self._loading: dict[str, asyncio.Future[types.ModuleType]] = {}
        self._private = private
        self.on_load = on_load
        # digest -> every code bundle this replica was sent (see keep)
        self._bundles: dict[str, CodeBundle] = {}

    def loaded(self) -> dict[str, str]:
        """Module name -> code version, for every module loaded for a task."""
        return {name: version for name, (_, version) in self._loaded.items()}

    def keep(self, bundle: CodeBundle) -> None:
        """Hold ``bundle`` for the tasks of its version, from its first task's arrival.

        The controller sends a bundle with the first task of its version that a
        replica gets, and counts it delivered. That task may never run a line (it is
        cancelled while it waits, or its run is aborted), or a later version may
        replace the module: a later task of this version, sent without the bundle,
        still finds it here. Held for the replica's life, as the controller holds it.
        """
        self._bundles.setdefault(bundle.digest, bundle)

    def forget(self, names: list[str]) -> None:
        """Forget these modules (unloaded with their code bundle): the next task that
        names one imports it again."""
        for name in names:
            self._loaded.pop(name, None)

    def loaded_module(self, name: str) -> types.ModuleType | None:
        """The module loaded under ``name`` for tasks, if any."""
        entry = self._loaded.get(name)
        return entry[0] if entry is not None else None

    def ready(self, ref: FunctionRef) -> Callable[..., object] | None:
        """The callable ``ref`` names if its module is loaded already, else None (then
        :meth:`resolve` loads it). Raises as :meth:`resolve` does."""
        module = self._cached(ref.module, ref.code_version)
        return None if module is None else _attribute(module, ref)

    async def resolve(self, ref: FunctionRef, bundle: CodeBundle | None) -> Callable[..., object]:
        """The callable ``ref`` names. Raises :class:`CodeNotFoundError` with a clear reason."""
        if bundle is None and ref.code_version:
            bundle = self._bundles.get(ref.code_version)
        module = self._cached(ref.module, ref.code_version)
        while module is None:
            loading = self._loading.get(ref.module)
            if loading is None:
                module = await self._load_once(ref.module, ref.code_version, bundle)
                break
            # Another task is loading this module: every task waiting for it wakes at
            # once when it ends (a lock would wake them one loop iteration apiece, and
            # their results would trickle back a few per message). A failed or other
            # version's load leaves the cache empty: then this task loads for itself.
            await asyncio.wait({loading})
            module = self._cached(ref.module, ref.code_version)
        return _attribute(module, ref)

    async def _load_once(
        self, name: str, version: str, bundle: CodeBundle | None
    ) -> types.ModuleType:
        load = self._load_private if self._private else self._load
        loading = asyncio.ensure_future(asyncio.to_thread(load, name, version, bundle))
        self._loading[name] = loading
        loading.add_done_callback(functools.partial(self._loaded_one, name, time.perf_counter()))
        # Shielded: an import runs on in its thread anyway, and the waiters share it.
        return await asyncio.shield(loading)

    def _loaded_one(
        self, name: str, began: float, loading: asyncio.Future[types.ModuleType]
    ) -> None:
        if self._loading.get(name) is loading:
            del self._loading[name]
        # The exception is retrieved here; the task that started the load raises it.
        if not loading.cancelled() and loading.exception() is None and self.on_load is not None:
            self.on_load(name, time.perf_counter() - began)

    def _cached(self, name: str, version: str) -> types.ModuleType | None:
        entry = self._loaded.get(name)
        if entry is None:
            return None
        module, loaded_version = entry
        if version and loaded_version and version != loaded_version:
            return None
        return module

    def _load(self, name: str, version: str, bundle: CodeBundle | None) -> types.ModuleType:
        if bundle is not None and bundle.module == name:
            if version and bundle.digest != version:
                raise CodeNotFoundError(
                    f"code bundle for {name} has version {bundle.digest[:12]}, "
                    f"but the task asks for {version[:12]}"
                )
            return self._exec_bundle(bundle)
        if name.startswith(code.BUNDLE_PREFIX):
            raise CodeNotFoundError(
                f"module {name} (a script shipped as a code bundle) at version "
                f"{version[:12] or '?'} is not loaded on this replica; "
                f"send its bundle with the task"
            )
        previous = self._loaded.get(name)
        try:
            if previous is None and name not in sys.modules:
                module = importlib.import_module(name)
            elif previous is None:
                module = sys.modules[name]
            else:
                module = _fresh_import(name)
        except ModuleNotFoundError as exc:
            raise CodeNotFoundError(
                f"module {name!r} cannot be imported on this replica ({exc}); install it in the "
                f"replica's image or put it on PYTHONPATH"
            ) from None
        except Exception as exc:
            raise CodeNotFoundError(
                f"importing module {name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        loaded_version = code.module_version(module)
        if version and loaded_version and loaded_version != version and previous is None:
            # First load found another version on disk: reread it once, fresh.
            module = _fresh_import(name)
            loaded_version = code.module_version(module)
        if version and loaded_version and loaded_version != version:
            raise CodeNotFoundError(
                f"this replica has version {loaded_version[:12]} of module {name!r}, but the "
                f"task asks for {version[:12]}; rebuild the replica's image or restart the pool"
            )
        self._loaded[name] = (module, loaded_version or version)
        return module

    def _load_private(self, name: str, version: str, bundle: CodeBundle | None) -> types.ModuleType:
        """This loader's own copy of the module (see ``private``); ``sys.modules`` untouched."""
        original = sys.modules.get(name)
        try:
            if bundle is not None and bundle.module == name:
                module = types.ModuleType(name)
                module.__file__ = bundle.filename
                exec(compile(bundle.source, bundle.filename, "exec"), module.__dict__)
            else:
                spec = getattr(original, "__spec__", None) or importlib.util.find_spec(name)
                if spec is None or spec.loader is None:
                    raise ModuleNotFoundError(f"No module named {name!r}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
        except Exception as exc:
            raise CodeNotFoundError(
                f"importing module {name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if original is not None:
            for attr, value in list(vars(module).items()):
                shared = getattr(original, attr, None)
                if (
                    isinstance(value, type)
                    and isinstance(shared, type)
                    and value.__module__ == name
                    and value.__qualname__ == shared.__qualname__
                ):
                    setattr(module, attr, shared)
        self._loaded[name] = (module, version)
        return module

    def _exec_bundle(self, bundle: CodeBundle) -> types.ModuleType:
        module = types.ModuleType(bundle.module)
        module.__file__ = bundle.filename
        text = bundle.source.decode("utf-8", errors="replace")
        # Let tracebacks show the user's lines even where the file is not on disk.
        linecache.cache[bundle.filename] = (
            len(text),
            None,
            text.splitlines(keepends=True),
            bundle.filename,
        )
        try:
            compiled = compile(text, bundle.filename, "exec")
        except (SyntaxError, ValueError) as exc:  # ValueError: a NUL in the file name
            raise CodeNotFoundError(
                f"code bundle {bundle.filename} does not compile: {exc}"
            ) from None
        previous = sys.modules.get(bundle.module)
        sys.modules[bundle.module] = module
        # The script sees itself as the program (sys.argv[0]), without the driver's
        # arguments; reading them at import time gets a hint below.
        argv, probe = sys.argv, _ArgvProbe([bundle.filename])
        sys.argv = probe
        try:
            with code.importing_script(bundle.filename):
                exec(compiled, module.__dict__)
        except BaseException as exc:
            if previous is not None:
                sys.modules[bundle.module] = previous
            else:
                sys.modules.pop(bundle.module, None)
            message = _import_failure(bundle.filename, exc, probe.read)
            if isinstance(exc, ScriptImportError):  # the message says all: no traceback
                raise CodeNotFoundError(message) from None
            raise CodeNotFoundError(message) from exc
        finally:
            if sys.argv is probe:
                sys.argv = argv
        # Classes of a bundle travel by reference, under its module name: a driver
        # running the script as __main__ knows that name too (see reuse_runtime.pickling).
        code.register_bundle(bundle.module, bundle)
        self._loaded[bundle.module] = (module, bundle.digest)
        return module


class _ArgvProbe(list[str]):
    """``sys.argv`` while a replica imports a script: it notes whether the script read it."""

    read = False

    def __getitem__(self, index: Any) -> Any:
        self.read = True
        return super().__getitem__(index)

    def __len__(self) -> int:
        self.read = True
        return super().__len__()

    def __iter__(self) -> Iterator[str]:
        self.read = True
        return super().__iter__()


def _import_failure(filename: str, exc: BaseException, read_argv: bool) -> str:
    if isinstance(exc, ScriptImportError):
        return str(exc)
    message = f"importing {filename} failed: {type(exc).__name__}: {exc}"
    if read_argv:
        message += (
            f"; {Path(filename).name} reads sys.argv when it is imported, and a replica "
            f"imports it without the driver's arguments: read them under "
            f'`if __name__ == "__main__":`'
        )
    return message


def _fresh_import(name: str) -> types.ModuleType:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}")
    module = importlib.util.module_from_spec(spec)
    code.forget_version(name)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if previous is not None:
            sys.modules[name] = previous
        raise
    return module


def _attribute(module: types.ModuleType, ref: FunctionRef) -> Callable[..., object]:
    if "<locals>" in ref.qualname:
        raise CodeNotFoundError(
            f"{ref} is defined inside a function and cannot be named by reference; "
            f"define it at module level, or send it by value"
        )
    target: object = module
    for part in ref.qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CodeNotFoundError(
                f"module {ref.module!r} has no attribute {ref.qualname!r}"
            ) from None
    target = getattr(target, TASK_FUNCTION_ATTR, target)
    if not callable(target):
        raise CodeNotFoundError(f"{ref} is a {type(target).__name__}, not a callable")
    return target
