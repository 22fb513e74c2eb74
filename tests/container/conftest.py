"""The container suite: a real engine (Podman's service), real images, real containers.

Run it alone with ``python -m pytest -m container``. It uses the engine that
answers the usual way (``$DOCKER_HOST``, else Podman's or Docker's socket, as
after ``reuse-runtime engine start``); with none, it starts ``podman system
service`` on a socket of its own, and stops it at the end. The Debian base
image is made once if it is missing (``reuse-runtime image base``; CI makes it
before the tests).

Every container and image the tests create carries a label unique to this
run, and the run removes them all by that label at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reuse_runtime import engine
from reuse_runtime.backends.container import LABELS_ENV
from reuse_runtime.errors import EngineUnavailableError
from reuse_runtime.images.builder import debian_base

RUN_LABEL = "reuse-runtime-test-run"


@pytest.fixture(scope="session", autouse=True)
def container_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    run_id = uuid.uuid4().hex[:12]
    home = tmp_path_factory.mktemp("home")
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", LABELS_ENV, "REUSE_RUNTIME_HOME")}
    with contextlib.ExitStack() as stack:
        try:
            # $DOCKER_HOST, else a running engine at a usual socket (`reuse-runtime engine
            # start`), else Podman's service on a socket of this run's, stopped at its end.
            host = stack.enter_context(engine.engine_for_run(tmp_path_factory.mktemp("engine")))
        except EngineUnavailableError as exc:
            pytest.fail(f"the container tests need an engine: {exc}")
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
    """Remove every container, then every image, that carries this run's label.

    Fails the run if a container of ours is left: nothing may be left behind.
    """
    import docker.errors

    label = {"label": f"{RUN_LABEL}={run_id}"}
    deadline = time.monotonic() + 60
    while True:
        left = client.containers.list(all=True, filters=label)  # type: ignore[attr-defined]
        if not left or time.monotonic() > deadline:
            break
        for container in left:
            with contextlib.suppress(docker.errors.NotFound):  # auto-removed meanwhile
                container.remove(force=True)
        time.sleep(0.5)
    problems = [f"container {c.short_id} ({c.name}) is left" for c in left]
    for image in client.images.list(filters=label):  # type: ignore[attr-defined]
        try:
            client.images.remove(image.id, force=True)  # type: ignore[attr-defined]
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            problems.append(f"image {image.short_id} could not be removed: {exc}")
    assert not problems, problems


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
