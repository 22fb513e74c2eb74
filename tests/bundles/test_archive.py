"""Archives: deterministic packing, and unpacking that refuses hostile content in one line."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reuse_runtime.bundles.archive import (
    MANIFEST,
    Member,
    digest_of,
    pack,
    unpack,
    unpacked,
)
from reuse_runtime.errors import CodeBundleError

LIMIT = 10 * 2**20


def _project(tmp_path: Path) -> list[Member]:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "main.py").write_text("import mylib\n")
    (root / "mylib.py").write_text("VALUE = 1\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    return [
        Member("main.py", root / "main.py"),
        Member("mylib.py", root / "mylib.py"),
        Member("pkg/__init__.py", root / "pkg" / "__init__.py"),
        Member("run.sh", root / "run.sh", executable=True),
    ]


def test_packing_is_deterministic_whatever_the_order_times_and_owners(tmp_path: Path) -> None:
    members = _project(tmp_path)
    first = pack(members, ["", "src"])
    os.utime(members[0].source, (1, 1))  # another mtime: the same archive
    assert pack(list(reversed(members)), ["", "src"]) == first
    assert pack(members, [""]) != first  # the import paths are content too
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == [MANIFEST, "main.py", "mylib.py", "pkg/__init__.py", "run.sh"]
    assert {(i.uid, i.gid, i.uname, i.gname, i.mtime) for i in infos} == {(0, 0, "", "", 315532800)}
    assert [i.mode for i in infos] == [0o644, 0o644, 0o644, 0o644, 0o755]


def test_unpack_writes_the_files_once_per_digest(tmp_path: Path) -> None:
    data = pack(_project(tmp_path), ["", "src"])
    digest = digest_of(data)
    into = tmp_path / "code"
    done = unpack(data, digest, into, source="test", max_bytes=LIMIT)
    assert done.root == into / digest
    assert done.paths == (into / digest, into / digest / "src")
    assert (done.root / "mylib.py").read_text() == "VALUE = 1\n"
    assert os.access(done.root / "run.sh", os.X_OK)
    assert (into.stat().st_mode & 0o777) == 0o700
    (done.root / "marker").write_text("kept")  # a second unpack of the digest reuses it
    assert unpack(data, digest, into, source="test", max_bytes=LIMIT).root == done.root
    assert (done.root / "marker").exists()
    assert unpacked(into, digest) == done
    assert unpacked(into, "0" * 64) is None


# ------------------------------------------------------------------ hostile archives


def _tar(*entries: Callable[[tarfile.TarFile], None], manifest: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        if manifest:
            _file(tar, MANIFEST, json.dumps({"version": 1, "paths": [""]}).encode())
        for add in entries:
            add(tar)
    return gzip.compress(raw.getvalue())


def _file(tar: tarfile.TarFile, name: str, data: bytes = b"x = 1\n") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _special(name: str, kind: bytes, linkname: str = "") -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        tar.addfile(info)

    return add


HOSTILE: dict[str, tuple[bytes, str]] = {
    "dotdot": (_tar(lambda t: _file(t, "../escaped.py")), "climbs out of its folder"),
    "nested dotdot": (_tar(lambda t: _file(t, "pkg/../../escaped.py")), "climbs out"),
    "absolute": (_tar(lambda t: _file(t, "/tmp/escaped.py")), "absolute or bad path"),
    "symlink out": (_tar(_special("evil", tarfile.SYMTYPE, "/etc/passwd")), "is a link"),
    "symlink then write": (
        _tar(_special("out", tarfile.SYMTYPE, ".."), lambda t: _file(t, "out/escaped.py")),
        "is a link",
    ),
    "hardlink": (_tar(_special("evil", tarfile.LNKTYPE, "/etc/passwd")), "is a link"),
    "device": (_tar(_special("dev", tarfile.CHRTYPE)), "device, FIFO"),
    "fifo": (_tar(_special("pipe", tarfile.FIFOTYPE)), "device, FIFO"),
    "twice": (_tar(lambda t: _file(t, "a.py"), lambda t: _file(t, "a.py")), "appears twice"),
    "no manifest": (_tar(lambda t: _file(t, "a.py"), manifest=False), f"no {MANIFEST}"),
    "not gzip": (b"this is no archive at all", "not a gzipped tar"),
    "truncated": (_tar(lambda t: _file(t, "a.py", b"y" * 5000))[:-40], "could not be unpacked"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_in_one_line_and_leaves_nothing(
    case: str, tmp_path: Path
) -> None:
    data, why = HOSTILE[case]
    into = tmp_path / "code"
    with pytest.raises(CodeBundleError) as refused:
        unpack(data, digest_of(data), into, source="controller at 10.0.0.1:50050", max_bytes=LIMIT)
    message = str(refused.value)
    assert why in message
    assert "\n" not in message and "controller at 10.0.0.1:50050" in message
    assert list(into.iterdir()) == []  # no digest folder, no half-unpacked one
    assert not (tmp_path / "escaped.py").exists()
    assert not Path("/tmp/escaped.py").exists()


def test_an_escaping_import_path_in_the_manifest_is_refused(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        _file(tar, MANIFEST, json.dumps({"version": 1, "paths": ["../../etc"]}).encode())
    data = gzip.compress(raw.getvalue())
    with pytest.raises(CodeBundleError, match="leaves its folder"):
        unpack(data, digest_of(data), tmp_path / "code", source="test", max_bytes=LIMIT)


def test_content_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    data = pack(_project(tmp_path), [""])
    claimed = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(CodeBundleError) as refused:
        unpack(data, claimed, tmp_path / "code", source="controller", max_bytes=LIMIT)
    assert "refused: its content has digest" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "code").exists() or list((tmp_path / "code").iterdir()) == []
    with pytest.raises(CodeBundleError, match="is not a sha256 digest"):
        unpack(data, "../../etc", tmp_path / "code", source="controller", max_bytes=LIMIT)


def test_files_past_the_unpacked_limit_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 200_000)  # compresses to almost nothing: a small bomb
    data = pack([Member("big.bin", big)], [""])
    assert len(data) < 2000
    with pytest.raises(CodeBundleError, match="unpack to more than 100000 bytes"):
        unpack(data, digest_of(data), tmp_path / "code", source="test", max_bytes=100_000)
    assert list((tmp_path / "code").iterdir()) == []


def test_an_unreadable_file_is_named_when_packing(tmp_path: Path) -> None:
    missing = tmp_path / "gone.py"
    with pytest.raises(CodeBundleError) as failed:
        pack([Member("gone.py", missing)], [""])
    assert str(missing) in str(failed.value) and "\n" not in str(failed.value)
