"""Nobody else gets in: tokens, the bind rule, and mTLS, on real processes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from reuse_runtime.client import WorkerClient
from reuse_runtime.errors import AuthConfigError, AuthError
from reuse_runtime.security import Security, TLSConfig
from tests.controller import tasks as controller_tasks
from tests.helpers import ROOT, running_controller, spawn_worker, submit, subprocess_env, task
from tests.tls import make_certs
from tests.worker import tasks

TOKEN = "s3cret-token-value"


@pytest.mark.parametrize("presented", [None, "wrong-token"])
async def test_missing_or_wrong_token_is_refused_and_no_code_runs(
    tmp_path: Path, presented: str | None
) -> None:
    canary = tmp_path / "canary"
    async with spawn_worker(REUSE_RUNTIME_TOKEN=TOKEN) as worker:
        async with WorkerClient(worker.address, Security(token=presented)) as intruder:
            why = "none was sent" if presented is None else "it does not match"
            refused = re.escape(f"the worker at {worker.address} refused the token ({why}): set ")
            with pytest.raises(AuthError, match=refused):
                await intruder.execute(task(tasks.touch, str(canary)))
            with pytest.raises(AuthError, match=refused):
                await intruder.run(task(tasks.touch, str(canary)))
            with pytest.raises(AuthError, match=refused):
                await intruder.status()
        await asyncio.sleep(0.3)
        assert not canary.exists()
        # The right token runs the same task: the canary works.
        async with WorkerClient(worker.address, Security(token=TOKEN)) as friend:
            assert (await friend.run(task(tasks.touch, str(canary)))).unwrap() == str(canary)
        assert canary.read_text() == "ran"
    assert not any(TOKEN in line for line in worker.stderr_lines)


@pytest.mark.parametrize("command", ["worker", "controller"])
def test_non_loopback_bind_without_auth_is_refused(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", command, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in done.stderr
    assert "--token" in done.stderr and "mTLS" in done.stderr


def test_bind_rule() -> None:
    Security().check_bind("127.0.0.1")
    Security().check_bind("::1")
    Security().check_bind("localhost")
    Security(token="t").check_bind("0.0.0.0")
    with pytest.raises(AuthConfigError):
        Security().check_bind("0.0.0.0")
    with pytest.raises(AuthConfigError):
        Security().check_bind("10.1.2.3")
    with pytest.raises(AuthConfigError, match="both a certificate and a key"):
        Security.from_env(cert="/x.pem")
    assert "s3cret" not in repr(Security(token="s3cret"))


async def test_worker_with_token_binds_everywhere_and_serves_the_token_holder() -> None:
    async with spawn_worker("--host", "0.0.0.0", REUSE_RUNTIME_TOKEN=TOKEN) as worker:
        port = worker.address.rsplit(":", 1)[1]
        async with WorkerClient(f"127.0.0.1:{port}", Security(token=TOKEN)) as client:
            assert (await client.run(task(tasks.count))).unwrap() == 1


async def test_controller_and_replicas_authenticate_both_ways_with_a_token() -> None:
    async with running_controller(client_security=Security(), security=Security(token=TOKEN)) as (
        server,
        client,
    ):
        # The fixture's client holds no token: refused.
        with pytest.raises(AuthError, match=r"controller at \S+ refused the token"):
            await submit(client, controller_tasks.child, 1)
        with pytest.raises(AuthError, match="refused the token"):
            await client.status()
        from reuse_runtime.client import ControllerClient

        async with ControllerClient(server.address, Security(token=TOKEN)) as friend:
            # Replicas got the token from the controller and attached with it.
            assert (await (await submit(friend, controller_tasks.parent, 1))).unwrap() == 20


async def test_mtls_requires_a_client_certificate(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    other = make_certs(tmp_path, prefix="other-")
    flags = ("--tls-cert", certs.cert, "--tls-key", certs.key, "--tls-ca", certs.ca)
    async with spawn_worker(*flags) as worker:
        port = worker.address.rsplit(":", 1)[1]
        address = f"127.0.0.1:{port}"
        trusted = Security(tls=TLSConfig.from_files(certs.cert, certs.key, certs.ca))
        async with WorkerClient(address, trusted) as client:
            assert (await client.run(task(tasks.count))).unwrap() == 1
        # A certificate from another CA is refused.
        stranger = Security(tls=TLSConfig.from_files(other.cert, other.key, certs.ca))
        async with WorkerClient(address, stranger) as client:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client.execute(task(tasks.count), timeout=5)
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
        # Plain text is refused too.
        async with WorkerClient(address) as client:
            with pytest.raises(grpc.aio.AioRpcError):
                await client.execute(task(tasks.count), timeout=5)


async def test_controller_and_replicas_over_mtls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    security = Security(tls=TLSConfig.from_files(certs.cert, certs.key, certs.ca))
    async with running_controller(security=security) as (_, client):
        # The client, the controller and its replicas all present certificates.
        assert (await (await submit(client, controller_tasks.parent, 2))).unwrap() == 30


SDK_DRIVER = """
import reuse_runtime as flyte
from tests.controller import tasks
flyte.init()  # $REUSE_RUNTIME_ENDPOINT
try:
    flyte.run(tasks.child, 1).outputs()
except flyte.ReuseRuntimeError as e:
    print(type(e).__name__, e)
"""


def test_status_without_the_token_says_so_in_one_line() -> None:
    controller = subprocess.Popen(
        [sys.executable, "-m", "reuse_runtime", "controller", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(REUSE_RUNTIME_TOKEN=TOKEN),
    )
    try:
        assert controller.stdout is not None
        address = controller.stdout.readline().split()[-1]
        for token in ("", "wrong"):
            done = subprocess.run(
                [sys.executable, "-m", "reuse_runtime", "status", "--endpoint", address],
                capture_output=True,
                text=True,
                timeout=30,
                env=subprocess_env(REUSE_RUNTIME_TOKEN=token),
            )
            assert done.returncode == 2
            assert done.stderr.splitlines() == [
                f"reuse-runtime status: error: the controller at {address} refused the token "
                f"({'it does not match' if token else 'none was sent'}): set REUSE_RUNTIME_TOKEN "
                f"(or --token, or token in the config file) to that server's token"
            ]
        # The SDK raises the same error from the run.
        driver = subprocess.run(
            [sys.executable, "-c", SDK_DRIVER],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=subprocess_env(REUSE_RUNTIME_TOKEN="wrong", REUSE_RUNTIME_ENDPOINT=address),
        )
        assert driver.returncode == 0, driver.stderr
        assert driver.stdout.strip() == (
            f"AuthError the controller at {address} refused the token (it does not match): set "
            f"REUSE_RUNTIME_TOKEN (or --token, or token in the config file) to that server's token"
        )
    finally:
        controller.terminate()
        controller.wait(30)
        if controller.stdout is not None:
            controller.stdout.close()
