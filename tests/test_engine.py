"""Finding a container engine, and ulimits a host can grant (no engine needed)."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from reuse_runtime import engine
from reuse_runtime.errors import EngineUnavailableError


def test_no_engine_says_how_to_start_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(EngineUnavailableError) as caught:
        engine.connect()
    message = str(caught.value)
    assert "no such socket" in message
    assert "reuse-runtime engine start" in message and "DOCKER_HOST" in message


def test_discovery_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    assert engine.candidate_hosts() == ["tcp://10.0.0.5:2375"]
    monkeypatch.delenv("DOCKER_HOST")
    hosts = engine.candidate_hosts()
    assert hosts[0] == f"unix://{engine.default_podman_socket()}"
    assert "unix:///var/run/docker.sock" in hosts


def test_ulimits_stay_within_this_hosts_hard_limits() -> None:
    limits = {u.name: u for u in engine.container_ulimits()}
    _, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    assert limits["nofile"].soft == limits["nofile"].hard
    if nofile != resource.RLIM_INFINITY:
        assert limits["nofile"].hard <= nofile
    if nproc != resource.RLIM_INFINITY:
        assert limits["nproc"].hard <= nproc
    text = engine.containers_conf_text()
    assert f'"nofile={limits["nofile"].soft}:{limits["nofile"].hard}"' in text
    assert 'cgroup_manager = "cgroupfs"' in text
