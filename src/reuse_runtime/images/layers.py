"""The layers of an :class:`~reuse_runtime.images.recipe.Image` recipe: plain data.

Each ``with_*`` method of ``Image`` adds one; the compiler
(:mod:`reuse_runtime.images.containerfile`) gives them meaning. They travel in
the recipe's JSON, each with its ``kind``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Layer:
    """One step of a recipe. Subclasses are plain data; the compiler gives them meaning."""

    kind: ClassVar[str] = ""
    #: Set when a flyte option has no meaning here: the build fails naming it.
    unsupported: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class PipOptions:
    """flyte's pip options. They apply where packages are downloaded: on the host."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: str | None = None

    def pip_args(self) -> list[str]:
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        if self.pre:
            args.append("--pre")
        if self.extra_args:
            args += self.extra_args.split()
        return args


@dataclass(frozen=True)
class PipPackages(Layer):
    kind: ClassVar[str] = "pip"
    packages: tuple[str, ...] = ()
    options: PipOptions = field(default_factory=PipOptions)


@dataclass(frozen=True)
class Requirements(Layer):
    kind: ClassVar[str] = "requirements"
    file: str = ""
    options: PipOptions = field(default_factory=PipOptions)


@dataclass(frozen=True)
class UVScript(Layer):
    """The dependencies of a PEP 723 script (``# /// script`` block)."""

    kind: ClassVar[str] = "uv_script"
    script: str = ""
    options: PipOptions = field(default_factory=PipOptions)


@dataclass(frozen=True)
class UVProject(Layer):
    kind: ClassVar[str] = "uv_project"
    pyproject: str = ""
    uvlock: str | None = None
    project_install_mode: str = "dependencies_only"
    options: PipOptions = field(default_factory=PipOptions)


@dataclass(frozen=True)
class AptPackages(Layer):
    kind: ClassVar[str] = "apt"
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Commands(Layer):
    kind: ClassVar[str] = "commands"
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkDir(Layer):
    kind: ClassVar[str] = "workdir"
    workdir: str = ""


@dataclass(frozen=True)
class Env(Layer):
    kind: ClassVar[str] = "env"
    env_vars: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CopyConfig(Layer):
    """A local file (``path_type=0``) or folder (``1``) copied into the image."""

    kind: ClassVar[str] = "copy"
    path_type: int = 1
    src: str = ""
    dst: str = "."


@dataclass(frozen=True)
class DockerIgnore(Layer):
    """Patterns (a ``.dockerignore`` file) that source-folder copies leave out."""

    kind: ClassVar[str] = "dockerignore"
    path: str = ""


@dataclass(frozen=True)
class CodeBundleLayer(Layer):
    """The project's code bundle, of the version the pool runs, baked into its image.

    The builder unpacks the pool's bundle (named by its digest) into
    :data:`BAKED_CODE_DIR`; replicas import from there and fetch nothing.
    ``copy_style`` says which files the bundle holds.
    """

    kind: ClassVar[str] = "code_bundle"
    copy_style: str = "loaded_modules"
    dst: str = "."


#: Where an image made with ``with_code_bundle()`` holds its code bundle, by digest.
BAKED_CODE_DIR = "/opt/reuse-runtime/code"


@dataclass(frozen=True)
class Unsupported(Layer):
    """A flyte method with no offline meaning here; the build fails naming ``method``."""

    kind: ClassVar[str] = "unsupported"
    method: str = ""


_LAYERS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        PipPackages,
        Requirements,
        UVScript,
        UVProject,
        AptPackages,
        Commands,
        WorkDir,
        Env,
        CopyConfig,
        DockerIgnore,
        CodeBundleLayer,
        Unsupported,
    )
}


def _layer_from_dict(data: dict[str, Any]) -> Layer:
    cls = _LAYERS.get(str(data.get("kind")))
    if cls is None:
        raise ValueError(f"unknown image layer kind {data.get('kind')!r}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "options":
            opts = dict(value)
            opts["extra_index_urls"] = tuple(opts.get("extra_index_urls") or ())
            value = PipOptions(**opts)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[f.name] = value
    return cls(**values)
