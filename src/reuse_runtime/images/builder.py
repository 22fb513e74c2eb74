"""`ImageBuilder`: build an environment's image through the engine, once per recipe.

An image is tagged by a digest of everything that goes into it: the compiled
Containerfile, the base image's id, reuse-runtime's own wheel, and the content
of every local file the recipe copies or reads. A tag that exists is used as
it is: an unchanged recipe is never rebuilt.

A build runs in three steps:

1. **Host.** Wheels are downloaded (``pip wheel``) on this machine, where the
   network is, into the build context's ``wheels/``: reuse-runtime's own wheel
   (packed from this installation) with its dependencies, then the user's
   packages. Local files the recipe copies are placed in the context.
2. **Engine.** The context goes to the engine's build API; pip installs from
   ``wheels/`` with ``--no-index``, so the build needs no network (apt-get
   does: builds run on the host's network for it).
3. **Tag.** The image is tagged ``[registry/]name:digest`` and labeled with
   the recipe digest (and any extra labels, e.g. a test run's).

Calls block: the container backend runs them in a thread.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reuse_runtime.bundles.archive import max_bundle_bytes, unpack
from reuse_runtime.errors import ImageBuildError
from reuse_runtime.images.containerfile import BuildPlan, compile_recipe
from reuse_runtime.images.recipe import Image
from reuse_runtime.images.wheel import RuntimeWheel, runtime_wheel

if TYPE_CHECKING:
    import docker

#: Label on every image we build: the recipe digest.
RECIPE_LABEL = "io.reuse-runtime.recipe"
DEBIAN_BASE_ENV = "REUSE_RUNTIME_DEBIAN_BASE"
DEFAULT_DEBIAN_BASE = "localhost/bookworm-python"
#: A failed build is not retried for this long: the next replica start gets the same error.
FAILURE_MEMORY = 30.0
_ALWAYS_IGNORED = ("__pycache__", "*.pyc", ".git")

Progress = Callable[[str], None]
#: The code bundle a ``with_code_bundle()`` image bakes: its digest, and how to read it
#: (called only when the image is built).
BakedCode = tuple[str, Callable[[], bytes]]


def debian_base() -> str:
    """The image ``Image.from_debian_base()`` starts from."""
    return os.environ.get(DEBIAN_BASE_ENV) or DEFAULT_DEBIAN_BASE


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    #: False when the tag existed: nothing was built.
    built: bool
    seconds: float = 0.0
    notices: tuple[str, ...] = ()


class ImageBuilder:
    """Builds recipes through one engine; safe to call from several threads at once."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        cache_dir: Path,
        labels: dict[str, str] | None = None,
        base: str | None = None,
        uv: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cache_dir = cache_dir
        self._labels = dict(labels or {})
        self._base = base
        self._uv = uv if uv is not None else shutil.which("uv")
        self._clock = clock
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._done: dict[str, BuiltImage] = {}
        self._failed: dict[str, tuple[float, ImageBuildError]] = {}

    # -------------------------------------------------------------- entry point

    def ensure(
        self, image: Image | str, progress: Progress | None = None, code: BakedCode | None = None
    ) -> BuiltImage:
        """The image's tag, building it first if no image has that tag yet.

        ``image`` is a recipe, or the name of an image that must already exist
        (it is pulled if the engine can). Concurrent calls for one recipe share
        one build; a failed build is remembered for :data:`FAILURE_MEMORY` seconds.
        ``code`` is the code bundle a ``with_code_bundle()`` recipe bakes.
        """
        if isinstance(image, str) or image.code_bundle_layer() is None:
            code = None
        key = image if isinstance(image, str) else image.to_json()
        if code is not None:
            key += "\0" + code[0]
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._done:
                return self._done[key]
            failed = self._failed.get(key)
            if failed is not None and self._clock() - failed[0] < FAILURE_MEMORY:
                raise failed[1]
            try:
                if isinstance(image, str):
                    result = BuiltImage(self._present(image, "the environment's image"), False)
                else:
                    result = self._ensure_recipe(image, progress or _quiet, code)
            except ImageBuildError as exc:
                self._failed[key] = (self._clock(), exc)
                raise
            self._done[key] = result
            return result

    # -------------------------------------------------------------- recipes

    def _ensure_recipe(
        self, image: Image, progress: Progress, code: BakedCode | None = None
    ) -> BuiltImage:
        try:
            image.validate()
        except ValueError as exc:
            raise ImageBuildError(str(exc)) from None
        started = self._clock()
        if image.dockerfile is not None:
            base = self._build_dockerfile(Path(image.dockerfile), progress)
        elif image.base_image is not None:
            base = self._present(image.base_image, f"Image.from_base({image.base_image!r})")
        else:
            base = self._present(self._base or debian_base(), "the Debian base")
        base_id = str(self._client.images.get(base).id)
        wheel = runtime_wheel(self._cache_dir / "wheels")
        plan = compile_recipe(
            image,
            base=base,
            runtime_requirement=wheel.requirement,
            uv=self._uv,
            code_bundle=code[0] if code is not None else "",
        )
        digest = recipe_digest(plan, base_id, wheel)
        repository = (
            f"{image.registry}/{image.name or 'reuse-runtime'}"
            if image.registry
            else (f"localhost/{image.name or 'reuse-runtime'}")
        )
        tag = f"{repository}:{digest[:20]}"
        if self._exists(tag):
            return BuiltImage(tag, False, notices=plan.notices)
        for notice in plan.notices:
            progress(f"notice: {notice}")
        progress(f"building {tag} on {base}")
        with tempfile.TemporaryDirectory(prefix="build-", dir=self._ready_cache()) as tmp:
            context = Path(tmp)
            self._prepare(plan, wheel, context, progress)
            if plan.code_bundle and code is not None:
                _unpack_baked(code, context / "code")
            self._build(context, tag, {RECIPE_LABEL: digest, **self._labels}, progress)
        seconds = self._clock() - started
        progress(f"built {tag} in {seconds:.1f} s")
        return BuiltImage(tag, True, seconds, plan.notices)

    def _ready_cache(self) -> Path:
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        return self._cache_dir

    def _exists(self, name: str) -> bool:
        import docker.errors

        try:
            self._client.images.get(name)
        except docker.errors.ImageNotFound:
            return False
        return True

    def _present(self, name: str, what: str) -> str:
        """``name`` if the engine has it (pulling it if it can); else a clear error."""
        import docker.errors

        if self._exists(name):
            return name
        if name == (self._base or debian_base()):
            raise ImageBuildError(
                f"{what} image {name} is not in the engine. Make it once with "
                f"`reuse-runtime image base` (debootstrap, about a minute, as root), or set "
                f"${DEBIAN_BASE_ENV} to an image that has python3 and python3-venv"
            )
        try:
            self._client.images.pull(name)
        except docker.errors.APIError as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            raise ImageBuildError(
                f"{what}: image {name} is not in the engine, and pulling it failed "
                f"({str(reason)[:300]}). Build or load it first (`podman images` lists what is "
                f"there)"
            ) from None
        return name

    # -------------------------------------------------------------- host steps

    def _prepare(
        self, plan: BuildPlan, wheel: RuntimeWheel, context: Path, progress: Progress
    ) -> None:
        (context / "Containerfile").write_text(plan.containerfile)
        wheels = context / "wheels"
        wheels.mkdir()
        for copy in plan.copies:
            target = context / copy.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if copy.is_dir:
                shutil.copytree(copy.source, target, ignore=_ignore(Path(copy.source), plan.ignore))
            else:
                shutil.copy2(copy.source, target)
        for export in plan.exports:
            assert self._uv is not None
            out = context / export.out
            out.parent.mkdir(parents=True, exist_ok=True)
            self._host(
                [self._uv, "export", "--frozen", "--no-hashes", "--no-emit-project",
                 "--project", export.project_dir, "-o", str(out)],
                progress, "uv export",
            )  # fmt: skip
        self._host(_pip_wheel(wheels, [str(wheel.path)]), progress, "pip wheel (reuse-runtime)")
        for download in plan.downloads:
            if download.project_dir is not None:
                args = [*download.options.pip_args(), "--no-deps", download.project_dir]
            else:
                args = [*download.options.pip_args(), *_in_context(download.args, context)]
            self._host(_pip_wheel(wheels, args), progress, "pip wheel")

    def _host(self, argv: list[str], progress: Progress, what: str) -> None:
        progress(f"{what}: {' '.join(argv[:3])} ...")
        run_command(argv, what, progress, _pip_line)

    # -------------------------------------------------------------- engine steps

    def _build(self, context: Path, tag: str, labels: dict[str, str], progress: Progress) -> None:
        import docker.errors

        archive = _tar(context)
        tail: list[str] = []
        error = ""
        try:
            stream = self._client.api.build(
                fileobj=archive,
                custom_context=True,
                dockerfile="Containerfile",
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                labels=labels,
                # apt-get needs a network; pip does not (it installs from wheels/).
                network_mode="host",
            )
            for chunk in _chunks(stream):
                text = str(chunk.get("stream") or chunk.get("status") or "").rstrip()
                if chunk.get("error"):
                    error = str(chunk["error"]).strip()
                if text:
                    tail = (tail + text.splitlines())[-40:]
                    if text.startswith(("STEP", "Step")):
                        progress(f"  {text}")
        except docker.errors.APIError as exc:
            error = str(getattr(exc, "explanation", None) or exc)
        if error or not self._exists(tag):
            raise ImageBuildError(
                f"building {tag} failed: {error or 'the engine built no image'}\n"
                + "\n".join(tail[-25:])
            )

    def _build_dockerfile(self, dockerfile: Path, progress: Progress) -> str:
        """Build the user's Dockerfile (the engine's layer cache keeps this cheap)."""
        import docker.errors

        folder = dockerfile.parent
        name = hashlib.sha256(str(dockerfile).encode()).hexdigest()[:16]
        tag = f"localhost/reuse-runtime-dockerfile:{name}"
        progress(f"building {dockerfile} as {tag}")
        try:
            for chunk in _chunks(
                self._client.api.build(
                    path=str(folder), dockerfile=dockerfile.name, tag=tag, rm=True, decode=True,
                    labels=self._labels, network_mode="host",
                )
            ):  # fmt: skip
                if chunk.get("error"):
                    raise ImageBuildError(
                        f"from_dockerfile({str(dockerfile)!r}) failed: {chunk['error']}"
                    )
                text = str(chunk.get("stream") or "").rstrip()
                if text.startswith(("STEP", "Step")):
                    progress(f"  {text}")
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"from_dockerfile({str(dockerfile)!r}) failed: {exc}") from None
        return tag


def _unpack_baked(code: BakedCode, into: Path) -> None:
    """The bundle a ``with_code_bundle()`` image bakes, unpacked (checked) for its COPY."""
    digest, read = code
    unpacked = unpack(
        read(), digest, into, source="the controller", max_bytes=4 * max_bundle_bytes()
    )
    # Readable by whoever the replica runs as: the files keep these modes in the image.
    for folder, _, _ in os.walk(unpacked.root):
        os.chmod(folder, 0o755)


def recipe_digest(plan: BuildPlan, base_id: str, wheel: RuntimeWheel) -> str:
    """What the image's tag is made of: a change to anything here means a new image."""
    hasher = hashlib.sha256()
    hasher.update(b"reuse-runtime image v1\0")
    if plan.code_bundle:
        hasher.update(b"code bundle " + plan.code_bundle.encode() + b"\0")
    hasher.update(plan.containerfile.encode() + b"\0" + base_id.encode() + b"\0")
    hasher.update(wheel.digest.encode() + b"\0")
    for copy in plan.copies:
        hasher.update(copy.path.encode() + b"\0")
        _hash_path(hasher, Path(copy.source), plan.ignore)
    for download in plan.downloads:
        hasher.update(repr((download.args, download.options, download.project_dir)).encode())
        for i, arg in enumerate(download.args[:-1]):
            if arg == "-r" and Path(download.args[i + 1]).is_file():
                hasher.update(Path(download.args[i + 1]).read_bytes())
        if download.project_dir is not None:
            _hash_path(hasher, Path(download.project_dir), plan.ignore)
    for export in plan.exports:
        for name in ("pyproject.toml", "uv.lock"):
            lock = Path(export.project_dir) / name
            if lock.is_file():
                hasher.update(lock.read_bytes())
    return hasher.hexdigest()


def _hash_path(hasher: Any, path: Path, ignore: tuple[str, ...]) -> None:
    if path.is_file():
        hasher.update(path.read_bytes())
        return
    for folder, dirs, names in os.walk(path):
        rel_folder = Path(folder).relative_to(path)
        dirs[:] = sorted(d for d in dirs if not _ignored(rel_folder / d, ignore))
        for name in sorted(names):
            rel = rel_folder / name
            if _ignored(rel, ignore):
                continue
            hasher.update(rel.as_posix().encode() + b"\0")
            hasher.update((Path(folder) / name).read_bytes())


def _ignored(rel: Path, patterns: tuple[str, ...]) -> bool:
    """``.dockerignore`` semantics, simplified: globs on the relative path or a parent of it.

    ``!pattern`` re-includes what an earlier pattern excluded; the last match wins.
    """
    text = rel.as_posix()
    parts = [Path(*rel.parts[: i + 1]).as_posix() for i in range(len(rel.parts))]
    if any(fnmatch.fnmatch(rel.name, p) for p in _ALWAYS_IGNORED):
        return True
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        glob = glob.strip("/").removeprefix("./").replace("**/", "*").replace("/**", "/*")
        if any(fnmatch.fnmatch(p, glob) for p in parts) or fnmatch.fnmatch(text, glob):
            result = not negate
    return result


def _ignore(root: Path, patterns: tuple[str, ...]) -> Callable[[str, list[str]], set[str]]:
    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(root)
        return {n for n in names if _ignored(rel / n, patterns)}

    return ignore


def _in_context(args: tuple[str, ...], context: Path) -> list[str]:
    """``-r inputs/...`` names a file the builder wrote into the context."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg == "-r" and out[i + 1].startswith("inputs/"):
            out[i + 1] = str(context / out[i + 1])
    return out


def _pip_wheel(wheels: Path, args: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "pip", "wheel", "--progress-bar", "off",
        "--disable-pip-version-check", "--wheel-dir", str(wheels), "--find-links", str(wheels),
        *args,
    ]  # fmt: skip


def _tar(context: Path) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(context), arcname=".")
    buffer.seek(0)
    return buffer


def _chunks(stream: Any) -> Iterator[dict[str, Any]]:
    for chunk in stream:
        if isinstance(chunk, dict):
            yield chunk


def _quiet(line: str) -> None:
    pass


def _pip_line(line: str) -> str | None:
    if line.startswith("Saved "):
        return Path(line[6:]).name
    if line.startswith(("Building wheel", "ERROR", "error")):
        return line
    return None


def run_command(
    argv: list[str], what: str, progress: Progress, show: Callable[[str], str | None]
) -> None:
    """Run a host command; ``show`` picks the lines worth reporting. Raises with its tail."""
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            shown = show(line)
            if shown is not None:
                progress(f"  {shown}")
    if process.returncode != 0:
        raise ImageBuildError(
            f"{what} failed on this machine (exit {process.returncode}):\n" + "\n".join(tail)
        )
