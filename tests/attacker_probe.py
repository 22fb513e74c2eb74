"""A local attacker, run as another user (``nobody``) by tests/test_local_attacker.py.

It reads every state file it is told about and calls every RPC of every port it
is given, with no token and with a made-up one, each time trying to run code
that writes a canary file. It prints what happened, as JSON, and never raises.
It needs only grpcio, cloudpickle and the generated protobuf code.

Usage: python attacker_probe.py PLAN.json   (files, dirs, ports, pids, canary)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import grpc

from reuse_runtime.wire.v1 import runtime_pb2 as pb

WRONG = (("authorization", "Bearer guessed-token"),)


def _try_read(path: str) -> str:
    try:
        Path(path).read_bytes()
        return "read"
    except PermissionError:
        return "denied"
    except IsADirectoryError:
        try:
            list(Path(path).iterdir())
            return "listed"
        except PermissionError:
            return "denied"
    except OSError as exc:
        return f"error {type(exc).__name__}"


def _payloads(canary: str) -> dict[str, list[bytes]]:
    def plant() -> None:
        Path(canary).write_text("pwned")

    task = pb.TaskSpec(
        task_id="attack-1", name="attack", pickled=cloudpickle.dumps(plant), args=b""
    )
    hello = pb.WorkerMessage(hello=pb.ReplicaHello(replica_id="attack-replica", capacity=1))
    return {
        "/reuse_runtime.v1.Worker/Execute": [task.SerializeToString()],
        "/reuse_runtime.v1.Worker/Dispatch": [pb.DispatchBatch(tasks=[task]).SerializeToString()],
        "/reuse_runtime.v1.Worker/Cancel": [pb.CancelRequest(task_id="x").SerializeToString()],
        "/reuse_runtime.v1.Worker/GetStatus": [b""],
        "/reuse_runtime.v1.Controller/Connect": [hello.SerializeToString()],
        "/reuse_runtime.v1.Controller/RegisterEnvironment": [
            pb.EnvironmentSpec(
                name="attack", policy=pb.PolicySpec(max_replicas=1, concurrency=1)
            ).SerializeToString()
        ],
        "/reuse_runtime.v1.Controller/Submit": [
            pb.SubmitBatch(
                submissions=[pb.Submission(env_key="attack", task=task)]
            ).SerializeToString()
        ],
        "/reuse_runtime.v1.Controller/Cancel": [pb.CancelRequest(run_id="x").SerializeToString()],
        "/reuse_runtime.v1.Controller/GetStatus": [b""],
        # list_services: field 7 of ServerReflectionRequest
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": [b"\x3a\x00"],
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": [b"\x3a\x00"],
    }


STREAMS = ("/Dispatch", "/Connect", "/Submit", "/ServerReflectionInfo")


def _call(channel: grpc.Channel, method: str, bodies: list[bytes], metadata: Any) -> str:
    try:
        if method.endswith(STREAMS):
            call = channel.stream_stream(method)
            for _ in call(iter(bodies), timeout=10, metadata=metadata):
                pass
        else:
            channel.unary_unary(method)(bodies[0], timeout=10, metadata=metadata)
        return "OK"
    except grpc.RpcError as exc:
        return exc.code().name  # type: ignore[no-any-return, attr-defined]


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    report: dict[str, Any] = {"files": {}, "rpcs": {}, "health": {}}
    for path in plan["files"] + plan["dirs"]:
        report["files"][path] = _try_read(path)
    for pid in plan["pids"]:
        report["files"][f"/proc/{pid}/environ"] = _try_read(f"/proc/{pid}/environ")
    payloads = _payloads(plan["canary"])
    for port in plan["ports"]:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            for method, bodies in payloads.items():
                for label, metadata in (("no token", ()), ("wrong token", WRONG)):
                    report["rpcs"][f"{port} {method} {label}"] = _call(
                        channel, method, bodies, metadata
                    )
            health = channel.unary_unary("/grpc.health.v1.Health/Check")
            try:
                health(b"", timeout=10)
                report["health"][str(port)] = "OK"
            except grpc.RpcError as exc:
                report["health"][str(port)] = exc.code().name  # type: ignore[attr-defined]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
