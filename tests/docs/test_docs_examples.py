"""Every code block of the README and docs/ runs, and prints what the page says it prints.

The blocks run in the ``docs`` suite (``python -m pytest -m docs``; CI runs it): they start
real pools and install the project into a fresh venv, too slow for the default suite. The
checks of the blocks' form run in the default suite. See tests/docs/blocks.py for how each
block runs and for the markers a page puts above a block.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.blocks import LANGUAGES, MARKERS, ROOT, RUN, Block, blocks, matches, pages

ALL = [block for page in pages() for block in blocks(page)]


def _cases() -> Iterator[object]:
    for block in ALL:
        if block.lang in ("output", "text"):
            continue
        container = block.marker is not None and block.marker[0] == "container"
        mark = pytest.mark.container if container else pytest.mark.docs
        yield pytest.param(block, id=block.id, marks=[mark, pytest.mark.timeout(900)])


def test_every_block_has_a_known_language_and_marker() -> None:
    assert len(ALL) > 20
    for block in ALL:
        assert block.lang in LANGUAGES, f"{block.id}: fence a block as one of {sorted(LANGUAGES)}"
        if block.marker is not None:
            kind, argument = block.marker
            assert kind in MARKERS, f"{block.id}: unknown marker {kind!r}"
            if kind in ("skip", "ci", "file", "same"):
                assert argument, f"{block.id}: `test: {kind}` needs a reason or a name"
            assert block.lang not in ("output", "text"), f"{block.id}: a marker on a non-code block"


def test_every_output_block_follows_a_block_that_runs() -> None:
    for page in pages():
        found = blocks(page)
        for before, block in itertools.pairwise(found):
            if block.lang == "output":
                assert before.lang in RUN and before.output is block, block.id
                assert before.marker is None or before.marker[0] != "skip", block.id


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's files (tracked and new, not ignored). Bash blocks run
    there with its ``.venv`` first on PATH (as if activated), so what they install and
    write never touches the checkout or the tests' own environment."""
    copy = tmp_path_factory.mktemp("repo")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return copy


@pytest.fixture(scope="session")
def workdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """One directory per page, shared by its blocks in order."""
    return {page: tmp_path_factory.mktemp(page.stem) for page in pages()}


def _ensure_venv(sandbox: Path, block: Block) -> None:
    """The sandbox's ``.venv`` with the project installed, as the README's first command
    makes it; a block that makes it itself (that command) is left to do so."""
    if (sandbox / ".venv" / "bin" / "reuse-runtime").exists() or "-m venv .venv" in block.code:
        return
    home = sandbox / ".home"
    _run([sys.executable, "-m", "venv", ".venv"], sandbox, home, 300)
    _run([str(sandbox / ".venv" / "bin" / "pip"), "install", "-q", "-e", "."], sandbox, home, 900)


def _env(home: Path, venv: Path | None = None) -> dict[str, str]:
    """The environment a reader has: none of the tests' REUSE_RUNTIME_* settings (but the
    test run's mark, so leaks are found), a state directory of its own, and ``venv``
    activated, if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REUSE_RUNTIME_")}
    env["REUSE_RUNTIME_TEST_SESSION"] = os.environ["REUSE_RUNTIME_TEST_SESSION"]
    env["REUSE_RUNTIME_HOME"] = str(home)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def _run(command: list[str], cwd: Path, home: Path, timeout: float, **extra: str) -> str:
    """``command`` in ``cwd``; in the sandbox, with its venv activated."""
    venv = cwd / ".venv" if (cwd / ".venv" / "bin").is_dir() else None
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**_env(home, venv), **extra},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n"
        f"{done.stderr[-4000:]}"
    )
    return done.stdout


def _container_block(block: Block, sandbox: Path, home: Path) -> str:
    """A bash block that makes containers and images: each carries a label of this test's
    own, and whatever carries it is removed afterwards, with the engine the block started
    (if it started one)."""
    label = f"reuse-runtime-test-run={uuid.uuid4().hex[:12]}"
    try:
        return _run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            sandbox,
            home,
            900,
            REUSE_RUNTIME_CONTAINER_LABELS=label,
        )
    finally:
        try:
            _remove_labelled(label)
        finally:
            # Stopped even when the removal failed: an engine left on the default socket,
            # with this test's config deleted, would break every later container test.
            if (home / "podman-service.pid").exists():
                _run([sys.executable, "-m", "reuse_runtime", "engine", "stop"], sandbox, home, 60)


def _remove_labelled(label: str) -> None:
    from reuse_runtime import engine
    from reuse_runtime.errors import EngineUnavailableError

    try:
        client = engine.connect(engine.find_engine())
    except EngineUnavailableError:
        return
    try:
        for container in client.containers.list(all=True, filters={"label": label}):
            with contextlib.suppress(Exception):  # removed by the engine meanwhile
                container.remove(force=True)
        for image in client.images.list(filters={"label": label}):
            client.images.remove(image.id, force=True)
    finally:
        client.close()


def _words(command: str) -> str:
    """A command's words, ``-q`` aside and ``python -m pip`` read as ``pip`` (a shell
    line that is not a whole command, like the start of a multi-line string: none)."""
    try:
        words = " ".join(t for t in shlex.split(command) if t != "-q")
    except ValueError:
        return ""
    return words.removeprefix("python -m ")


def _in_ci_run(block: Block) -> None:
    """Each command of the block (``&&`` parts) is a line of .ci/run."""
    script = (ROOT / ".ci" / "run").read_text()
    lines = {_words(line) for line in script.splitlines() if not line.startswith("#")}
    for command in block.code.replace("\\\n", " ").split("&&"):
        words = _words(command)
        if words:
            assert words in lines, f"{block.id}: .ci/run does not run {words!r}"


@pytest.mark.parametrize("block", list(_cases()))
def test_block(block: Block, sandbox: Path, workdirs: dict[Path, Path]) -> None:
    kind, argument = block.marker or ("", "")
    if kind == "skip":
        pytest.skip(f"{block.id}: {argument}")
    if kind == "ci":
        _in_ci_run(block)
        return
    if kind == "same":
        others = [b.code for b in blocks(ROOT / argument) if b is not block]
        assert block.code in others, f"{block.id}: no block of {argument} is the same"
        return
    here = workdirs[block.page]
    home = here / ".home"
    if kind == "file":
        (here / argument).write_text(block.code)
        return
    if block.lang == "toml":
        from reuse_runtime.sdk.config import read_config

        (here / "config.toml").write_text(block.code)
        assert read_config(here / "config.toml")
        return
    if block.lang == "yaml":
        import yaml

        assert list(yaml.safe_load_all(block.code))
        return
    if kind == "pytest":
        test = here / f"test_{block.page.stem.replace('-', '_')}_{block.line}.py"
        test.write_text(block.code)
        out = _run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test.name],
            here,
            home,
            300,
        )
    elif block.lang == "python":
        script = here / f"block_{block.line}.py"
        script.write_text(block.code)
        out = _run([sys.executable, script.name], here, home, 300)
    elif kind == "container":
        _ensure_venv(sandbox, block)
        out = _container_block(block, sandbox, home)
    else:
        assert block.lang == "bash", block.id
        _ensure_venv(sandbox, block)
        out = _run(["bash", "-euo", "pipefail", "-c", block.code], sandbox, home, 900)
    if block.output is not None:
        assert matches(block.output.code, out), (
            f"{block.id}: printed\n{out}\nbut {block.output.id} says\n{block.output.code}"
        )
