"""Images from `Image` recipes, through the engine: built once per recipe, and clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, subprocess_env

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

RECIPE = """
import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    name="cached",
    image=flyte.Image.from_debian_base().with_pip_packages({package!r}).with_env_vars({{"A": "1"}}),
    reusable=flyte.ReusePolicy(replicas=1),
)


@env.task
async def hello() -> str:
    return "hello"
"""


def _image_build(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "image", "build", str(path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=subprocess_env(),
    )


def _tag(output: str) -> str:
    match = re.search(r"^cached: (\S+) \((built|up to date)", output, re.M)
    assert match, output
    return match.group(1)


def test_an_unchanged_recipe_is_never_rebuilt_and_a_changed_one_gets_a_new_tag(
    tmp_path: Path,
) -> None:
    script = tmp_path / "recipe.py"
    script.write_text(RECIPE.format(package="six==1.16.0"))
    first = _image_build(script)
    assert first.returncode == 0, first.stderr + first.stdout
    tag = _tag(first.stdout)
    assert "STEP" in first.stdout  # progress, step by step

    again = _image_build(script)
    assert again.returncode == 0, again.stderr
    assert _tag(again.stdout) == tag
    assert "(up to date" in again.stdout
    assert "STEP" not in again.stdout and "pip wheel" not in again.stdout  # no build step

    script.write_text(RECIPE.format(package="six==1.17.0"))
    changed = _image_build(script)
    assert changed.returncode == 0, changed.stderr + changed.stdout
    assert _tag(changed.stdout) != tag
    assert "(built" in changed.stdout


def test_from_base_of_a_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "missing.py"
    script.write_text(
        "import reuse_runtime as flyte\n"
        "env = flyte.TaskEnvironment(name='m', "
        "image=flyte.Image.from_base('localhost/no-such-image:1'))\n"
    )
    done = _image_build(script)
    assert done.returncode == 2
    assert "from_base('localhost/no-such-image:1')" in done.stderr, done.stderr
    assert "is not in the engine" in done.stderr
    assert "Traceback" not in done.stderr
