"""A code bundle's archive: packed deterministically, checked, and unpacked safely.

An archive is a gzipped tar of regular files only, named by the sha256 of its
bytes (its *digest*). :func:`pack` makes the same bytes from the same files:
members sorted, times, owners and modes fixed, gzip without a name or time. A
manifest member, :data:`MANIFEST`, names the folders (relative to the project
root) that go on ``sys.path``.

:func:`unpack` is the only way an archive reaches a disk. It refuses, with one
line, an archive whose bytes do not match the digest it came under, and any
member that could write outside its folder: an absolute path, a ``..``, a
link (symbolic or hard), a device or a FIFO. It writes into a fresh private
folder and renames it into place only once every file is written, so a replica
never sees half a bundle.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reuse_runtime.envvars import env_size
from reuse_runtime.errors import CodeBundleError

#: The manifest member: ``{"version": 1, "paths": ["", "src"]}``.
MANIFEST = ".reuse-runtime-bundle.json"
MANIFEST_VERSION = 1
#: The largest total of the files in a bundle, by default; ``$REUSE_RUNTIME_MAX_BUNDLE_BYTES``.
MAX_BUNDLE_BYTES = 64 * 2**20
MAX_BUNDLE_ENV = "REUSE_RUNTIME_MAX_BUNDLE_BYTES"
#: Members an archive may hold.
MAX_MEMBERS = 100_000
#: Every member's time: 1980-01-01, as in wheels (zip cannot say earlier).
FIXED_MTIME = 315_532_800
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def max_bundle_bytes() -> int:
    """The largest total of a bundle's files: ``$REUSE_RUNTIME_MAX_BUNDLE_BYTES``, else 64 MiB."""
    return env_size(MAX_BUNDLE_ENV, MAX_BUNDLE_BYTES, least=1024, needs="a size like 64Mi")


def digest_of(data: bytes | memoryview) -> str:
    """The digest an archive is known by: the sha256 of its bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


def valid_digest(digest: str) -> bool:
    """Whether ``digest`` is 64 lowercase hex digits (what :func:`digest_of` gives)."""
    return bool(_DIGEST.match(digest))


def check_digest(data: bytes | memoryview, digest: str, source: str) -> None:
    """Raise :class:`CodeBundleError` unless ``data`` is the archive named ``digest``."""
    if not valid_digest(digest):
        raise CodeBundleError(f"code bundle from {source}: {digest[:80]!r} is not a sha256 digest")
    actual = digest_of(data)
    if actual != digest:
        raise CodeBundleError(
            f"code bundle {digest[:12]} from {source} refused: its content has digest "
            f"{actual[:12]}, not the one it was sent under; it was damaged or tampered with "
            f"on the way, so send it again"
        )


# ------------------------------------------------------------------ packing


@dataclass(frozen=True, slots=True)
class Member:
    """A file to pack: its name in the archive (POSIX, relative), and where to read it."""

    name: str
    source: Path
    executable: bool = False


def pack(members: Iterable[Member], paths: Iterable[str]) -> bytes:
    """The archive of ``members`` plus a manifest naming the import ``paths``.

    Deterministic: the same files and paths give the same bytes. Raises
    :class:`CodeBundleError` naming a file that cannot be read.
    """
    raw = io.BytesIO()
    manifest = json.dumps(
        {"version": MANIFEST_VERSION, "paths": list(paths)}, sort_keys=True
    ).encode()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, manifest, executable=False)
        for member in sorted(members, key=lambda m: m.name):
            try:
                data = member.source.read_bytes()
            except OSError as exc:
                raise CodeBundleError(
                    f"cannot read {member.source} for the code bundle: "
                    f"{exc.strerror or exc}; fix its permissions, or leave it out of the "
                    f"bundle (.gitignore, .dockerignore, or copy_style='loaded_modules')"
                ) from None
            _add(tar, member.name, data, executable=member.executable)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, *, executable: bool) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = FIXED_MTIME
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------ unpacking


@dataclass(frozen=True, slots=True)
class Unpacked:
    """A bundle on disk: its folder, and the folders of it that go on ``sys.path``."""

    digest: str
    root: Path
    paths: tuple[Path, ...]


def unpack(data: bytes, digest: str, into: Path, *, source: str, max_bytes: int) -> Unpacked:
    """Check ``data`` against ``digest`` and unpack it to ``into/<digest>``; once per digest.

    ``into`` must be this process's own folder (made private here). A folder
    for the digest that exists already is used as it is: folders appear only
    whole (see the module's docstring). ``max_bytes`` bounds the files' total.
    """
    check_digest(data, digest, source)
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = into / digest
    if not final.is_dir():
        partial = into / f".partial-{digest[:12]}-{secrets.token_hex(4)}"
        partial.mkdir(mode=0o700)
        try:
            _extract(data, digest, partial, source=source, max_bytes=max_bytes)
            try:
                os.rename(partial, final)
            except OSError:
                if not final.is_dir():  # not another replica's identical copy: a real failure
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return Unpacked(digest, final, _import_paths(final, digest, source))


def unpacked(into: Path, digest: str) -> Unpacked | None:
    """The bundle ``digest`` if it is unpacked in ``into`` already, else None."""
    final = into / digest
    if not valid_digest(digest) or not final.is_dir():
        return None
    with contextlib.suppress(CodeBundleError):
        return Unpacked(digest, final, _import_paths(final, digest, "this replica's disk"))
    return None


def _extract(data: bytes, digest: str, target: Path, *, source: str, max_bytes: int) -> None:
    short = f"code bundle {digest[:12]} from {source}"
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CodeBundleError(f"{short} refused: it is not a gzipped tar ({exc})") from None
    seen: set[str] = set()
    total = 0
    with tar:
        try:
            for count, member in enumerate(tar, start=1):
                name = _safe_name(member, short)
                if count > MAX_MEMBERS:
                    raise CodeBundleError(f"{short} refused: more than {MAX_MEMBERS} members")
                if member.isdir():
                    continue
                if name in seen:
                    raise CodeBundleError(f"{short} refused: {name!r} appears twice")
                seen.add(name)
                total += member.size
                if total > max_bytes:
                    raise CodeBundleError(
                        f"{short} refused: its files unpack to more than {max_bytes} bytes"
                    )
                _write(tar, member, target / name)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise CodeBundleError(f"{short} could not be unpacked: {exc}") from None
    if MANIFEST not in seen:
        raise CodeBundleError(f"{short} refused: it has no {MANIFEST}")


def _safe_name(member: tarfile.TarInfo, short: str) -> str:
    """The member's relative name, or an error saying why it may not be unpacked."""
    name = member.name
    if member.issym() or member.islnk():
        raise CodeBundleError(
            f"{short} refused: {name!r} is a link (to {member.linkname!r}); bundles hold "
            f"regular files only"
        )
    if not (member.isfile() or member.isdir()):
        raise CodeBundleError(
            f"{short} refused: {name!r} is a device, FIFO or other special file; bundles hold "
            f"regular files only"
        )
    path = PurePosixPath(name)
    if not name or "\0" in name or "\\" in name or path.is_absolute() or name.startswith("/"):
        raise CodeBundleError(f"{short} refused: member {name!r} has an absolute or bad path")
    if any(part == ".." for part in path.parts):
        raise CodeBundleError(f"{short} refused: member {name!r} climbs out of its folder (..)")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise CodeBundleError(f"{short} refused: member {name!r} names no file")
    return "/".join(parts)


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    # Parents are made here, from checked names, inside a folder made a moment ago:
    # nothing in it can be a link. O_EXCL and O_NOFOLLOW say so once more.
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    stream = tar.extractfile(member)
    if stream is None:
        raise CodeBundleError(f"member {member.name!r} has no content")
    mode = 0o755 if member.mode & 0o111 else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out, stream:
        shutil.copyfileobj(stream, out, 1 << 20)


def _import_paths(root: Path, digest: str, source: str) -> tuple[Path, ...]:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        raw = manifest["paths"]
        if manifest.get("version") != MANIFEST_VERSION or not isinstance(raw, list):
            raise ValueError("unknown manifest")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CodeBundleError(
            f"code bundle {digest[:12]} from {source}: unreadable {MANIFEST}: {exc}"
        ) from None
    paths = []
    for entry in raw:
        relative = PurePosixPath(str(entry))
        if relative.is_absolute() or ".." in relative.parts:
            raise CodeBundleError(
                f"code bundle {digest[:12]} from {source} refused: import path {entry!r} "
                f"leaves its folder"
            )
        paths.append(root.joinpath(*relative.parts) if relative.parts else root)
    return tuple(paths) or (root,)


__all__ = [
    "FIXED_MTIME",
    "MANIFEST",
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_ENV",
    "Member",
    "Unpacked",
    "check_digest",
    "digest_of",
    "max_bundle_bytes",
    "pack",
    "unpack",
    "unpacked",
    "valid_digest",
]
