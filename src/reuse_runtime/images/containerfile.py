"""Compile an :class:`~reuse_runtime.images.recipe.Image` recipe to a build plan.

The plan is a Containerfile plus what the host must prepare before the build:
the wheels to download (pip runs here, where the network is, and the build
installs from ``wheels/`` offline) and the local files to place in the build
context. :mod:`reuse_runtime.images.builder` carries it out.

Pure apart from reading the files the recipe names (a script's header, a
pyproject's dependencies), so it is tested without an engine.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from reuse_runtime.errors import ImageBuildError
from reuse_runtime.images.layers import (
    BAKED_CODE_DIR,
    AptPackages,
    CodeBundleLayer,
    Commands,
    CopyConfig,
    DockerIgnore,
    Env,
    Layer,
    PipOptions,
    PipPackages,
    Requirements,
    Unsupported,
    UVProject,
    UVScript,
    WorkDir,
)
from reuse_runtime.images.recipe import Image, host_platform

#: Where replicas' Python lives in every image we build.
VENV = "/opt/reuse-runtime"
#: Where the host's wheels are, during the build only.
WHEELS = "/tmp/reuse-runtime-wheels"
INPUTS = "/tmp/reuse-runtime-inputs"
#: PID 1 of every replica container (see reuse_runtime_init).
ENTRYPOINT = ["reuse-runtime-init", "reuse-runtime", "worker"]
#: pip packages a user may name that reuse-runtime provides itself.
_PROVIDED = ("unionai-reuse", "reuse-runtime")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class HostDownload:
    """``pip wheel`` on the host, into the context's ``wheels/``: specs and ``-r`` files."""

    args: tuple[str, ...]
    options: PipOptions = field(default_factory=PipOptions)
    #: Build this project's own wheel (no dependencies) instead: install_project.
    project_dir: str | None = None


@dataclass(frozen=True)
class UvExport:
    """``uv export`` of a project's lock into the context file ``out`` (before downloads)."""

    project_dir: str
    out: str


@dataclass(frozen=True)
class ContextCopy:
    """A local file or folder placed in the build context at ``path``."""

    path: str
    source: str
    is_dir: bool


@dataclass(frozen=True)
class BuildPlan:
    containerfile: str
    copies: tuple[ContextCopy, ...]
    exports: tuple[UvExport, ...]
    downloads: tuple[HostDownload, ...]
    #: ``.dockerignore`` lines that folder copies leave out.
    ignore: tuple[str, ...]
    notices: tuple[str, ...]
    #: The user's Dockerfile to build first, as the base (from_dockerfile).
    dockerfile: str | None = None
    #: The digest of the code bundle the image bakes (with_code_bundle), unpacked by the
    #: builder into the context's ``code/<digest>``.
    code_bundle: str = ""


def package_name(spec: str) -> str:
    """The normalized distribution name of a requirement spec (``"Foo_Bar>=1"`` -> foo-bar)."""
    match = _NAME.match(spec)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def _run(*argv: str) -> str:
    return "RUN " + json.dumps(list(argv))


def _shell(command: str) -> str:
    return _run("/bin/sh", "-c", command)


def compile_recipe(
    image: Image,
    *,
    base: str,
    runtime_requirement: str,
    host_python: tuple[int, int] = (sys.version_info[0], sys.version_info[1]),
    uv: str | None = None,
    code_bundle: str = "",
) -> BuildPlan:
    """The plan that builds ``image`` on top of ``base`` (a resolved image name).

    ``code_bundle`` is the digest of the code bundle a ``with_code_bundle()`` layer
    bakes: the version of the pool the image is for.

    ``runtime_requirement`` names reuse-runtime's own wheel (``reuse-runtime==0.1.0``),
    which the builder puts in ``wheels/`` with its dependencies; ``downloads`` are
    the user's packages only. ``uv`` is the uv executable, if any.
    """
    if image.python_version != host_python:
        want = ".".join(map(str, image.python_version))
        have = ".".join(map(str, host_python))
        raise ImageBuildError(
            f"the image asks for Python {want}, but reuse-runtime runs on Python {have} here, "
            f"and pip packages are downloaded here for {have}: use python_version=None "
            f"(this Python), or run reuse-runtime with Python {want}"
        )
    platform = host_platform()
    if image.platform and platform not in image.platform:
        raise ImageBuildError(
            f"the image is for {', '.join(image.platform)}, but this machine builds {platform} "
            f"(no cross-building); add {platform!r} to platform"
        )
    compiler = _Compiler(image, uv, code_bundle)
    lines = [f"FROM {base}"]
    lines += compiler.venv(runtime_requirement)
    for index, layer in enumerate(image._layers):
        lines += compiler.layer(index, layer)
    lines.append(_shell(f"rm -rf {WHEELS} {INPUTS}"))
    # As the project's Dockerfile: `podman run IMAGE --controller ADDR --environment NAME`
    # starts a worker that joins a controller. (The container backend sets its own command.)
    lines.append(f"ENTRYPOINT {json.dumps(ENTRYPOINT)}")
    lines.append("CMD []")
    return BuildPlan(
        containerfile="\n".join(lines) + "\n",
        copies=tuple(compiler.copies),
        exports=tuple(compiler.exports),
        downloads=tuple(compiler.downloads),
        ignore=compiler.ignore,
        notices=tuple(compiler.notices),
        dockerfile=image.dockerfile,
        code_bundle=code_bundle if image.code_bundle_layer() is not None else "",
    )


class _Compiler:
    def __init__(self, image: Image, uv: str | None, code_bundle: str = "") -> None:
        self.image = image
        self.uv = uv
        self.code_bundle = code_bundle
        self.copies: list[ContextCopy] = []
        self.exports: list[UvExport] = []
        self.downloads: list[HostDownload] = []
        self.notices: list[str] = []
        self.ignore: tuple[str, ...] = ()
        # The last .dockerignore wins, as in flyte; it applies to every folder copy.
        for layer in image._layers:
            if isinstance(layer, DockerIgnore):
                self.ignore = tuple(_read_ignore(Path(layer.path)))

    def venv(self, runtime_requirement: str) -> list[str]:
        want = self.image.python_version
        check = (
            "command -v python3 >/dev/null || { echo 'reuse-runtime: the base image has no "
            "python3 on its PATH' >&2; exit 1; }; "
            f"python3 -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == {want!r} else "
            f'"reuse-runtime: the base image has Python %d.%d, the recipe needs '
            f"{want[0]}.{want[1]}\" % v)' && "
            f"{{ python3 -m venv {VENV} || {{ echo 'reuse-runtime: the base image cannot make a "
            f"venv: install python3-venv in it' >&2; exit 1; }}; }}"
        )
        return [
            f'ENV VIRTUAL_ENV={VENV} PATH="{VENV}/bin:$PATH" PYTHONUNBUFFERED=1',
            _shell(check),
            f"COPY wheels {WHEELS}",
            _pip_install(runtime_requirement),
        ]

    def layer(self, index: int, layer: Layer) -> list[str]:
        if isinstance(layer, Unsupported):
            raise ImageBuildError(f"{layer.method} is not supported: {layer.unsupported}")
        if layer.unsupported:
            raise ImageBuildError(layer.unsupported)
        if isinstance(layer, PipPackages):
            return self._packages(list(layer.packages), layer.options, "with_pip_packages")
        if isinstance(layer, UVScript):
            deps = _script_dependencies(Path(layer.script))
            return self._packages(deps, layer.options, "from_uv_script")
        if isinstance(layer, Requirements):
            target = f"inputs/{index}/requirements.txt"
            self.copies.append(ContextCopy(target, layer.file, False))
            self.downloads.append(HostDownload(("-r", layer.file), layer.options))
            return [
                f"COPY {target} {INPUTS}/{index}.txt",
                _pip_install("-r", f"{INPUTS}/{index}.txt"),
            ]
        if isinstance(layer, UVProject):
            return self._uv_project(index, layer)
        if isinstance(layer, AptPackages):
            if not layer.packages:
                return []
            names = " ".join(shlex.quote(p) for p in layer.packages)
            return [
                _shell(
                    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                    f"--no-install-recommends {names} && rm -rf /var/lib/apt/lists/*"
                )
            ]
        if isinstance(layer, Commands):
            return [_shell(command) for command in layer.commands]
        if isinstance(layer, WorkDir):
            # WORKDIR alone may leave the directory out of the image: create it.
            return [_run("mkdir", "-p", layer.workdir), f"WORKDIR {layer.workdir}"]
        if isinstance(layer, Env):
            if not layer.env_vars:
                return []
            pairs = " ".join(f"{key}={json.dumps(value)}" for key, value in layer.env_vars)
            return [f"ENV {pairs}"]
        if isinstance(layer, CopyConfig):
            source = Path(layer.src)
            if layer.path_type == 1:
                target = f"src/{index}"
                self.copies.append(ContextCopy(target, layer.src, True))
                return [f"COPY {target} {json.dumps(layer.dst)}"]
            target = f"inputs/{index}/{source.name}"
            self.copies.append(ContextCopy(target, layer.src, False))
            dst = layer.dst.rstrip("/") + "/"
            return [f"COPY {target} {json.dumps(dst)}"]
        if isinstance(layer, DockerIgnore):
            return []
        if isinstance(layer, CodeBundleLayer):
            if not self.code_bundle:
                raise ImageBuildError(
                    "with_code_bundle(): the image bakes the code bundle of the version it runs, "
                    "and none was given: run the environment's tasks (a run makes the bundle), "
                    "or build it with `reuse-runtime image build FILE.py`"
                )
            target = f"{BAKED_CODE_DIR}/{self.code_bundle}"
            return [f"COPY code/{self.code_bundle} {target}"]
        raise ImageBuildError(f"reuse-runtime cannot build an image layer of kind {layer.kind!r}")

    def _packages(self, packages: list[str], options: PipOptions, method: str) -> list[str]:
        kept = []
        for spec in packages:
            if package_name(spec) in _PROVIDED:
                self.notices.append(
                    f"{method}: dropped {spec!r}: reuse-runtime is installed in every image, "
                    f"from this installation"
                )
            else:
                kept.append(spec)
        if not kept:
            return []
        self.downloads.append(HostDownload(tuple(kept), options))
        return [_pip_install(*kept)]

    def _uv_project(self, index: int, layer: UVProject) -> list[str]:
        project = Path(layer.pyproject).parent
        lines = []
        if self.uv is not None and layer.uvlock is not None:
            target = f"inputs/{index}/requirements.txt"
            self.exports.append(UvExport(str(project), target))
            self.downloads.append(HostDownload(("-r", target), layer.options))
            lines += [
                f"COPY {target} {INPUTS}/{index}.txt",
                _pip_install("-r", f"{INPUTS}/{index}.txt"),
            ]
        else:
            deps = _pyproject_dependencies(Path(layer.pyproject))
            if layer.uvlock is not None:
                self.notices.append(
                    f"with_uv_project: uv is not installed here, so pip resolves the dependencies "
                    f"of {layer.pyproject} and the pins of {layer.uvlock} are not applied; "
                    f"install uv to apply them"
                )
            lines += self._packages(deps, layer.options, "with_uv_project")
        if layer.project_install_mode == "install_project":
            name = _pyproject_name(Path(layer.pyproject))
            self.downloads.append(HostDownload((), layer.options, project_dir=str(project)))
            lines.append(_pip_install("--no-deps", name))
        return lines


def _pip_install(*args: str) -> str:
    return _run("pip", "install", "--no-cache-dir", "--no-index", "--find-links", WHEELS, *args)


def _read_ignore(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ImageBuildError(f"with_dockerignore: cannot read {path}: {exc.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


_SCRIPT_BLOCK = re.compile(
    r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
)


def _load_toml(text: str, where: str) -> dict[str, object]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        data: dict[str, object] = tomllib.loads(text)
    except ValueError as exc:
        raise ImageBuildError(f"{where}: {exc}") from None
    return data


def _script_dependencies(script: Path) -> list[str]:
    """The ``dependencies`` of a script's PEP 723 ``# /// script`` block."""
    try:
        source = script.read_text()
    except OSError as exc:
        raise ImageBuildError(f"from_uv_script: cannot read {script}: {exc.strerror}") from None
    blocks = [m for m in _SCRIPT_BLOCK.finditer(source) if m.group("type") == "script"]
    if len(blocks) != 1:
        raise ImageBuildError(
            f"from_uv_script: {script} needs exactly one '# /// script' metadata block "
            f"(PEP 723), found {len(blocks)}"
        )
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in blocks[0].group("content").splitlines(keepends=True)
    )
    metadata = _load_toml(content, f"the script block of {script}")
    deps = metadata.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ImageBuildError(f"from_uv_script: {script}: dependencies must be a list of strings")
    return list(deps)


def _pyproject(path: Path) -> dict[str, object]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ImageBuildError(f"with_uv_project: cannot read {path}: {exc.strerror}") from None
    project = _load_toml(text, str(path)).get("project")
    if not isinstance(project, dict):
        raise ImageBuildError(f"with_uv_project: {path} has no [project] table")
    return project


def _pyproject_dependencies(path: Path) -> list[str]:
    deps = _pyproject(path).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ImageBuildError(f"with_uv_project: {path}: dependencies must be a list of strings")
    return list(deps)


def _pyproject_name(path: Path) -> str:
    name = _pyproject(path).get("name")
    if not isinstance(name, str) or not name:
        raise ImageBuildError(f"with_uv_project: {path}: [project] has no name")
    return name
