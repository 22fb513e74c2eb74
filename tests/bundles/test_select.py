"""Which files a bundle holds (Flyte's copy_style), and building one once per content."""

from __future__ import annotations

import importlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reuse_runtime.bundles import build_bundle, check_copy_style
from reuse_runtime.bundles.select import all_files, check_root, loaded_modules
from reuse_runtime.errors import CodeBundleError
from tests.helpers import subprocess_env


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A project on sys.path: main imports mylib, whose function imports a package lazily."""
    tag = uuid.uuid4().hex[:8]
    root = tmp_path / "project"
    (root / f"pkg_{tag}").mkdir(parents=True)
    (root / f"main_{tag}.py").write_text(f"import mylib_{tag}\n")
    (root / f"mylib_{tag}.py").write_text(
        f"def later():\n    from pkg_{tag} import sub\n    return sub\n"
    )
    (root / f"pkg_{tag}" / "__init__.py").write_text("")
    (root / f"pkg_{tag}" / "sub.py").write_text("from . import leaf\n")
    (root / f"pkg_{tag}" / "leaf.py").write_text("")
    (root / "unused.py").write_text("")
    (root / "notes.txt").write_text("not code")
    sys.path.insert(0, str(root))
    try:
        importlib.import_module(f"main_{tag}")
        yield root, tag
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if tag in n]:
            del sys.modules[name]


def test_loaded_modules_takes_what_was_imported_and_what_it_imports(
    project: tuple[Path, str],
) -> None:
    root, tag = project
    selected = loaded_modules(check_root(root))
    assert sorted(selected.files) == [
        f"main_{tag}.py",
        f"mylib_{tag}.py",
        f"pkg_{tag}/__init__.py",
        f"pkg_{tag}/leaf.py",  # a relative import of a lazily imported module
        f"pkg_{tag}/sub.py",  # imported inside a function, never run
    ]
    assert selected.paths == ("",)


def test_loaded_modules_leaves_installed_code_and_links_out(
    project: tuple[Path, str], tmp_path: Path
) -> None:
    root, tag = project
    outside = tmp_path / "outside.py"
    outside.write_text("SECRET = 1\n")
    (root / f"link_{tag}.py").symlink_to(outside)
    importlib.import_module(f"link_{tag}")
    files = loaded_modules(check_root(root)).files
    assert f"link_{tag}.py" not in files and not any("outside" in f for f in files)
    # reuse-runtime itself and the venv are loaded, and live under this repository.
    repo = Path(__file__).resolve().parents[2]
    import reuse_runtime_init  # noqa: F401 (loaded, from beside the package)

    assert not any("reuse_runtime" in f for f in loaded_modules(repo).files)


def test_all_honours_gitignore_at_any_depth_and_dockerignore(tmp_path: Path) -> None:
    root = tmp_path / "project"
    for name in ("app.py", "big.bin", "keep.log", "x.log", "data/a.csv", "sub/b.py",
                 "sub/tmp/c.py", "secret/key.pem", ".git/HEAD", ".venv/bin/python",
                 "__pycache__/app.cpython-311.pyc", ".env", "docs/notes.md"):  # fmt: skip
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / ".gitignore").write_text("*.log\n!keep.log\nbig.bin\ndata/\n")
    (root / "sub" / ".gitignore").write_text("tmp/\n")
    (root / ".dockerignore").write_text("secret\ndocs/*.md\n")
    files = sorted(all_files(check_root(root)).files)
    assert files == [".dockerignore", ".gitignore", "app.py", "keep.log", "sub/.gitignore",
                     "sub/b.py"]  # fmt: skip


def test_all_leaves_links_that_point_out(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("")
    (tmp_path / "secret.txt").write_text("no")
    (root / "out.txt").symlink_to(tmp_path / "secret.txt")
    (root / "in.py").symlink_to(root / "app.py")
    (root / "outdir").symlink_to(tmp_path)
    assert sorted(all_files(check_root(root)).files) == ["app.py", "in.py"]


def test_a_root_that_is_not_a_directory_is_one_line(tmp_path: Path) -> None:
    for bad in (tmp_path / "missing", tmp_path / "file.py"):
        if bad.name == "file.py":
            bad.write_text("")
        with pytest.raises(CodeBundleError) as failed:
            build_bundle(bad, "all")
        assert str(failed.value).startswith(f"root_dir {bad} is not a directory")
        assert "root_dir=" in str(failed.value) and "\n" not in str(failed.value)


#: Builds the bundle of argv[1]; a CodeBundleError's line goes to stdout, exit 3.
BUILD = """
import sys
from pathlib import Path
from reuse_runtime.bundles import build_bundle
from reuse_runtime.errors import CodeBundleError
try:
    build_bundle(Path(sys.argv[1]), "all")
except CodeBundleError as exc:
    print(exc)
    sys.exit(3)
"""
#: Root reads any file: as root, the build runs without the capabilities that allow it.
WITHOUT_READ_ANY = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None,
    reason="as root, needs setpriv (util-linux) to give up reading any file",
)
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    locked = root / "locked.py"
    locked.write_text("")
    locked.chmod(0)
    prefix = WITHOUT_READ_ANY if os.geteuid() == 0 else []
    built = subprocess.run(
        [*prefix, sys.executable, "-c", BUILD, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )
    assert built.returncode == 3, built.stderr
    message = built.stdout.strip()
    assert str(locked) in message and "\n" not in message


def test_a_file_that_cannot_be_read_is_named_even_as_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("")
    (root / "dangling.py").symlink_to(root / "missing.py")  # no file: left out
    fifo = root / "pipe"
    os.mkfifo(fifo)  # no regular file: left out
    bundle = build_bundle(root, "all")
    assert bundle is not None and bundle.files == 1
    (root / "loop.py").symlink_to(root / "loop.py")  # a link loop: no stat can read it
    with pytest.raises(CodeBundleError) as failed:
        build_bundle(root, "all")
    assert f"cannot read {root / 'loop.py'}" in str(failed.value)
    assert "\n" not in str(failed.value)


def test_built_once_per_content_and_again_after_an_edit(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "mylib.py").write_text("VALUE = 1\n")
    first = build_bundle(root, "all")
    assert first is not None and build_bundle(root, "all") is first
    (root / "mylib.py").write_text("VALUE = 2\n")
    second = build_bundle(root, "all")
    assert second is not None and second.digest != first.digest
    with tarfile.open(fileobj=io.BytesIO(second.data), mode="r:gz") as tar:
        member = tar.extractfile("mylib.py")
        assert member is not None and member.read() == b"VALUE = 2\n"


def test_none_and_empty_projects_make_no_bundle(tmp_path: Path) -> None:
    assert build_bundle(tmp_path, "none") is None
    assert build_bundle(tmp_path, "all") is None
    with pytest.raises(ValueError, match="copy_style must be one of"):
        check_copy_style("custom")


def test_a_bundle_over_the_limit_says_how_large_and_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("")
    (root / "weights.bin").write_bytes(os.urandom(300_000))
    with pytest.raises(CodeBundleError) as failed:
        build_bundle(root, "all", max_bytes=100_000)
    message = str(failed.value)
    assert str(root) in message and "weights.bin 0.3 MiB" in message
    assert ".gitignore" in message and "REUSE_RUNTIME_MAX_BUNDLE_BYTES" in message
    assert "\n" not in message


def test_all_leaves_out_reuse_runtimes_own_state_in_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    (root / "home" / "code" / ("a" * 64)).mkdir(parents=True)
    (root / "home" / "code" / ("a" * 64) / "old.py").write_text("")
    (root / "app.py").write_text("")
    monkeypatch.setenv("REUSE_RUNTIME_HOME", str(root / "home"))
    assert sorted(all_files(check_root(root)).files) == ["app.py"]
