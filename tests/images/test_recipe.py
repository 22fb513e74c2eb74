"""`Image`: flyte's builder API, as data that travels to the controller as JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.images.recipe import (
    AptPackages,
    Commands,
    CopyConfig,
    Env,
    Image,
    PipPackages,
    Unsupported,
    UVProject,
    WorkDir,
    parse_image_field,
)


def test_flyte_spellings_build_layers_in_order(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("six\n")
    (tmp_path / "pkg").mkdir()
    image = (
        flyte.Image.from_debian_base(python_version=(3, 11))
        .with_apt_packages("curl", "git")
        .with_pip_packages("numpy<2", "pandas", pre=True, index_url="https://example/simple")
        .with_requirements(req)
        .with_commands(["echo hi", "touch /x"])
        .with_env_vars({"A": "1"})
        .with_workdir("/srv")
        .with_source_folder(tmp_path / "pkg")
        .with_source_file(req, dst="/etc/app")
    )
    kinds = [type(layer) for layer in image._layers]
    assert kinds[:2] == [AptPackages, PipPackages]
    pip = image._layers[1]
    assert isinstance(pip, PipPackages)
    assert pip.packages == ("numpy<2", "pandas") and pip.options.pre
    assert pip.options.pip_args() == ["--index-url", "https://example/simple", "--pre"]
    assert isinstance(image._layers[3], Commands) and image._layers[3].commands == (
        "echo hi",
        "touch /x",
    )
    assert isinstance(image._layers[4], Env) and image._layers[4].env_vars == (("A", "1"),)
    assert isinstance(image._layers[5], WorkDir)
    folder = image._layers[6]
    assert isinstance(folder, CopyConfig) and folder.dst == "./pkg" and folder.path_type == 1
    assert image.python_version == (3, 11)
    image.validate()


def test_json_round_trip_is_exact_and_stable() -> None:
    image = Image.from_debian_base().with_pip_packages("a").with_env_vars({"B": "2"})
    text = image.to_json()
    assert Image.from_json(text) == image
    assert Image.from_json(text).to_json() == text
    assert parse_image_field(text) == image
    assert parse_image_field("") == Image.from_debian_base()
    assert parse_image_field("python:3.11-slim") == "python:3.11-slim"
    with pytest.raises(ValueError, match="malformed image recipe"):
        Image.from_json('{"recipe": 1}')
    with pytest.raises(ValueError, match="not an image recipe"):
        Image.from_json("[]")


def test_uv_project_and_clone(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\ndependencies = ["six"]\n')
    (tmp_path / "uv.lock").write_text("version = 1\n")
    image = Image.from_debian_base().with_uv_project(tmp_path / "pyproject.toml")
    layer = image._layers[0]
    assert isinstance(layer, UVProject) and layer.uvlock == str(tmp_path / "uv.lock")
    renamed = image.clone(name="mine", registry="registry.local")
    assert renamed.name == "mine" and renamed._layers == image._layers


def test_methods_without_offline_meaning_are_recorded_to_fail_at_build() -> None:
    for image, method in (
        (Image.from_debian_base().with_poetry_project("pyproject.toml"), "with_poetry_project"),
        (Image.from_debian_base().with_pixi_project("pixi.toml"), "with_pixi_project"),
        (Image.from_ref_name("gpu"), "from_ref_name('gpu')"),
        (Image.from_debian_base(registry_secret="s"), "from_debian_base(registry_secret=...)"),
    ):
        unsupported = [layer for layer in image._layers if isinstance(layer, Unsupported)]
        assert unsupported and unsupported[0].method == method
    secret = Image.from_debian_base().with_pip_packages("x", secret_mounts=["TOKEN"])
    assert "secret_mounts" in secret._layers[0].unsupported


def test_bad_input_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must have a \.txt extension"):
        Image.from_debian_base().with_requirements("reqs.in")
    with pytest.raises(ValueError, match="separate arguments"):
        Image.from_debian_base().with_pip_packages(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overwrite each other"):
        Image.from_debian_base().with_source_file([Path("a/x.py"), Path("b/x.py")])
    with pytest.raises(ValueError, match="from_dockerfile"):
        Image.from_dockerfile(tmp_path / "Dockerfile").with_pip_packages("x")
    with pytest.raises(ValueError, match="python_version"):
        Image.from_debian_base(python_version="three")
    with pytest.raises(ValueError, match="does not exist"):
        Image.from_debian_base().with_source_folder(tmp_path / "missing").validate()
    with pytest.raises(ValueError, match="from_base needs an image name"):
        Image.from_base("")


def test_task_environment_sends_the_recipe_and_refuses_nonsense() -> None:
    image = Image.from_debian_base().with_pip_packages("x")
    env = flyte.TaskEnvironment(name="img", image=image)
    assert Image.from_json(env.spec().image) == image
    assert flyte.TaskEnvironment(name="auto", image="auto").spec().image == ""
    assert flyte.TaskEnvironment(name="named", image="myimage:1").spec().image == "myimage:1"
    with pytest.raises(TypeError, match="Expected image to be of type str or Image"):
        flyte.TaskEnvironment(name="bad", image=42)  # type: ignore[arg-type]


def test_with_code_bundle_is_a_layer_that_names_its_copy_style() -> None:
    from reuse_runtime.images.recipe import baked_copy_style

    image = Image.from_debian_base().with_code_bundle(copy_style="all")
    layer = image.code_bundle_layer()
    assert layer is not None and layer.copy_style == "all"
    assert Image.from_json(image.to_json()) == image
    assert baked_copy_style(image.to_json()) == "all"
    assert baked_copy_style(Image.from_debian_base().to_json()) is None
    assert baked_copy_style("busybox:1") is None
    assert Image.from_debian_base().code_bundle_layer() is None
    with pytest.raises(ValueError, match="'loaded_modules' or 'all'"):
        Image.from_debian_base().with_code_bundle(copy_style="none")
