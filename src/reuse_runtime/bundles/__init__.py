"""Code bundles: a project's source, packed and content-addressed, for replicas that
cannot see the client's files (Flyte's fast register).

:func:`build_bundle` makes one from a project root with one of Flyte's
``copy_style`` choices (see :mod:`~reuse_runtime.bundles.select`); the archive
format and its safe unpacking are :mod:`~reuse_runtime.bundles.archive`'s; a
controller keeps the bundles it was sent in a :class:`~reuse_runtime.bundles.store.BundleStore`.

Example::

    bundle = build_bundle(Path("."), "loaded_modules")
    if bundle is not None:
        print(bundle.digest[:12], bundle.files, "files,", len(bundle.data), "bytes")
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reuse_runtime.bundles.archive import Member, digest_of, max_bundle_bytes, pack
from reuse_runtime.bundles.select import all_files, check_root, loaded_modules
from reuse_runtime.errors import CodeBundleError

CopyStyle = Literal["loaded_modules", "all", "none"]
#: Flyte's ``copy_style`` values that this runtime gives a meaning to.
COPY_STYLES: tuple[str, ...] = ("loaded_modules", "all", "none")


@dataclass(frozen=True)
class SourceBundle:
    """A project's code as it travels: a content-addressed archive, and what is in it."""

    digest: str
    data: bytes = field(repr=False)
    #: The project root it was made from, on the client.
    root: str
    copy_style: str
    #: How many files, and their total size before compression.
    files: int
    size: int


def check_copy_style(copy_style: str) -> CopyStyle:
    if copy_style not in COPY_STYLES:
        raise ValueError(
            f"copy_style must be one of {', '.join(repr(s) for s in COPY_STYLES)}, got "
            f"{copy_style!r}"
        )
    return copy_style  # type: ignore[return-value]


_Signature = tuple[tuple[str, int, int, int, bool], ...]
#: Nanoseconds within which a file's timestamp cannot tell two writes apart.
RACY_NS = 2_000_000_000
_cache: dict[tuple[Path, str], tuple[_Signature, tuple[str, ...], SourceBundle]] = {}
_lock = threading.Lock()


def build_bundle(
    root_dir: Path | str | None, copy_style: str, *, max_bytes: int | None = None
) -> SourceBundle | None:
    """The bundle of the project at ``root_dir`` (None: the working directory).

    None for ``copy_style="none"``, or when no file of the project is selected.
    Built once per content: while no selected file changed (size, time, inode),
    the same bundle comes back without reading them again. Raises
    :class:`CodeBundleError`, one line naming the path and what to do, for a root
    that is not a folder, a file that cannot be read, or a bundle over
    ``max_bytes`` (default :func:`~reuse_runtime.bundles.archive.max_bundle_bytes`).
    """
    style = check_copy_style(copy_style)
    if style == "none":
        return None
    root = check_root(Path(root_dir) if root_dir is not None else Path.cwd())
    selected = loaded_modules(root) if style == "loaded_modules" else all_files(root)
    if not selected.files:
        return None
    limit = max_bundle_bytes() if max_bytes is None else max_bytes
    signature = _signature(selected.files)
    # A file written a moment ago may be written again within its timestamp's granularity,
    # the same size: a signature that recent proves nothing, so the files are read again.
    recent = time.time_ns() - RACY_NS
    with _lock:
        cached = _cache.get((root, style))
        if (
            cached is not None
            and cached[0] == signature
            and cached[1] == selected.paths
            and all(mtime < recent for _, _, mtime, _, _ in signature)
        ):
            return cached[2]
        total = sum(size for _, size, _, _, _ in signature)
        if total > limit:
            raise CodeBundleError(_too_large(root, style, signature, total, limit))
        members = [
            Member(name, selected.files[name], executable)
            for name, _, _, _, executable in signature
        ]
        data = pack(members, selected.paths)
        digest = digest_of(data)
        if cached is not None and cached[2].digest == digest:
            bundle = cached[2]  # read again, and unchanged: the same bundle
        else:
            bundle = SourceBundle(digest, data, str(root), style, len(members), total)
        _cache[(root, style)] = (signature, selected.paths, bundle)
        return bundle


def _signature(files: dict[str, Path]) -> _Signature:
    entries = []
    for name in sorted(files):
        path = files[name]
        try:
            info = path.stat()
        except OSError as exc:
            raise CodeBundleError(
                f"cannot read {path} for the code bundle: {exc.strerror or exc}; fix its "
                f"permissions, or leave it out of the bundle"
            ) from None
        entries.append(
            (name, info.st_size, info.st_mtime_ns, info.st_ino, bool(info.st_mode & 0o100))
        )
    return tuple(entries)


def _too_large(root: Path, style: str, signature: _Signature, total: int, limit: int) -> str:
    largest = sorted(signature, key=lambda entry: -entry[1])[:3]
    names = ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size, _, _, _ in largest)
    hint = (
        "leave large files out with .gitignore or .dockerignore, or use copy_style='loaded_modules'"
        if style == "all"
        else "move large files out of the project root"
    )
    return (
        f"the code bundle of {root} (copy_style={style!r}) holds {total / 2**20:.1f} MiB in "
        f"{len(signature)} files, over the {limit / 2**20:.1f} MiB limit (largest: {names}); "
        f"{hint}, or raise $REUSE_RUNTIME_MAX_BUNDLE_BYTES"
    )


__all__ = ["COPY_STYLES", "CopyStyle", "SourceBundle", "build_bundle", "check_copy_style"]
