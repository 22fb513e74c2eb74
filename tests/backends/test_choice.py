"""Choosing a backend, and where a controller listens for its replicas."""

from __future__ import annotations

import pytest

from reuse_runtime.backends import OpenBackend, backend_name, controller_placement
from reuse_runtime.backends.local import LocalBackend
from reuse_runtime.controller.server import ControllerConfig, ControllerServer
from reuse_runtime.errors import AuthConfigError, PolicyError
from reuse_runtime.security import Security

TOKEN = Security(token="t")


class _ContainerLike(LocalBackend):
    name = "container"


def test_backend_name_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REUSE_RUNTIME_BACKEND", raising=False)
    assert backend_name() == "local"
    monkeypatch.setenv("REUSE_RUNTIME_BACKEND", "Container")
    assert backend_name() == "container"
    assert backend_name("local") == "local"
    with pytest.raises(PolicyError, match="unknown backend 'kube'"):
        backend_name("kube")


def test_local_keeps_the_configured_addresses() -> None:
    opened = OpenBackend(LocalBackend())
    assert controller_placement(opened, "127.0.0.1", None, Security()) == ("127.0.0.1", None)


def test_containers_need_auth_and_a_reachable_address() -> None:
    bridge = OpenBackend(_ContainerLike(), replica_host="10.88.0.1")
    with pytest.raises(AuthConfigError, match="needs auth"):
        controller_placement(bridge, "127.0.0.1", None, Security())
    # Embedded: listen everywhere (with its token), hand out the bridge gateway.
    assert controller_placement(bridge, "127.0.0.1", None, TOKEN, embedded=True) == (
        "0.0.0.0",
        "10.88.0.1",
    )
    with pytest.raises(PolicyError, match="cannot reach a controller on 127"):
        controller_placement(bridge, "127.0.0.1", None, TOKEN)
    assert controller_placement(bridge, "0.0.0.0", None, TOKEN) == ("0.0.0.0", "10.88.0.1")
    assert controller_placement(bridge, "192.0.2.2", None, TOKEN) == ("192.0.2.2", "192.0.2.2")
    assert controller_placement(bridge, "0.0.0.0", "ctl.example:7000", TOKEN) == (
        "0.0.0.0",
        "ctl.example:7000",
    )
    host_network = OpenBackend(_ContainerLike(), replica_host=None)
    assert controller_placement(host_network, "127.0.0.1", None, TOKEN) == ("127.0.0.1", None)


async def test_advertise_address_forms() -> None:
    for advertised, expected in (
        ("10.88.0.1", "10.88.0.1:{port}"),
        ("ctl:7000", "ctl:7000"),
        ("fd00::1", "[fd00::1]:{port}"),
        ("[fd00::1]:7000", "[fd00::1]:7000"),
    ):
        server = ControllerServer(ControllerConfig(advertise_address=advertised))
        await server.start()
        try:
            port = server.address.rsplit(":", 1)[1]
            assert server._replica_address() == expected.format(port=port)
            assert server.local_address == f"127.0.0.1:{port}"
        finally:
            await server.close()


def test_the_controller_command_refuses_containers_without_auth() -> None:
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    env = subprocess_env()
    env.pop("REUSE_RUNTIME_TOKEN", None)
    for args, message in (
        (["--backend", "container"], "the container backend needs auth"),
        (["--backend", "kube", "--token", "t"], "unknown backend 'kube'"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "reuse_runtime", "controller", *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
        assert done.returncode == 2
        assert done.stderr.startswith("reuse-runtime controller: error: ")
        assert message in done.stderr
