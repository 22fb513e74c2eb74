"""The Debian base image that ``Image.from_debian_base()`` starts from, made without a registry.

``reuse-runtime image base`` runs::

    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm DIR
    tar -C DIR -c . | <the engine's image import>   # tagged localhost/bookworm-python

It takes about a minute, needs root (debootstrap does) and Debian's mirror,
and gives Debian 12's Python 3.11. The image is labeled with its Python
version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reuse_runtime.errors import ImageBuildError
from reuse_runtime.images.builder import run_command

if TYPE_CHECKING:
    import docker

PYTHON_LABEL = "io.reuse-runtime.python"
DEFAULT_SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# debootstrap's lines worth showing (it prints a hundred "Retrieving ..." too).
_MILESTONES = (
    "I: Retrieving Release",
    "I: Resolving dependencies",
    "I: Checking component",
    "I: Installing core packages",
    "I: Unpacking required packages",
    "I: Configuring required packages",
    "I: Base system",
    "E:",
    "W:",
)


def make_debian_base(
    client: docker.DockerClient,
    tag: str,
    *,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
    labels: dict[str, str] | None = None,
    progress: Callable[[str], None] = print,
) -> str:
    """Build the base with debootstrap and import it into the engine as ``tag``.

    Returns the image's Python version, e.g. ``"3.11"``.
    """
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ImageBuildError(
            "debootstrap is not installed: `apt-get install -y debootstrap` (it makes the "
            "Debian base without a registry)"
        )
    if os.geteuid() != 0:
        raise ImageBuildError(
            "debootstrap needs root: run `sudo reuse-runtime image base`, or set "
            "$REUSE_RUNTIME_DEBIAN_BASE to an image with python3 and python3-venv"
        )
    with tempfile.TemporaryDirectory(prefix="reuse-runtime-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        argv = [
            debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(root),
        ]  # fmt: skip
        if mirror:
            argv.append(mirror)
        progress(f"$ {' '.join(argv)}")
        _run(argv, progress)
        python = _python_version(root)
        progress(f"Python {python}; importing into the engine as {tag}")
        archive = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(root), "-c", "-f", str(archive), "."], progress)
        changes = [f'LABEL {PYTHON_LABEL}="{python}"', 'CMD ["/bin/bash"]']
        changes += [f'LABEL {key}="{value}"' for key, value in sorted((labels or {}).items())]
        from docker.utils import parse_repository_tag

        repository, version = parse_repository_tag(tag)
        client.api.import_image(
            src=str(archive), repository=repository, tag=version or "latest", changes=changes
        )
    return python


def _run(argv: list[str], progress: Callable[[str], None]) -> None:
    run_command(
        argv,
        Path(argv[0]).name,
        progress,
        lambda line: line if line.startswith(_MILESTONES) else None,
    )


def _python_version(root: Path) -> str:
    link = root / "usr" / "bin" / "python3"
    name = Path(os.readlink(link)).name if link.is_symlink() else ""
    if not name.startswith("python3."):
        raise ImageBuildError(f"the new root file system has no python3 ({root}/usr/bin/python3)")
    return name.removeprefix("python")
