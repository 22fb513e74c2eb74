"""A replica's project code: fetched once per digest, imported from its own folder, and a
new version loaded only after the old one's modules are gone."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reuse_runtime import code
from reuse_runtime.bundles.archive import Member, digest_of, pack
from reuse_runtime.errors import CodeBundleError
from reuse_runtime.model import FunctionRef
from reuse_runtime.worker.loader import CodeLoader
from reuse_runtime.worker.project import ProjectCode


@pytest.fixture
def clean_process() -> Iterator[str]:
    """A module name of this test's own; sys.path, sys.modules and the bundle restored."""
    name = f"mylib_{uuid.uuid4().hex[:8]}"
    path = list(sys.path)
    try:
        yield name
    finally:
        sys.path[:] = path
        for module in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[module]
        code.set_project_bundle("")


def _bundle(tmp_path: Path, name: str, value: int) -> tuple[str, bytes]:
    source = tmp_path / f"src-{value}" / f"{name}.py"
    source.parent.mkdir(parents=True)
    source.write_text(f"VALUE = {value}\ndef value():\n    return VALUE\n")
    helper = source.parent / f"{name}_helper.py"
    helper.write_text("")
    data = pack([Member(f"{name}.py", source), Member(f"{name}_helper.py", helper)], [""])
    return digest_of(data), data


async def test_a_bundle_is_fetched_once_and_its_modules_import_from_it(
    tmp_path: Path, clean_process: str
) -> None:
    name = clean_process
    digest, data = _bundle(tmp_path, name, 1)
    fetched: list[str] = []

    async def fetch(wanted: str) -> bytes:
        fetched.append(wanted)
        return data

    loader = CodeLoader()
    project = ProjectCode(loader, tmp_path / "code")
    await project.install(digest, fetch=fetch, source="the controller at test")
    assert fetched == [digest] and code.project_bundle() == digest
    fn = await loader.resolve(FunctionRef(name, "value"), None)
    assert fn() == 1
    assert sys.modules[name].__file__ == str(tmp_path / "code" / digest / f"{name}.py")
    await project.install(digest, fetch=fetch, source="the controller at test")
    assert fetched == [digest]  # the same version: nothing to do
    # Another replica sharing the folder finds it unpacked: no fetch at all.
    other = ProjectCode(CodeLoader(private=True), tmp_path / "code")
    await other.install(digest, fetch=fetch, source="the controller at test")
    assert fetched == [digest]


async def test_a_new_version_unloads_the_old_ones_modules_first(
    tmp_path: Path, clean_process: str
) -> None:
    name = clean_process
    first, first_data = _bundle(tmp_path, name, 1)
    second, second_data = _bundle(tmp_path, name, 2)
    archives = {first: first_data, second: second_data}

    async def fetch(wanted: str) -> bytes:
        return archives[wanted]

    loader = CodeLoader()
    project = ProjectCode(loader, tmp_path / "code")
    await project.install(first, fetch=fetch, source="test")
    assert (await loader.resolve(FunctionRef(name, "value"), None))() == 1
    __import__(f"{name}_helper")
    old_module = sys.modules[name]
    await project.install(second, fetch=fetch, source="test")
    assert name not in sys.modules and f"{name}_helper" not in sys.modules
    assert str(tmp_path / "code" / first) not in sys.path
    assert sys.path[0] == str(tmp_path / "code" / second)
    fn = await loader.resolve(FunctionRef(name, "value"), None)
    assert fn() == 2 and sys.modules[name] is not old_module
    assert old_module.value() == 1  # what still holds the old module keeps its own state


async def test_a_bundle_that_cannot_be_fetched_or_does_not_match_is_one_line(
    tmp_path: Path, clean_process: str
) -> None:
    name = clean_process
    digest, data = _bundle(tmp_path, name, 1)
    project = ProjectCode(CodeLoader(), tmp_path / "code")

    async def unreachable(wanted: str) -> bytes:
        raise ConnectionError("connection refused")

    with pytest.raises(CodeBundleError) as failed:
        await project.install(digest, fetch=unreachable, source="the controller at 10.0.0.5:50050")
    message = str(failed.value)
    assert message.startswith(f"code bundle {digest[:12]} could not be fetched from the controller")
    assert "connection refused" in message and "\n" not in message

    async def tampered(wanted: str) -> bytes:
        return data + b"\0"

    with pytest.raises(CodeBundleError, match="refused: its content has digest"):
        await project.install(digest, fetch=tampered, source="the controller at test")
    assert project.digest == "" and code.project_bundle() == ""
    folder = tmp_path / "code"
    assert not folder.exists() or list(folder.iterdir()) == []  # nothing half-unpacked


async def test_a_replica_that_sees_the_files_only_records_the_version(
    tmp_path: Path, clean_process: str
) -> None:
    project = ProjectCode(CodeLoader(), tmp_path / "code")
    await project.install("a" * 64, fetch=None, source="test")
    assert code.project_bundle() == "a" * 64
    assert not (tmp_path / "code").exists()
