"""How a function travels to a replica: by reference, with a code version.

A function is named by its module and qualified name. The code version is the
sha256 of the module's source. A module a replica cannot import by itself - the
user's script, run as ``__main__`` - travels as a :class:`~reuse_runtime.model.CodeBundle`
and is imported there under a stable name, ``_reuse_main_<stem>``.

Bundles this process knows (made here, or loaded by a replica) are kept in one
registry, so a task running in a replica can call another task of the same
script: the child is named by the bundle's module, and the bundle travels on.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

from reuse_runtime import pickling
from reuse_runtime.model import CodeBundle, FunctionRef

BUNDLE_PREFIX = pickling.BUNDLE_PREFIX

# module name (as seen in this process) -> bundle
_bundles: dict[str, CodeBundle] = {}
# module name -> digest of its source file, cached
_digests: dict[str, str] = {}
# The project code bundle (digest) this process runs, in a replica; "" elsewhere.
_project_bundle = ""
#: Bumped when the code on disk changed under this process (see :func:`forget_versions`):
#: what was worked out from module versions is worked out again.
generation = 0


def digest(source: bytes) -> str:
    """The code version of a module's source."""
    return hashlib.sha256(source).hexdigest()


def bundle_module_name(path: str) -> str:
    """The stable module name a script at ``path`` is imported under in a replica."""
    stem = re.sub(r"\W", "_", Path(path).stem) or "script"
    return f"{BUNDLE_PREFIX}{stem}"


def script_bundle(path: str, source: bytes, *, filename: str = "") -> CodeBundle:
    """The code bundle of the script at ``path`` whose text is ``source``: imported in
    replicas as :func:`bundle_module_name`, versioned by its :func:`digest`, and shown
    in tracebacks as ``filename`` (``path`` unless given)."""
    return CodeBundle(
        module=bundle_module_name(path),
        digest=digest(source),
        filename=filename or path,
        source=source,
    )


def register_bundle(local_name: str, bundle: CodeBundle) -> None:
    """Remember that module ``local_name`` of this process is shipped as ``bundle``."""
    _bundles[local_name] = bundle


def bundle_for(local_name: str) -> CodeBundle | None:
    """The bundle of a module of this process, making one for ``__main__`` on first use."""
    bundle = _bundles.get(local_name)
    if bundle is None and local_name == "__main__":
        bundle = _main_bundle()
        if bundle is not None:
            _bundles[local_name] = bundle
            # The script's classes pickle under the bundle's name, and come back as
            # themselves: see reuse_runtime.pickling.
            pickling.alias_main(bundle.module)
    return bundle


def bundle_module_name_of(local_name: str) -> str:
    """The name module ``local_name`` of this process has in replicas, if it is a bundle."""
    bundle = _bundles.get(local_name)
    return bundle.module if bundle is not None else ""


def _main_bundle() -> CodeBundle | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None
    try:
        source = Path(path).read_bytes()
    except OSError:
        return None
    return script_bundle(path, source, filename=str(Path(path).resolve()))


class _Importing(threading.local):
    script: str = ""


_importing = _Importing()


@contextlib.contextmanager
def importing_script(filename: str) -> Iterator[None]:
    """Mark this thread as importing a script bundle in a replica (see :func:`script_import`)."""
    previous, _importing.script = _importing.script, filename
    try:
        yield
    finally:
        _importing.script = previous


def script_import() -> str:
    """The script this thread is importing in a replica, or "".

    A script without an ``if __name__ == "__main__":`` guard calls ``run()`` while
    a replica imports it; ``run()`` asks this to say so, as ``multiprocessing`` does.
    """
    return _importing.script


def project_bundle() -> str:
    """The digest of the project code bundle this replica runs ("" outside replicas).

    A task calling another task names its pool with it, as the client did.
    """
    return _project_bundle


def set_project_bundle(digest: str) -> None:
    """Record the project code bundle this replica runs (the worker does, at its init)."""
    global _project_bundle
    _project_bundle = digest


def module_version(module: types.ModuleType) -> str:
    """The code version of an importable module: the digest of its source file."""
    name = module.__name__
    cached = _digests.get(name)
    if cached is not None:
        return cached
    version = ""
    path = getattr(module, "__file__", None)
    if path and path.endswith(".py"):
        try:
            version = digest(Path(path).read_bytes())
        except OSError:
            version = ""
    _digests[name] = version
    return version


def forget_version(module_name: str) -> None:
    _digests.pop(module_name, None)


def forget_versions() -> None:
    """The project's files changed since they were read (a new code bundle): module
    versions are read again from disk, so the next run names the code it ships."""
    global generation
    _digests.clear()
    generation += 1


def reference(module_name: str, qualname: str) -> tuple[FunctionRef, CodeBundle | None]:
    """Name a function of this process for a replica, with the bundle it needs, if any."""
    bundle = bundle_for(module_name)
    if bundle is not None:
        return FunctionRef(bundle.module, qualname, bundle.digest), bundle
    module = sys.modules.get(module_name)
    version = module_version(module) if module is not None else ""
    return FunctionRef(module_name, qualname, version), None
