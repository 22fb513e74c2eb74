"""The controller's bundle store: checked on the way in, whole on disk, pruned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reuse_runtime.bundles.archive import digest_of
from reuse_runtime.bundles.store import BundleStore
from reuse_runtime.errors import CodeBundleError


def _put(store: BundleStore, data: bytes, chunk: int = 7) -> str:
    digest = digest_of(data)
    upload = store.receive(digest, len(data), "client")
    for offset in range(0, len(data), chunk):
        upload.write(offset, data[offset : offset + chunk])
    upload.finish()
    return digest


def test_a_bundle_in_chunks_is_stored_whole_and_private(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "bundles", max_bytes=1000)
    data = os.urandom(100)
    digest = _put(store, data)
    assert store.has(digest) and store.size(digest) == 100
    assert store.read(digest) == data
    assert b"".join(store.chunks(digest)) == data
    assert (tmp_path / "bundles").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in (tmp_path / "bundles").iterdir()] == [f"{digest}.tar.gz"]
    # A restarted controller finds it.
    assert BundleStore(tmp_path / "bundles", max_bytes=1000).read(digest) == data


def test_bad_uploads_are_refused_and_store_nothing(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "bundles", max_bytes=1000)
    data = os.urandom(100)
    digest = digest_of(data)
    with pytest.raises(CodeBundleError, match="1 to 1000 bytes"):
        store.receive(digest, 5000, "client")
    with pytest.raises(CodeBundleError, match="not a sha256 digest"):
        store.receive("../etc/passwd", 10, "client")
    upload = store.receive(digest, 100, "client")
    with pytest.raises(CodeBundleError, match="arrived where 0 was expected"):
        upload.write(10, data[10:])
    upload = store.receive(digest, 100, "client")
    upload.write(0, data[:50])
    with pytest.raises(CodeBundleError, match="ended after 50 of its 100 bytes"):
        upload.finish()
    upload = store.receive(digest, 100, "client")
    with pytest.raises(CodeBundleError, match="longer than"):
        upload.write(0, data + b"x")
    upload = store.receive(digest, 100, "client")
    upload.write(0, os.urandom(100))  # not the content of the digest it claims
    with pytest.raises(CodeBundleError, match="refused: its content has digest"):
        upload.finish()
    assert not store.has(digest)
    assert not (tmp_path / "bundles").exists() or list((tmp_path / "bundles").iterdir()) == []


def test_a_missing_bundle_is_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "bundles", max_bytes=1000)
    with pytest.raises(CodeBundleError) as missing:
        store.read("a" * 64)
    assert "is not at this controller" in str(missing.value) and "run again" in str(missing.value)


def test_old_bundles_go_but_not_those_in_use(tmp_path: Path) -> None:
    in_use: set[str] = set()
    store = BundleStore(tmp_path / "bundles", max_bytes=1000, keep=2, in_use=lambda: in_use)
    first = _put(store, b"first")
    in_use.add(first)
    os.utime(store._path(first), (1, 1))  # the oldest
    second = _put(store, b"second")
    os.utime(store._path(second), (2, 2))
    third = _put(store, b"third")
    assert store.has(first) and not store.has(second) and store.has(third)
