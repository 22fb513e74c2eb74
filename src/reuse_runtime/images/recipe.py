"""`Image`: a replica's container image, as a recipe, with flyte's builder API.

The recipe is data: a base and an ordered tuple of layers. It travels to the
controller as JSON (:meth:`Image.to_json`), and the container backend compiles
it to a Containerfile (:mod:`reuse_runtime.images.containerfile`) and builds
it through the engine (:mod:`reuse_runtime.images.builder`). The local backend
does not use images: replicas there run with the caller's own Python.

The names, signatures and defaults are flyte's (``flyte.Image``), so image
definitions port unchanged::

    image = (
        flyte.Image.from_debian_base(python_version=(3, 11))
        .with_apt_packages("curl")
        .with_pip_packages("numpy<2")
        .with_env_vars({"MODEL": "small"})
    )

What is different, because builds here work offline and without a registry:

* reuse-runtime is always installed, from a wheel of the running
  installation; a ``unionai-reuse`` pip package is dropped with a notice.
* ``from_debian_base()`` starts from a configurable local base image
  (``reuse-runtime image base`` makes one with debootstrap).
* Pip packages are downloaded on the host and installed offline in the build.
* Images are tagged by a digest of the recipe and never pushed; ``registry``
  and ``name`` only name them.
* Methods with no offline meaning (``with_poetry_project``,
  ``with_pixi_project``, ``from_ref_name``, ``secret_mounts``) are recorded and
  rejected at build time with an error naming them.
"""

from __future__ import annotations

import json
import platform as _platform
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

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
    _layer_from_dict,
)

Architecture = Literal["linux/amd64", "linux/arm64"]

#: Recipe format version; bump when the JSON shape changes.
RECIPE_VERSION = 1
#: Set on a replica whose image was built elsewhere (a Kubernetes pod): its environment's
#: name, and the recipe (JSON) it was started from. A recipe computed again in the pod
#: can differ (``with_source_folder`` of a host path), so for that environment the SDK
#: uses this one, and a task calling a task of its own environment names the same pool.
OWN_ENVIRONMENT_ENV = "REUSE_RUNTIME_OWN_ENVIRONMENT"
OWN_RECIPE_ENV = "REUSE_RUNTIME_OWN_RECIPE"
_DEFAULT_PLATFORMS: tuple[str, ...] = ("linux/amd64", "linux/arm64")


def host_platform() -> str:
    machine = _platform.machine().lower()
    return {"x86_64": "linux/amd64", "amd64": "linux/amd64", "aarch64": "linux/arm64"}.get(
        machine, f"linux/{machine}"
    )


def _detect_python_version() -> tuple[int, int]:
    return sys.version_info[0], sys.version_info[1]


def _tuple(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _python_version(value: tuple[int, int] | str | None) -> tuple[int, int]:
    if value is None:
        return _detect_python_version()
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        if not (major.isdigit() and minor.isdigit()):
            raise ValueError(f"python_version must be like (3, 11) or '3.11', got {value!r}")
        return int(major), int(minor)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"python_version must be like (3, 11), got {value!r}")
    return int(value[0]), int(value[1])


def _secret_note(secret_mounts: Any, method: str) -> str:
    if secret_mounts:
        return (
            f"{method}(secret_mounts=...): build secrets are not supported; packages are "
            f"downloaded on this machine, so credentials for a private index belong in its pip "
            f"configuration (pip.conf or PIP_INDEX_URL)"
        )
    return ""


# ------------------------------------------------------------------ the image


@dataclass(frozen=True)
class Image:
    """A container image recipe: flyte's ``Image`` API, built offline by the container backend.

    Start with a ``from_*`` constructor, then add layers with ``with_*``
    methods; each returns a new ``Image``.

    >>> Image.from_debian_base().with_pip_packages("numpy").describe()
    'debian-base pip:numpy'
    """

    #: None: the configured Debian base (``$REUSE_RUNTIME_DEBIAN_BASE``).
    base_image: str | None = None
    dockerfile: str | None = None
    registry: str | None = None
    name: str | None = None
    platform: tuple[str, ...] = ("linux/amd64",)
    python_version: tuple[int, int] = field(default_factory=_detect_python_version)
    extendable: bool = True
    _layers: tuple[Layer, ...] = ()

    # -------------------------------------------------------------- constructors

    @classmethod
    def from_debian_base(
        cls,
        python_version: tuple[int, int] | str | None = None,
        flyte_version: str | None = None,
        install_flyte: bool = True,
        registry: str | None = None,
        registry_secret: str | None = None,
        name: str | None = None,
        platform: tuple[str, ...] | None = None,
    ) -> Image:
        """A Debian image with Python, plus reuse-runtime.

        The base is ``$REUSE_RUNTIME_DEBIAN_BASE`` (default
        ``localhost/bookworm-python``, made by ``reuse-runtime image base``).
        reuse-runtime is always installed, whatever ``install_flyte`` says: a
        replica cannot run without it; ``flyte_version`` does not apply.
        """
        image = cls(
            registry=registry,
            name=name,
            platform=platform or _DEFAULT_PLATFORMS,
            python_version=_python_version(python_version),
        )
        if registry_secret:
            image = image._with(
                Unsupported(
                    method="from_debian_base(registry_secret=...)",
                    unsupported="registry credentials are not supported: nothing is pulled or "
                    "pushed; base images come from the engine's local store",
                )
            )
        return image

    @classmethod
    def from_base(cls, image_uri: str) -> Image:
        """Start from an image already in the engine (``podman images``), by name."""
        if not isinstance(image_uri, str) or not image_uri.strip():
            raise ValueError(f"from_base needs an image name, got {image_uri!r}")
        return cls(base_image=image_uri)

    @classmethod
    def from_dockerfile(
        cls,
        file: Path | str,
        registry: str | None = None,
        name: str | None = None,
        platform: str | tuple[str, ...] | None = None,
    ) -> Image:
        """Build the user's Dockerfile (its folder is the context), then add reuse-runtime.

        Like flyte, no layers may be added to it: put them in the Dockerfile.
        """
        return cls(
            dockerfile=str(Path(file).resolve()),
            registry=registry,
            name=name,
            platform=_tuple(platform) or ("linux/amd64",),
            extendable=False,
        )

    @classmethod
    def from_uv_script(
        cls,
        script: Path | str,
        *,
        name: str,
        registry: str | None = None,
        registry_secret: str | None = None,
        python_version: tuple[int, int] | None = None,
        index_url: str | None = None,
        extra_index_urls: str | list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        platform: tuple[str, ...] | None = None,
        secret_mounts: Any = None,
    ) -> Image:
        """The Debian base plus the ``dependencies`` of a PEP 723 script's header."""
        base = cls.from_debian_base(
            python_version=python_version,
            registry=registry,
            registry_secret=registry_secret,
            name=name,
            platform=platform,
        )
        return base._with(
            UVScript(
                script=str(Path(script).resolve()),
                options=PipOptions(index_url, _tuple(extra_index_urls), pre, extra_args),
                unsupported=_secret_note(secret_mounts, "from_uv_script"),
            )
        )

    @classmethod
    def from_ref_name(cls, name: str = "default") -> Image:
        """flyte's named image references; recorded, and rejected when built."""
        return cls(name=name)._with(
            Unsupported(
                method=f"from_ref_name({name!r})",
                unsupported="image references come from flyte's configuration, which "
                "reuse-runtime does not read; use Image.from_base(uri) with the image's name",
            )
        )

    def clone(
        self,
        registry: str | None = None,
        registry_secret: str | None = None,
        name: str | None = None,
        base_image: str | None = None,
        python_version: tuple[int, int] | None = None,
        addl_layer: Layer | None = None,
        extendable: bool | None = None,
        platform: str | tuple[str, ...] | None = None,
    ) -> Image:
        """A copy with another name, registry, base or Python, optionally plus one layer."""
        if addl_layer is not None and not self.extendable:
            raise ValueError(
                "Cannot add additional layers to a non-extendable image (one from "
                "from_dockerfile): put the steps in the Dockerfile"
            )
        image = replace(
            self,
            registry=registry or self.registry,
            name=name or self.name,
            base_image=base_image or self.base_image,
            python_version=python_version or self.python_version,
            extendable=self.extendable if extendable is None else extendable,
            platform=_tuple(platform) or self.platform,
        )
        if registry_secret:
            image = image._with(
                Unsupported(
                    method="clone(registry_secret=...)",
                    unsupported="registry credentials are not supported: nothing is pulled or "
                    "pushed",
                )
            )
        return image._with(addl_layer) if addl_layer is not None else image

    def _with(self, layer: Layer) -> Image:
        if not self.extendable:
            raise ValueError(
                "Cannot add additional layers to an image from from_dockerfile: put the steps "
                "in the Dockerfile"
            )
        return replace(self, _layers=(*self._layers, layer))

    # -------------------------------------------------------------- layers

    def with_pip_packages(
        self,
        *packages: str,
        index_url: str | None = None,
        extra_index_urls: str | list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: Any = None,
    ) -> Image:
        """Install pip packages: downloaded on this machine, installed offline in the build."""
        for package in packages:
            if not isinstance(package, str) or not package.strip():
                raise ValueError(
                    f"with_pip_packages takes package names as separate arguments, got {package!r}"
                )
        return self._with(
            PipPackages(
                packages=tuple(packages),
                options=PipOptions(index_url, _tuple(extra_index_urls), pre, extra_args),
                unsupported=_secret_note(secret_mounts, "with_pip_packages"),
            )
        )

    def with_requirements(
        self,
        file: str | Path,
        index_url: str | None = None,
        extra_index_urls: str | list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: Any = None,
    ) -> Image:
        """Install a ``requirements.txt`` (downloaded on this machine, installed offline)."""
        path = Path(file)
        if path.suffix != ".txt":
            raise ValueError(f"Requirements file {path} must have a .txt extension")
        return self._with(
            Requirements(
                file=str(path.resolve()),
                options=PipOptions(index_url, _tuple(extra_index_urls), pre, extra_args),
                unsupported=_secret_note(secret_mounts, "with_requirements"),
            )
        )

    def with_uv_project(
        self,
        pyproject_file: str | Path,
        uvlock: Path | None = None,
        index_url: str | None = None,
        extra_index_urls: list[str] | tuple[str, ...] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: Any = None,
        project_install_mode: Literal["dependencies_only", "install_project"] = "dependencies_only",
    ) -> Image:
        """Install a uv project's dependencies (``uv export`` of its lock when uv is here).

        ``project_install_mode="install_project"`` installs the project itself too.
        """
        pyproject = Path(pyproject_file).resolve()
        if uvlock is None and (pyproject.parent / "uv.lock").exists():
            uvlock = pyproject.parent / "uv.lock"
        if project_install_mode not in ("dependencies_only", "install_project"):
            raise ValueError(
                f"project_install_mode must be 'dependencies_only' or 'install_project', got "
                f"{project_install_mode!r}"
            )
        return self._with(
            UVProject(
                pyproject=str(pyproject),
                uvlock=str(Path(uvlock).resolve()) if uvlock is not None else None,
                project_install_mode=project_install_mode,
                options=PipOptions(index_url, _tuple(extra_index_urls), pre, extra_args),
                unsupported=_secret_note(secret_mounts, "with_uv_project"),
            )
        )

    def with_poetry_project(self, pyproject_file: str | Path, *args: Any, **kwargs: Any) -> Image:
        """flyte's Poetry projects; recorded, and rejected when built."""
        return self._with(
            Unsupported(
                method="with_poetry_project",
                unsupported="Poetry is not supported by reuse-runtime's offline builder; "
                "export the lock (`poetry export -o requirements.txt`) and use "
                "with_requirements",
            )
        )

    def with_pixi_project(self, manifest_file: str | Path, *args: Any, **kwargs: Any) -> Image:
        """flyte's pixi projects; recorded, and rejected when built."""
        return self._with(
            Unsupported(
                method="with_pixi_project",
                unsupported="pixi (conda) environments are not supported by reuse-runtime's "
                "builder; use with_pip_packages or with_requirements",
            )
        )

    def with_apt_packages(self, *packages: str, secret_mounts: Any = None) -> Image:
        """Install Debian packages with apt-get (the build uses the host's network for it)."""
        return self._with(
            AptPackages(
                packages=tuple(packages),
                unsupported=_secret_note(secret_mounts, "with_apt_packages"),
            )
        )

    def with_commands(self, commands: list[str] | str, secret_mounts: Any = None) -> Image:
        """Run shell commands in the build, one ``RUN`` each (do not write ``RUN``)."""
        return self._with(
            Commands(
                commands=_tuple(commands),
                unsupported=_secret_note(secret_mounts, "with_commands"),
            )
        )

    def with_env_vars(self, env_vars: dict[str, str]) -> Image:
        """Set environment variables in the image."""
        for key, value in env_vars.items():
            if not isinstance(key, str) or not key or "=" in key or not isinstance(value, str):
                raise ValueError(
                    f"with_env_vars needs string names (no '=') and string values, got "
                    f"{key!r}={value!r}"
                )
        return self._with(Env(env_vars=tuple(env_vars.items())))

    def with_workdir(self, workdir: str) -> Image:
        """The image's working directory (created in the image)."""
        return self._with(WorkDir(workdir=workdir))

    def with_source_folder(
        self, src: Path, dst: str = ".", copy_contents_only: bool = False
    ) -> Image:
        """Copy a local folder into the image; ``dst`` is relative to the working directory."""
        src = Path(src)
        if not copy_contents_only:
            dst = "./" + src.name if dst == "." else dst
        return self._with(CopyConfig(path_type=1, src=str(src.resolve()), dst=dst))

    def with_source_file(self, src: Path | list[Path], dst: str = ".") -> Image:
        """Copy local file(s) into the image, into folder ``dst``."""
        if isinstance(src, list):
            names = [Path(p).name for p in src]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(
                    f"Multiple files with the same name would overwrite each other at "
                    f"destination {dst!r}: {duplicates}"
                )
            image = self
            for path in src:
                image = image._with(CopyConfig(path_type=0, src=str(Path(path).resolve()), dst=dst))
            return image
        return self._with(CopyConfig(path_type=0, src=str(Path(src).resolve()), dst=dst))

    def with_dockerignore(self, path: Path) -> Image:
        """Leave out what this ``.dockerignore`` names when copying source folders."""
        return self._with(DockerIgnore(path=str(Path(path).resolve())))

    def with_code_bundle(self, copy_style: str = "loaded_modules", dst: str = ".") -> Image:
        """Bake the project's code bundle into the image, for immutable images.

        Each code version then has an image of its own (tagged with the bundle's
        digest), and its replicas import the baked copy: they fetch nothing, and
        see none of the client's files even where they could. ``copy_style``
        (``"loaded_modules"`` or ``"all"``) picks the files, for every run of the
        environment, as ``with_runcontext(copy_style=...)`` does for others; on
        Kubernetes, ``"all"`` makes the bundle that ``reuse-runtime image build``
        bakes the same as the one a run names. The files are in
        ``/opt/reuse-runtime/code/<digest>``, whatever ``dst`` says.
        """
        if copy_style not in ("loaded_modules", "all"):
            raise ValueError(
                f"with_code_bundle(copy_style=...) must be 'loaded_modules' or 'all', got "
                f"{copy_style!r}"
            )
        return self._with(CodeBundleLayer(copy_style=copy_style, dst=dst))

    def code_bundle_layer(self) -> CodeBundleLayer | None:
        """The ``with_code_bundle()`` layer, if the image bakes the code bundle."""
        for layer in self._layers:
            if isinstance(layer, CodeBundleLayer):
                return layer
        return None

    # -------------------------------------------------------------- checks and forms

    def validate(self) -> None:
        """Raise ``ValueError`` for a missing local file the recipe names."""
        for layer in self._layers:
            for label, path, want_dir in _paths_of(layer):
                p = Path(path)
                if not p.exists():
                    raise ValueError(f"{label} {p} does not exist")
                if want_dir is not None and p.is_dir() != want_dir:
                    kind = "directory" if want_dir else "file"
                    raise ValueError(f"{label} {p} is not a {kind}")
        if self.dockerfile is not None and not Path(self.dockerfile).is_file():
            raise ValueError(f"Dockerfile {self.dockerfile} does not exist")

    def describe(self) -> str:
        """A short human summary (the recipe itself is :meth:`to_json`)."""
        dockerfile = f"dockerfile:{self.dockerfile}" if self.dockerfile else ""
        parts = [self.base_image or dockerfile or "debian-base"]
        for layer in self._layers:
            if isinstance(layer, PipPackages):
                parts.append("pip:" + ",".join(layer.packages))
            elif isinstance(layer, AptPackages):
                parts.append("apt:" + ",".join(layer.packages))
            elif isinstance(layer, Unsupported):
                parts.append(layer.method)
            else:
                parts.append(layer.kind)
        return " ".join(parts)

    def to_json(self) -> str:
        """The recipe as JSON: how it travels to a controller."""
        data = {
            "recipe": RECIPE_VERSION,
            "base_image": self.base_image,
            "dockerfile": self.dockerfile,
            "registry": self.registry,
            "name": self.name,
            "platform": list(self.platform),
            "python_version": list(self.python_version),
            "extendable": self.extendable,
            # Nested dataclasses become objects, tuples JSON arrays.
            "layers": [{"kind": layer.kind, **asdict(layer)} for layer in self._layers],
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Image:
        """Parse :meth:`to_json`; raises ``ValueError`` on anything else."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("recipe") != RECIPE_VERSION:
                raise ValueError(f"not an image recipe of version {RECIPE_VERSION}")
            version = data["python_version"]
            return cls(
                base_image=data.get("base_image"),
                dockerfile=data.get("dockerfile"),
                registry=data.get("registry"),
                name=data.get("name"),
                platform=tuple(data.get("platform") or ()),
                python_version=(int(version[0]), int(version[1])),
                extendable=bool(data.get("extendable", True)),
                _layers=tuple(_layer_from_dict(layer) for layer in data.get("layers", [])),
            )
        except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed image recipe: {exc}") from None


def _paths_of(layer: Layer) -> list[tuple[str, str, bool | None]]:
    """(label, path, must be a directory?) for each local path a layer reads."""
    if isinstance(layer, CopyConfig):
        return [("Source", layer.src, layer.path_type == 1)]
    if isinstance(layer, Requirements):
        return [("Requirements file", layer.file, False)]
    if isinstance(layer, UVScript):
        return [("uv script", layer.script, False)]
    if isinstance(layer, UVProject):
        found: list[tuple[str, str, bool | None]] = [("pyproject.toml", layer.pyproject, False)]
        if layer.uvlock:
            found.append(("uv.lock", layer.uvlock, False))
        return found
    if isinstance(layer, DockerIgnore):
        return [(".dockerignore", layer.path, False)]
    return []


def baked_copy_style(image_field: str) -> str | None:
    """The ``copy_style`` of an image field's ``with_code_bundle()``, if it has one."""
    if '"code_bundle"' not in image_field:  # the common case, without parsing JSON
        return None
    try:
        parsed = parse_image_field(image_field)
    except ValueError:
        return None
    layer = parsed.code_bundle_layer() if isinstance(parsed, Image) else None
    return layer.copy_style if layer is not None else None


def parse_image_field(text: str) -> Image | str:
    """An environment's ``image`` on the wire: a recipe (JSON), or an image name.

    The empty string means the default: ``Image.from_debian_base()``.
    """
    if not text:
        return Image.from_debian_base()
    if text.lstrip().startswith("{"):
        return Image.from_json(text)
    return text


# The layers are re-exported: recipes are made of them.
__all__ = [
    "BAKED_CODE_DIR",
    "OWN_ENVIRONMENT_ENV",
    "OWN_RECIPE_ENV",
    "RECIPE_VERSION",
    "AptPackages",
    "Architecture",
    "CodeBundleLayer",
    "Commands",
    "CopyConfig",
    "DockerIgnore",
    "Env",
    "Image",
    "Layer",
    "PipOptions",
    "PipPackages",
    "Requirements",
    "UVProject",
    "UVScript",
    "Unsupported",
    "WorkDir",
    "baked_copy_style",
    "host_platform",
    "parse_image_field",
]
