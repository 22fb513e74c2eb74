"""A wheel of the running reuse-runtime: what every image installs.

Replicas must run the very code the controller runs (same wire, same
loader), whatever the install: from PyPI, from a wheel, or editable from a
checkout. So the wheel is packed from the files this process imports: the
``reuse_runtime`` package and ``reuse_runtime_init``, plus the installed
distribution's metadata (which names its dependencies). It is named by a
digest of that content, so a changed source tree gives a new wheel and new
image tags, and an unchanged one is packed once.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import reuse_runtime_init

DISTRIBUTION = "reuse-runtime"
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
# A fixed timestamp keeps the zip's bytes a function of its content.
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class RuntimeWheel:
    path: Path
    version: str
    #: sha256 of the packed files: changes whenever replicas' code would.
    digest: str

    @property
    def requirement(self) -> str:
        return f"{DISTRIBUTION}=={self.version}"


def _sources() -> list[tuple[str, Path]]:
    """(archive name, file) for every file of the package and the init module."""
    package = Path(__file__).parent.parent  # this is reuse_runtime/images/wheel.py
    files = [("reuse_runtime_init.py", Path(reuse_runtime_init.__file__))]
    for folder, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(names):
            if name.endswith(_SKIP_SUFFIXES):
                continue
            path = Path(folder) / name
            files.append(("reuse_runtime/" + path.relative_to(package).as_posix(), path))
    return files


def _metadata(version: str) -> dict[str, bytes]:
    dist = importlib.metadata.distribution(DISTRIBUTION)
    info = f"reuse_runtime-{version}.dist-info"
    metadata = dist.read_text("METADATA")
    if metadata is None:
        raise RuntimeError("the installed reuse-runtime has no METADATA; reinstall it")
    entry_points = dist.read_text("entry_points.txt") or ""
    wheel_info = (
        "Wheel-Version: 1.0\nGenerator: reuse-runtime\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    return {
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": wheel_info.encode(),
        f"{info}/entry_points.txt": entry_points.encode(),
        f"{info}/top_level.txt": b"reuse_runtime\nreuse_runtime_init\n",
    }


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def runtime_wheel(cache_dir: Path) -> RuntimeWheel:
    """The running installation as a wheel in ``cache_dir`` (packed once per content)."""
    version = importlib.metadata.version(DISTRIBUTION)
    entries = {name: path.read_bytes() for name, path in _sources()}
    entries.update(_metadata(version))
    hasher = hashlib.sha256()
    for name in sorted(entries):
        hasher.update(name.encode() + b"\0" + hashlib.sha256(entries[name]).digest())
    digest = hasher.hexdigest()
    folder = cache_dir / digest[:24]
    path = folder / f"reuse_runtime-{version}-py3-none-any.whl"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        record_name = f"reuse_runtime-{version}.dist-info/RECORD"
        record = [_record_line(name, entries[name]) for name in sorted(entries)]
        record.append(f"{record_name},,")
        entries[record_name] = ("\n".join(record) + "\n").encode()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(entries):
                info = zipfile.ZipInfo(name, _EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entries[name])
        tmp.replace(path)
    return RuntimeWheel(path, version, digest)
