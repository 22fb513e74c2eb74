"""The wheel of the running installation that every image installs."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from reuse_runtime.images.wheel import runtime_wheel


def test_the_wheel_holds_the_package_the_init_and_valid_metadata(tmp_path: Path) -> None:
    wheel = runtime_wheel(tmp_path)
    assert wheel.path.name == f"reuse_runtime-{wheel.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel.path) as archive:
        names = set(archive.namelist())
        assert "reuse_runtime/__init__.py" in names
        assert "reuse_runtime/worker/server.py" in names
        assert "reuse_runtime_init.py" in names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        info = f"reuse_runtime-{wheel.version}.dist-info"
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        assert "reuse-runtime-init = reuse_runtime_init:main" in entry_points
        assert b"Requires-Dist: grpcio" in archive.read(f"{info}/METADATA")
        # RECORD lists every other file with its sha256, as installers check.
        for line in archive.read(f"{info}/RECORD").decode().splitlines():
            name, digest, size = line.split(",")
            if name.endswith("RECORD"):
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(data)


def test_the_same_content_gives_the_same_wheel(tmp_path: Path) -> None:
    first = runtime_wheel(tmp_path)
    second = runtime_wheel(tmp_path)
    assert first == second
    assert first.path.read_bytes() == second.path.read_bytes()
