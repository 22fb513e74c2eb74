"""Compiling recipes to Containerfiles (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reuse_runtime.errors import ImageBuildError
from reuse_runtime.images.builder import _ignored
from reuse_runtime.images.containerfile import WHEELS, compile_recipe, package_name
from reuse_runtime.images.recipe import Image, host_platform

RUNTIME = "reuse-runtime==0.1.0"


def _compile(image: Image, **kwargs: object) -> object:
    return compile_recipe(image, base="localhost/base", runtime_requirement=RUNTIME, **kwargs)  # type: ignore[arg-type]


def test_every_image_gets_a_venv_and_reuse_runtime_offline_and_the_worker_entrypoint() -> None:
    plan = _compile(Image.from_debian_base())
    text = plan.containerfile  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert lines[0] == "FROM localhost/base"
    assert "python3 -m venv /opt/reuse-runtime" in text
    assert "the recipe needs 3.11" in text or "the recipe needs" in text
    assert f'"--no-index", "--find-links", "{WHEELS}", "{RUNTIME}"' in text
    assert lines[-2] == 'ENTRYPOINT ["reuse-runtime-init", "reuse-runtime", "worker"]'
    assert plan.downloads == ()  # type: ignore[attr-defined]


def test_layers_compile_in_order(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("six\n")
    (tmp_path / "src").mkdir()
    image = (
        Image.from_debian_base()
        .with_apt_packages("curl")
        .with_pip_packages("numpy<2")
        .with_requirements(req)
        .with_commands(["echo 'a b'"])
        .with_env_vars({"GREETING": 'say "hi"'})
        .with_workdir("/srv")
        .with_source_folder(tmp_path / "src", dst="/srv/src")
    )
    plan = _compile(image)
    text = plan.containerfile  # type: ignore[attr-defined]
    order = [
        "apt-get install -y --no-install-recommends curl",
        '"numpy<2"',
        "COPY inputs/2/requirements.txt",
        "echo 'a b'",
        'ENV GREETING="say \\"hi\\""',
        'RUN ["mkdir", "-p", "/srv"]',
        "WORKDIR /srv",
        'COPY src/6 "/srv/src"',
    ]
    positions = [text.index(fragment) for fragment in order]
    assert positions == sorted(positions), text
    downloads = plan.downloads  # type: ignore[attr-defined]
    assert [d.args for d in downloads] == [("numpy<2",), ("-r", str(req))]


def test_unionai_reuse_and_reuse_runtime_are_dropped_with_a_notice() -> None:
    image = Image.from_debian_base().with_pip_packages(
        "unionai-reuse>=0.1.10", "Reuse_Runtime", "six"
    )
    plan = _compile(image)
    notices = plan.notices  # type: ignore[attr-defined]
    assert len(notices) == 2 and "unionai-reuse>=0.1.10" in notices[0]
    assert [d.args for d in plan.downloads] == [("six",)]  # type: ignore[attr-defined]
    assert package_name("Foo_Bar.baz>=1") == "foo-bar-baz"


def test_uv_script_dependencies_come_from_its_header(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "# /// script\n"
        "# requires-python = '>=3.10'\n"
        "# dependencies = ['httpx', 'rich>=13']\n"
        "# ///\n"
    )
    plan = _compile(Image.from_uv_script(script, name="job"))
    assert [d.args for d in plan.downloads] == [("httpx", "rich>=13")]  # type: ignore[attr-defined]
    script.write_text("print('no header')\n")
    with pytest.raises(ImageBuildError, match="exactly one '# /// script'"):
        _compile(Image.from_uv_script(script, name="job"))


def test_uv_project_without_uv_uses_pyproject_dependencies_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\ndependencies = ["six"]\n')
    (tmp_path / "uv.lock").write_text("version = 1\n")
    image = Image.from_debian_base().with_uv_project(
        tmp_path / "pyproject.toml", project_install_mode="install_project"
    )
    plan = _compile(image, uv=None)
    assert any("uv is not installed here" in n for n in plan.notices)  # type: ignore[attr-defined]
    assert plan.downloads[0].args == ("six",)  # type: ignore[attr-defined]
    assert plan.downloads[1].project_dir == str(tmp_path)  # type: ignore[attr-defined]
    assert '"--no-deps", "demo"' in plan.containerfile  # type: ignore[attr-defined]
    with_uv = _compile(image, uv="/usr/bin/uv")
    assert with_uv.exports[0].project_dir == str(tmp_path)  # type: ignore[attr-defined]


def test_what_cannot_be_built_here_fails_naming_the_method() -> None:
    with pytest.raises(ImageBuildError, match="with_poetry_project is not supported"):
        _compile(Image.from_debian_base().with_poetry_project("pyproject.toml"))
    with pytest.raises(ImageBuildError, match="secret_mounts"):
        _compile(Image.from_debian_base().with_commands(["x"], secret_mounts=["S"]))
    with pytest.raises(ImageBuildError, match=r"asks for Python 3\.12"):
        _compile(Image.from_debian_base(python_version=(3, 12)), host_python=(3, 11))
    other = "linux/s390x" if host_platform() != "linux/s390x" else "linux/amd64"
    with pytest.raises(ImageBuildError, match="no cross-building"):
        _compile(Image.from_debian_base(platform=(other,)))


def test_dockerignore_patterns() -> None:
    patterns = ("*.log", "build/", "!keep.log", "docs/**/*.png")
    assert _ignored(Path("app.log"), patterns)
    assert not _ignored(Path("keep.log"), patterns)
    assert _ignored(Path("build/lib/x.py"), patterns)
    assert _ignored(Path("docs/a/b/c.png"), patterns)
    assert _ignored(Path("pkg/__pycache__"), ())
    assert not _ignored(Path("pkg/main.py"), patterns)


def test_with_code_bundle_bakes_the_pools_bundle_where_replicas_look() -> None:
    image = Image.from_debian_base().with_code_bundle()
    with pytest.raises(ImageBuildError, match="none was given"):
        compile_recipe(image, base="base", runtime_requirement="reuse-runtime==0.1.0")
    digest = "a" * 64
    plan = compile_recipe(
        image, base="base", runtime_requirement="reuse-runtime==0.1.0", code_bundle=digest
    )
    assert f"COPY code/{digest} /opt/reuse-runtime/code/{digest}" in plan.containerfile
    assert plan.code_bundle == digest
    plain = compile_recipe(
        Image.from_debian_base(), base="base", runtime_requirement="x", code_bundle=digest
    )
    assert plain.code_bundle == "" and "/opt/reuse-runtime/code" not in plain.containerfile
