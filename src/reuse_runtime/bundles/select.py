"""Which files of a project go into its code bundle: Flyte's ``copy_style`` choices.

* ``"loaded_modules"``: the source files of the modules this process has loaded
  from the project root, and the project's modules they import (read from
  their ``import`` statements, so a module imported lazily, inside a function,
  comes too);
* ``"all"``: every file under the root, minus what ``.gitignore`` files (at
  any depth) and the root's ``.dockerignore`` exclude, and what never belongs
  in a bundle (``.git``, ``__pycache__``, virtual environments, ``.env``).

Installed packages never come: nothing under ``sys.prefix``, site-packages,
or reuse-runtime itself, nor reuse-runtime's state directory. Nor does a file
whose real path leaves the root (a symbolic link pointing out): a bundle holds
the project, and nothing else of the machine.
"""

from __future__ import annotations

import ast
import os
import site
import stat
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reuse_runtime.errors import CodeBundleError
from reuse_runtime.paths import code_dir, state_dir, store_dir

#: Names never bundled with ``copy_style="all"``, as in flyte-sdk's standard ignores.
STANDARD_IGNORES = (
    ".git",
    "__pycache__",
    "*.pyc",
    ".venv",
    "venv",
    ".env",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".idea",
    ".tox",
    "*.egg-info",
)
#: The most files the import walk of ``loaded_modules`` follows.
MAX_WALKED = 20_000


@dataclass(frozen=True, slots=True)
class Selected:
    """The files of a bundle, by name relative to the root, and the import paths."""

    files: dict[str, Path]
    #: Folders (relative to the root, POSIX; "" is the root) that go on ``sys.path``.
    paths: tuple[str, ...]


def check_root(root: Path) -> Path:
    """``root`` resolved, or :class:`CodeBundleError` saying it is no project folder."""
    try:
        resolved = root.expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        resolved = None
    if resolved is None or not resolved.is_dir():
        raise CodeBundleError(
            f"root_dir {root} is not a directory: pass flyte.init(root_dir=...) the folder "
            f"that holds your project's code"
        )
    return resolved


def import_paths(root: Path) -> tuple[str, ...]:
    """The folders of ``sys.path`` inside ``root``, in order, relative; the root last."""
    found: list[str] = []
    for entry in sys.path:
        real = _real(entry or os.getcwd())
        if real is None or not real.is_dir() or _excluded(real):
            continue
        relative = _relative(real, root)
        if relative is not None and relative not in found:
            found.append(relative)
    if "" not in found:
        found.append("")
    return tuple(found)


def loaded_modules(root: Path) -> Selected:
    """The project's files this process has loaded, with the project files they import."""
    paths = import_paths(root)
    bases = [root / p if p else root for p in paths]
    files: dict[str, Path] = {}
    pending: list[Path] = []
    known = _project_files.setdefault(str(root), {})
    for module in list(sys.modules.values()):
        try:
            filename = module.__dict__.get("__file__")
        except AttributeError:  # an object that is no module, put in sys.modules
            continue
        if not isinstance(filename, str):
            continue
        found = _project_file(root, known, filename)
        if found is not None and _add(found[0], found[1], files):
            pending.append(found[1])
    walked = 0
    while pending and walked < MAX_WALKED:
        path = pending.pop()
        walked += 1
        if path.suffix != ".py":
            continue
        for name, level in _imports(path):
            for candidate in _module_files(name, level, path, bases):
                if not os.path.isfile(candidate):  # most are not there: one stat each
                    continue
                real = _real(str(candidate))
                if real is not None and _keep(real, root, files):
                    pending.append(real)
    return Selected(files, paths)


def all_files(root: Path) -> Selected:
    """Every file under ``root`` that no ignore file (or :data:`STANDARD_IGNORES`) excludes."""
    ignores = _Ignores(root)
    # reuse-runtime's own files (runs' logs, bundles, unpacked code) may live in the project.
    own = {os.path.realpath(p) for p in (state_dir(), code_dir(), store_dir())}
    files: dict[str, Path] = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        relative_folder = _relative(here, root) or ""
        ignores.enter(here, relative_folder)
        kept = []
        for name in sorted(dirs):
            rel = f"{relative_folder}/{name}" if relative_folder else name
            path = here / name
            if (
                not ignores.ignored(rel, directory=True)
                and not path.is_symlink()
                and os.path.realpath(path) not in own
            ):
                kept.append(name)
        dirs[:] = kept
        for name in sorted(names):
            rel = f"{relative_folder}/{name}" if relative_folder else name
            if ignores.ignored(rel, directory=False):
                continue
            path = here / name
            real = _real(str(path))
            if real is None or _relative(real, root) is None or _excluded(real):
                continue  # a dangling link, or one pointing out of the project
            try:
                mode = real.stat().st_mode
            except FileNotFoundError:
                continue  # a dangling link
            except OSError as exc:
                raise CodeBundleError(
                    f"cannot read {path} for the code bundle: {exc.strerror or exc}; fix its "
                    f"permissions, or leave it out with .gitignore or .dockerignore"
                ) from None
            if stat.S_ISREG(mode):
                files[rel] = path
    return Selected(files, import_paths(root))


# ------------------------------------------------------------------ ignore files


class _Ignores:
    """``.gitignore`` files met on the way down (deeper ones win), and ``.dockerignore``."""

    def __init__(self, root: Path) -> None:
        import pathspec

        self._spec = pathspec.GitIgnoreSpec
        self._stack: list[tuple[str, pathspec.GitIgnoreSpec]] = [
            ("", self._spec.from_lines(STANDARD_IGNORES))
        ]
        docker = root / ".dockerignore"
        if docker.is_file():
            lines = [line.strip() for line in self._read(docker) if line.strip()]
            # .dockerignore patterns are anchored at the root; "**/" reaches deeper.
            anchored = [
                (("!" + "/" + p[1:].lstrip("/")) if p.startswith("!") else "/" + p.lstrip("/"))
                for p in lines
                if not p.startswith("#")
            ]
            self._stack.append(("", self._spec.from_lines(anchored)))

    def enter(self, folder: Path, relative: str) -> None:
        # Leave the specs of folders this walk has left (os.walk goes depth first).
        self._stack = [
            (base, spec)
            for base, spec in self._stack
            if not base or relative == base or relative.startswith(base + "/")
        ]
        gitignore = folder / ".gitignore"
        if gitignore.is_file():
            self._stack.append((relative, self._spec.from_lines(self._read(gitignore))))

    def ignored(self, relative: str, *, directory: bool) -> bool:
        for base, spec in reversed(self._stack):
            inside = relative[len(base) + 1 :] if base else relative
            result = spec.check_file(inside + "/" if directory else inside)
            if result.include is not None:
                return bool(result.include)
        return False

    @staticmethod
    def _read(path: Path) -> list[str]:
        try:
            return path.read_text(errors="replace").splitlines()
        except OSError as exc:
            raise CodeBundleError(
                f"cannot read {path}: {exc.strerror or exc}; fix its permissions"
            ) from None


# ------------------------------------------------------------------ modules


# A source file -> (its size and mtime, the imports it makes): parsed again only if it changed.
_parsed: dict[Path, tuple[tuple[int, int], tuple[tuple[str, int], ...]]] = {}


def _imports(path: Path) -> tuple[tuple[str, int], ...]:
    """(module name, relative level) of each import in a source file; none if unparsable."""
    try:
        info = path.stat()
    except OSError:
        return ()
    stamp = (info.st_size, info.st_mtime_ns)
    cached = _parsed.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found = tuple(_parse_imports(path))
    if len(_parsed) > 50_000:
        _parsed.clear()
    _parsed[path] = (stamp, found)
    return found


def _parse_imports(path: Path) -> Iterator[tuple[str, int]]:
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            yield base, node.level
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name, node.level


def _module_files(name: str, level: int, importer: Path, bases: list[Path]) -> Iterator[Path]:
    """Files that may hold module ``name`` (and its packages), as imported from ``importer``."""
    parts = [p for p in name.split(".") if p]
    if level:
        folder = importer.parent
        for _ in range(level - 1):
            folder = folder.parent
        roots = [folder]
    else:
        roots = bases
    for base in roots:
        for depth in range(1, len(parts) + 1):
            stem = base.joinpath(*parts[:depth])
            yield stem / "__init__.py"
            yield stem.with_name(stem.name + ".py")


def _keep(real: Path, root: Path, files: dict[str, Path]) -> bool:
    """Add ``real`` to ``files`` if it is a new file of the project; whether it was added."""
    relative = _relative(real, root)
    if relative is None or _excluded(real) or "__pycache__" in relative.split("/"):
        return False
    return _add(relative, real, files)


def _add(relative: str, real: Path, files: dict[str, Path]) -> bool:
    if relative in files or not real.is_file():
        return False
    files[relative] = real
    return True


# A root -> a loaded module's file name -> (its name in the project, its real path), or
# None for a module of no project under the root: every run asks again for each of
# hundreds of modules, and a module's file stays where it is.
_project_files: dict[str, dict[str, tuple[str, Path] | None]] = {}


def _project_file(
    root: Path, known: dict[str, tuple[str, Path] | None], filename: str
) -> tuple[str, Path] | None:
    if filename in known:
        return known[filename]
    real = _module_real(filename)
    found = None
    if real is not None and not _excluded(real):
        relative = _relative(real, root)
        if relative is not None and "__pycache__" not in relative.split("/"):
            found = (relative, real)
    if len(known) > 100_000:
        known.clear()
    known[filename] = found
    return found


def _real(path: str) -> Path | None:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None


# A module's file name -> its real path: modules stay put, and a run asks for every one.
_module_paths: dict[str, Path | None] = {}


def _module_real(filename: str) -> Path | None:
    if filename in _module_paths:
        return _module_paths[filename]
    if len(_module_paths) > 100_000:
        _module_paths.clear()
    found = _module_paths[filename] = _real(filename)
    return found


def _relative(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (both absolute and normal), POSIX; None if outside."""
    text, base = str(path), str(root)
    if text == base:
        return ""
    prefix = base if base.endswith(os.sep) else base + os.sep
    if not text.startswith(prefix):
        return None
    relative = text[len(prefix) :]
    return relative if os.sep == "/" else relative.replace(os.sep, "/")


def _installed_dirs() -> tuple[Path, ...]:
    """Folders of installed code: never part of a project's bundle."""
    # reuse-runtime's own package (this file is reuse_runtime/bundles/select.py), and its
    # containers' PID 1 beside it.
    package = Path(os.path.realpath(__file__)).parents[1]
    found = {package, package.parent / "reuse_runtime_init.py"}
    for raw in (sys.prefix, sys.base_prefix, sys.exec_prefix, *_site_dirs()):
        if raw:
            found.add(Path(os.path.realpath(raw)))
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        library = sysconfig.get_paths().get(key)
        if library:
            found.add(Path(os.path.realpath(library)))
    return tuple(found)


def _site_dirs() -> list[str]:
    dirs = list(getattr(site, "getsitepackages", list)())
    user = getattr(site, "getusersitepackages", None)
    if user is not None:
        dirs.append(user())
    return dirs


_INSTALLED: tuple[str, ...] | None = None


def _excluded(real: Path) -> bool:
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = tuple(str(d).rstrip(os.sep) + os.sep for d in _installed_dirs())
    text = str(real) + os.sep
    return any(text.startswith(d) for d in _INSTALLED)


__all__ = ["STANDARD_IGNORES", "Selected", "all_files", "check_root", "import_paths",
           "loaded_modules"]  # fmt: skip
