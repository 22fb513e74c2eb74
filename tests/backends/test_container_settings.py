"""The container backend's settings for a replica, without an engine: mounts, limits, exits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reuse_runtime.backends.base import ReplicaLaunch
from reuse_runtime.backends.container import (
    ContainerBackend,
    ContainerConfig,
    ContainerReplica,
    _exit_status,
    code_paths,
    parse_labels,
)
from reuse_runtime.backends.files import remote_engine
from reuse_runtime.errors import PolicyError
from reuse_runtime.model import EnvironmentSpec, PoolPolicy
from reuse_runtime.resources import Resources
from reuse_runtime.security import Security

POLICY = PoolPolicy(min_replicas=1, max_replicas=2, concurrency=4, scaledown_ttl=1, idle_ttl=1)


def test_code_paths_mount_the_callers_own_directories_only(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    stdlib = Path(os.__file__).parent
    mounts, path = code_paths(
        str(project), (str(project / "src"), str(site), str(stdlib), "relative", "/usr/lib")
    )
    assert mounts == [str(project)]
    assert path == [str(project), str(project / "src")]
    assert code_paths("/", ()) == ([], [])


def test_labels_from_the_environment() -> None:
    assert parse_labels("a=1, b=two") == {"a": "1", "b": "two"}
    assert parse_labels("") == {}
    with pytest.raises(PolicyError, match="key=value"):
        parse_labels("oops")


def test_create_options_map_resources_env_and_security(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REUSE_RUNTIME_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REUSE_RUNTIME_MIN_TTL_SECONDS", "0")
    backend = ContainerBackend(ContainerConfig(labels=(("team", "ml"),)), log_dir=tmp_path / "r")
    spec = EnvironmentSpec(
        name="env",
        policy=POLICY,
        resources=Resources(cpu=(0.5, 2), memory=("100Mi", "200Mi"), shm="auto").to_wire(),
        working_dir=str(tmp_path),
        python_path=(str(tmp_path),),
        env_vars=(("A", "1"),),
        stop_grace=25,
    )
    launch = ReplicaLaunch("env-1-abcd", spec, "10.88.0.1:5000", Security(token="secret"), 25)
    options = backend._create_options(launch, Resources.from_wire(spec.resources), tmp_path / "rec")
    host = options["host_config"]
    assert host["mem_limit"] == host["memswap_limit"] == host["shm_size"] == 200 * 2**20
    assert host["mem_reservation"] == 100 * 2**20
    assert host["nano_cpus"] == 2 * 10**9 and host["cpu_shares"] == 512
    assert host["auto_remove"] is True
    assert {u.name for u in host["ulimits"]} == {"nofile", "nproc"}
    env = options["environment"]
    assert env["REUSE_RUNTIME_TOKEN"] == "secret" and env["A"] == "1"
    assert env["REUSE_RUNTIME_MIN_TTL_SECONDS"] == "0"
    assert env["PYTHONPATH"] == str(tmp_path)
    assert "secret" not in json.dumps(options["command"])  # never on the command line
    assert options["command"][options["command"].index("--controller") + 1] == "10.88.0.1:5000"
    assert options["stop_timeout"] == 30  # the drain's grace, for a `podman stop` by hand too
    assert options["labels"]["team"] == "ml"
    assert options["labels"]["io.reuse-runtime.replica"] == "env-1-abcd"
    assert options["working_dir"] == str(tmp_path)
    targets = {m["Target"]: m for m in host["mounts"]}
    assert targets[str(tmp_path)]["ReadOnly"] is True
    assert str(tmp_path / "home" / "store") in targets
    gpu = Resources(gpu=1)
    with pytest.raises(PolicyError, match="does not provide GPUs"):
        backend._create_options(launch, gpu, tmp_path / "rec")


def test_a_remote_engine_is_told_apart_and_mounts_nothing_of_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not remote_engine("")
    assert not remote_engine("unix:///run/podman/podman.sock")
    assert not remote_engine("tcp://127.0.0.1:2375") and not remote_engine("tcp://[::1]:2375")
    assert remote_engine("tcp://10.0.0.5:2376") and remote_engine("ssh://me@build-host")
    assert remote_engine("unix:///run/podman.sock", "1")  # forced (the tests do)
    assert not remote_engine("tcp://10.0.0.5:2376", "0")
    with pytest.raises(PolicyError, match="must be 1 or 0"):
        remote_engine("", "maybe")
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@build-host")
    monkeypatch.delenv("REUSE_RUNTIME_CONTAINER_REMOTE", raising=False)
    assert ContainerConfig.from_env().remote
    monkeypatch.setenv("REUSE_RUNTIME_HOME", str(tmp_path / "home"))
    backend = ContainerBackend(ContainerConfig(remote=True), log_dir=tmp_path / "r")
    assert not backend.shares_files
    spec = EnvironmentSpec(
        name="env",
        policy=POLICY,
        working_dir=str(tmp_path),
        python_path=(str(tmp_path),),
        code_bundle="a" * 64,
    )
    launch = ReplicaLaunch(
        "env-1-abcd", spec, "10.88.0.1:5000", Security(token="secret"), fetch_code=True
    )
    options = backend._create_options(launch, Resources(), tmp_path / "rec")
    assert options["host_config"]["mounts"] == []  # no code, no store, no record folder
    env = options["environment"]
    assert env["REUSE_RUNTIME_CODE_DIR"] == "/tmp/reuse-runtime-code"
    assert "PYTHONPATH" not in env and "REUSE_RUNTIME_STORE" not in env
    assert "working_dir" not in options
    # An engine on this machine told to fetch anyway mounts the store, not the code.
    local = ContainerBackend(ContainerConfig(), log_dir=tmp_path / "r")
    options = local._create_options(launch, Resources(), tmp_path / "rec")
    targets = sorted(m["Target"] for m in options["host_config"]["mounts"])
    assert targets == sorted([str(tmp_path / "home" / "store"), "/run/reuse-runtime"])


def _replica(
    tmp_path: Path, record: dict[str, object] | None, killed: bool = False
) -> ContainerReplica:
    if record is not None:
        (tmp_path / "exit.json").write_text(json.dumps(record))
    return ContainerReplica("r", "c" * 64, "n", tmp_path, "200Mi", None, killed=killed)  # type: ignore[arg-type]


def test_exit_status_prefers_the_init_record(tmp_path: Path) -> None:
    oom = _exit_status(_replica(tmp_path, {"code": 137, "signal": 9, "oom": True}), 137)
    assert oom.oom and "out of memory" in oom.describe() and "200Mi" in oom.describe()
    clean = _exit_status(_replica(tmp_path, {"code": 0, "signal": None, "oom": False}), 0)
    assert clean.code == 0


def test_exit_status_from_the_engine_alone(tmp_path: Path) -> None:
    killed = _exit_status(_replica(tmp_path, None), 137)
    assert killed.signal == 9 and "SIGKILL from outside" in killed.describe()
    ours = _exit_status(_replica(tmp_path, None, killed=True), 137)
    assert ours.by_runtime
    assert _exit_status(_replica(tmp_path, None), 3).code == 3
    assert "removed" in _exit_status(_replica(tmp_path, None), None).describe()
