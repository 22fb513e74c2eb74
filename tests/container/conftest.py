"""The container suite: a real engine (Podman's service), real images, real containers.

Run it alone with ``python -m pytest -m container``. With ``$DOCKER_HOST`` set it
uses that engine; otherwise it starts ``podman system service`` on a socket of
its own, and stops it at the end. The Debian base image is made once if it is
missing (``reuse-runtime image base``; CI makes it before the tests).

Every container and image the tests create carries a label unique to this
run, and the run removes them all by that label at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reuse_runtime import engine
from reuse_runtime.backends.container import LABELS_ENV
from reuse_runtime.images.builder import debian_base

RUN_LABEL = "reuse-runtime-test-run"


@pytest.fixture(scope="session", autouse=True)
def container_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    run_id = uuid.uuid4().hex[:12]
    home = tmp_path_factory.mktemp("home")
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", LABELS_ENV, "REUSE_RUNTIME_HOME")}
    service = None
    host = os.environ.get("DOCKER_HOST")
    if not host:
        if shutil.which("podman") is None:
            pytest.fail(
                "the container tests need Podman (apt-get install -y podman runc) or "
                "$DOCKER_HOST pointing at an engine"
            )
        where = tmp_path_factory.mktemp("engine")
        socket = where / "podman.sock"
        service = engine.start_podman_service(
            socket, conf=where / "containers.conf", log=where / "podman.log"
        )
        host = f"unix://{socket}"
    os.environ["DOCKER_HOST"] = host
    os.environ[LABELS_ENV] = f"{RUN_LABEL}={run_id}"
    os.environ["REUSE_RUNTIME_HOME"] = str(home)
    client = engine.connect(host)
    try:
        _ensure_base(client)
        yield run_id
    finally:
        _remove_ours(client, run_id)
        client.close()
        if service is not None:
            service.terminate()
            service.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ensure_base(client: object) -> None:
    import docker.errors

    from reuse_runtime.images.debian import make_debian_base

    try:
        client.images.get(debian_base())  # type: ignore[attr-defined]
    except docker.errors.ImageNotFound:
        # Made once per machine (and kept: it is the documented base, not a test artifact).
        make_debian_base(client, debian_base(), progress=lambda line: None)  # type: ignore[arg-type]


def _remove_ours(client: object, run_id: str) -> None:
    """Remove every container, then every image, that carries this run's label."""
    import docker.errors

    label = f"{RUN_LABEL}={run_id}"
    for container in client.containers.list(all=True, filters={"label": label}):  # type: ignore[attr-defined]
        with contextlib.suppress(docker.errors.NotFound):  # auto-removed meanwhile
            container.remove(force=True)
    for image in client.images.list(filters={"label": label}):  # type: ignore[attr-defined]
        # Skipped: an image that is also the base of one this run did not make.
        with contextlib.suppress(Exception):
            client.images.remove(image.id, force=True)  # type: ignore[attr-defined]


@pytest.fixture
def run_label(container_engine: str) -> str:
    return f"{RUN_LABEL}={container_engine}"


@pytest.fixture
def docker_client(container_engine: str) -> Iterator[object]:
    client = engine.connect()
    yield client
    client.close()


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
