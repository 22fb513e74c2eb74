"""Fuzz every RPC of a real worker and a real controller with hypothesis.

A case is one call on a raw ``grpc.aio`` channel. Its request messages are
arbitrary bytes, structurally valid messages drawn from strategies over the
protobuf fields, or valid messages mangled (truncated, spliced, overwritten).
Every call must end within its deadline with OK or an expected status: never
INTERNAL or UNKNOWN, never a hang. Beyond the status:

* a request that does not parse gets INVALID_ARGUMENT;
* a stream whose requests all parse ends OK, with exactly one result per task sent;
* no result reports an INTERNAL error (by definition, a bug in reuse-runtime);
* the controller's one warm replica is never replaced: no fuzz task can start,
  so nothing a fuzz case does may cost a healthy replica.

At the end both servers still serve a normal task, the worker process has not
exited and runs nothing, and the controller tracks no task.

One worker subprocess, one in-process controller and one channel to each serve
every case. The servers live on the test's event loop; hypothesis drives the
cases from a thread, each call sent onto the loop with
``asyncio.run_coroutine_threadsafe``.

Safety: the worker imports and unpickles what it is sent, so no generated
request may name code that runs. Function references name modules
``fuzz_<identifier>`` (the test checks that none exists); by-value functions
start with a byte that is no pickle opcode; arguments do too, or are pickles of
plain data; code bundles start with ``)`` so they never compile. Raw bytes that
happen to parse into anything else are skipped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import operator
import pickle
import pickletools
import pkgutil
import string
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from reuse_runtime.client import WorkerClient, call_metadata
from reuse_runtime.model import ENVIRONMENT_NAME, Submission
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from tests.fuzz import tasks as fuzz_tasks
from tests.helpers import ROOT, running_controller, spawn_worker, task

FAST_CASES = 200
SLOW_CASES = 10_000
#: A call still running after this many seconds counts as a hang.
CALL_DEADLINE = 20.0
#: No pickle opcode: ``pickle.loads`` fails on the first byte.
NOT_A_PICKLE = b"\xff"
#: An unmatched ")" first: ``compile()`` fails whatever follows.
NOT_PYTHON = b")"
FUZZ_MODULE_PREFIX = "fuzz_"

Code = grpc.StatusCode
EXPECTED_CODES = frozenset(
    {
        Code.OK,
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.UNAUTHENTICATED,
        Code.RESOURCE_EXHAUSTED,
        Code.FAILED_PRECONDITION,
        Code.UNAVAILABLE,  # only while the server is still alive: checked per case
    }
)
#: What grpc's aio client reports when the server ends a stream while the client is
#: still writing: the write fails, and the client replaces the server's status with
#: this one (grpc/aio/_call.py, ``_write``). The server's own INTERNAL would say
#: "reuse-runtime internal error: ...".
CLIENT_LOST_STATUS = "Internal error from Core"
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
]


# ---------------------------------------------------------------- strategies

texts = st.text(max_size=24)
# A few fixed ids make duplicates (within a batch, across streams) common.
ids = st.one_of(
    st.sampled_from(["", "a", "b"]), st.text(max_size=6), st.uuids().map(lambda u: u.hex)
)
doubles = st.floats(width=64)  # NaN, infinities and negative zero included
int32s = st.one_of(st.integers(-2, 8), st.integers(-(2**31), 2**31 - 1))
int64s = st.one_of(st.integers(-2, 8), st.integers(-(2**63), 2**63 - 1))
# Built from alphabets rather than st.from_regex, which costs several times more per draw.
identifiers = st.builds(
    operator.add,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(alphabet=string.ascii_letters + string.digits + "_", max_size=15),
)
fuzz_modules = st.lists(identifiers, min_size=1, max_size=3).map(
    lambda parts: FUZZ_MODULE_PREFIX + ".".join(parts)
)
qualnames = st.one_of(
    identifiers,
    texts,
    st.lists(identifiers, min_size=2, max_size=3).map(".".join),
    st.just("outer.<locals>.inner"),
)
function_refs = st.builds(
    pb.FunctionRef,
    module=fuzz_modules,
    qualname=qualnames,
    code_version=st.one_of(st.just(""), texts),
)
never_unpickles = st.binary(max_size=48).map(lambda data: NOT_A_PICKLE + data)
plain_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
task_args = st.one_of(
    st.just(b""),
    never_unpickles,
    # Well-formed (args, kwargs), and other shapes, of plain data only.
    st.tuples(
        st.lists(plain_data, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), plain_data, max_size=2),
    ).map(pickle.dumps),
    plain_data.map(pickle.dumps),
)
never_compiles = st.binary(max_size=48).map(lambda data: NOT_PYTHON + data)
digests = st.one_of(texts, st.binary(min_size=32, max_size=32).map(bytes.hex))


def code_bundles(module: str | None = None) -> st.SearchStrategy[pb.CodeBundle]:
    modules = fuzz_modules if module is None else st.one_of(st.just(module), fuzz_modules)
    return st.builds(
        pb.CodeBundle, module=modules, digest=digests, filename=texts, source=never_compiles
    )


@st.composite
def task_specs(draw: st.DrawFn) -> pb.TaskSpec:
    spec = pb.TaskSpec(
        task_id=draw(ids),
        name=draw(texts),
        args=draw(task_args),
        timeout_seconds=draw(doubles),
        run_id=draw(ids),
        parent_task_id=draw(ids),
    )
    function = draw(st.sampled_from(["ref", "pickled", "none"]))
    if function == "ref":
        spec.ref.CopyFrom(draw(function_refs))
    elif function == "pickled":
        spec.pickled = draw(never_unpickles)
    if draw(st.booleans()):
        spec.bundle.CopyFrom(draw(code_bundles(spec.ref.module or None)))
    return spec


dispatch_batches = st.builds(
    pb.DispatchBatch,
    tasks=st.lists(task_specs(), max_size=3),
    cancel=st.lists(ids, max_size=3),
)
cancel_requests = st.builds(pb.CancelRequest, task_id=ids, run_id=ids)
status_requests = st.just(pb.StatusRequest())
progress_requests = st.builds(pb.RunProgressRequest, run_id=ids)
policies = st.builds(
    pb.PolicySpec,
    min_replicas=int32s,
    max_replicas=int32s,
    concurrency=int32s,
    scaledown_ttl_seconds=doubles,
    idle_ttl_seconds=doubles,
    max_tasks=int64s,
    max_rss_bytes=int64s,
    max_lifetime_seconds=doubles,
    reusable=st.booleans(),
)
# Policies the controller accepts, so registration gets past validation too.
valid_policies = st.builds(
    pb.PolicySpec,
    min_replicas=st.integers(0, 2),
    max_replicas=st.integers(1, 3),
    concurrency=st.integers(1, 8),
    scaledown_ttl_seconds=st.floats(0, 1e6),
    idle_ttl_seconds=st.floats(0, 1e6),
    max_tasks=st.integers(0, 10),
    max_rss_bytes=st.integers(0, 2**40),
    max_lifetime_seconds=st.floats(0, 1e6),
    reusable=st.booleans(),
)
valid_environment_names = st.builds(
    operator.add,
    st.sampled_from(string.ascii_letters + string.digits),
    st.text(alphabet=string.ascii_letters + string.digits + "_.-", max_size=62),
).filter(ENVIRONMENT_NAME.fullmatch)
environment_names = st.one_of(valid_environment_names, texts)


@st.composite
def environment_specs(draw: st.DrawFn) -> pb.EnvironmentSpec:
    spec = pb.EnvironmentSpec(
        name=draw(environment_names),
        image=draw(texts),
        resources=draw(texts),
        code_version=draw(texts),
        working_dir=draw(texts),
        python_path=draw(st.lists(texts, max_size=2)),
        env_vars=draw(st.dictionaries(texts, texts, max_size=2)),
        stop_grace_seconds=draw(st.one_of(doubles, st.floats(0, 100))),
    )
    policy = draw(st.sampled_from(["none", "any", "valid"]))
    if policy != "none":
        spec.policy.CopyFrom(draw(policies if policy == "any" else valid_policies))
    if draw(st.booleans()):
        spec.on_start.CopyFrom(draw(function_refs))
    if draw(st.booleans()):
        spec.on_stop.CopyFrom(draw(function_refs))
    if draw(st.booleans()):
        spec.hooks_bundle.CopyFrom(draw(code_bundles()))
    return spec


replica_reports = st.builds(
    pb.ReplicaReport,
    replica_id=texts,
    active=int32s,
    capacity=int32s,
    waiting=int32s,
    idle_since=doubles,
    idle_seconds=doubles,
    completed=int64s,
    failed=int64s,
    rss_bytes=int64s,
    loop_lag_seconds=doubles,
    draining=st.booleans(),
    uptime_seconds=doubles,
    loop_blocked_by=texts,
    sent_at=doubles,
    recycle_reason=texts,
)
remote_errors = st.builds(
    pb.RemoteError,
    kind=st.integers(-1, 12),
    type=texts,
    message=texts,
    traceback=texts,
    pickled=never_unpickles,
)
task_results = st.builds(
    pb.TaskResult,
    task_id=ids,
    state=st.integers(-1, 6),
    value=never_unpickles,
    error=remote_errors,
    replica_id=texts,
    duration_seconds=doubles,
    attempts=int32s,
)
log_lines = st.builds(
    pb.LogLine, task_id=ids, task_name=texts, run_id=ids, stream=texts, text=texts
)
worker_messages = st.one_of(
    st.builds(
        lambda hello: pb.WorkerMessage(hello=hello),
        st.builds(pb.ReplicaHello, replica_id=texts, capacity=int32s, address=texts, pid=int32s),
    ),
    st.builds(lambda report: pb.WorkerMessage(report=report), replica_reports),
    st.builds(
        lambda results, logs: pb.WorkerMessage(results=pb.ResultBatch(results=results, logs=logs)),
        st.lists(task_results, max_size=2),
        st.lists(log_lines, max_size=2),
    ),
    st.just(pb.WorkerMessage()),
)


def submit_batches(env_key: str) -> st.SearchStrategy[pb.SubmitBatch]:
    submissions = st.builds(
        pb.Submission,
        # The warm environment (the task reaches a replica) or an unknown one.
        env_key=st.one_of(st.just(env_key), texts),
        task=task_specs(),
        retries=int32s,
        stream_logs=st.booleans(),
    )
    held = st.builds(pb.HeldTasks, run_id=ids, count=int64s)
    return st.builds(
        pb.SubmitBatch,
        submissions=st.lists(submissions, max_size=3),
        held=st.lists(held, max_size=2),
    )


def _mangle(data: bytes, at: int, junk: bytes, how: str) -> bytes:
    cut = at % (len(data) + 1)
    if how == "truncate":
        return data[:cut]
    if how == "insert":
        return data[:cut] + junk + data[cut:]
    return data[:cut] + junk + data[cut + len(junk) :]


def request_bodies(messages: st.SearchStrategy[Message]) -> st.SearchStrategy[bytes]:
    """Serialized valid messages, arbitrary bytes, and valid messages mangled."""
    valid = messages.map(lambda message: message.SerializeToString())
    mangled = st.builds(
        _mangle,
        valid,
        st.integers(0, 1 << 16),
        st.binary(min_size=1, max_size=4),
        st.sampled_from(["truncate", "insert", "overwrite"]),
    )
    return st.one_of(valid, st.binary(max_size=128), mangled)


# ---------------------------------------------------------------- safety


def _runnable_task(spec: pb.TaskSpec) -> bool:
    """Whether a worker could run any code this task names (it must never)."""
    module = spec.ref.module if spec.WhichOneof("function") == "ref" else ""
    return (
        bool(module and not module.startswith(FUZZ_MODULE_PREFIX))
        or bool(spec.pickled and not spec.pickled.startswith(NOT_A_PICKLE))
        or not _is_safe_pickle(spec.args)
        or bool(spec.bundle.source and not spec.bundle.source.startswith(NOT_PYTHON))
    )


def runnable(message: Message) -> bool:
    """Whether a parsed request names code that could run on a replica."""
    if isinstance(message, pb.TaskSpec):
        return _runnable_task(message)
    if isinstance(message, pb.DispatchBatch):
        return any(_runnable_task(t) for t in message.tasks)
    if isinstance(message, pb.SubmitBatch):
        return any(_runnable_task(s.task) for s in message.submissions)
    if isinstance(message, pb.EnvironmentSpec):
        hooks = (message.on_start.module, message.on_stop.module)
        source = message.hooks_bundle.source
        return any(m and not m.startswith(FUZZ_MODULE_PREFIX) for m in hooks) or bool(
            source and not source.startswith(NOT_PYTHON)
        )
    return False


#: Opcodes that reach a global (and so can run code) when unpickled.
UNSAFE_OPCODES = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
    | {"EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"}
)


def _is_safe_pickle(data: bytes) -> bool:
    return not data or data.startswith(NOT_A_PICKLE) or _plain_pickle(data)


def _plain_pickle(data: bytes) -> bool:
    """A pickle of builtin data only: it names no global, so loading it runs no code."""
    try:
        ops = {op.name for op, _, _ in pickletools.genops(data)}
    except Exception:
        return False
    return not ops & UNSAFE_OPCODES


# ---------------------------------------------------------------- the RPCs


@dataclass(frozen=True, repr=False)
class Rpc:
    service: str  # "Worker" or "Controller"
    name: str
    request: type[Message]
    streaming: bool
    messages: st.SearchStrategy[Any]

    def __repr__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def path(self) -> str:
        return f"/reuse_runtime.v1.{self.service}/{self.name}"

    def cases(self) -> st.SearchStrategy[tuple[bytes, ...]]:
        bodies = request_bodies(self.messages)
        if not self.streaming:
            return bodies.map(lambda body: (body,))
        return st.lists(bodies, max_size=3).map(tuple)


def every_rpc(env_key: str) -> list[Rpc]:
    return [
        Rpc("Worker", "Execute", pb.TaskSpec, False, task_specs()),
        Rpc("Worker", "Dispatch", pb.DispatchBatch, True, dispatch_batches),
        Rpc("Worker", "Cancel", pb.CancelRequest, False, cancel_requests),
        Rpc("Worker", "GetStatus", pb.StatusRequest, False, status_requests),
        Rpc("Controller", "Connect", pb.WorkerMessage, True, worker_messages),
        Rpc("Controller", "RegisterEnvironment", pb.EnvironmentSpec, False, environment_specs()),
        Rpc("Controller", "Submit", pb.SubmitBatch, True, submit_batches(env_key)),
        Rpc("Controller", "Cancel", pb.CancelRequest, False, cancel_requests),
        Rpc("Controller", "GetStatus", pb.StatusRequest, False, status_requests),
        Rpc("Controller", "GetRunProgress", pb.RunProgressRequest, False, progress_requests),
        Rpc("Controller", "Report", pb.ReplicaReport, False, replica_reports),
    ]


def _parse(request: type[Message], body: bytes) -> Message | None:
    try:
        return request.FromString(body)
    except DecodeError:
        return None


def _task_ids(message: Message) -> list[str]:
    if isinstance(message, pb.DispatchBatch):
        return [t.task_id for t in message.tasks]
    if isinstance(message, pb.SubmitBatch):
        return [s.task.task_id for s in message.submissions]
    return []


def _results(rpc: Rpc, replies: Sequence[bytes]) -> list[pb.TaskResult]:
    if rpc.label == "Worker.Execute":
        return [pb.TaskResult.FromString(r) for r in replies]
    if rpc.label == "Worker.Dispatch":
        return [r for reply in replies for r in pb.ResultBatch.FromString(reply).results]
    if rpc.label == "Controller.Submit":
        return [r for reply in replies for r in pb.SubmitEvents.FromString(reply).results]
    return []


# ---------------------------------------------------------------- the harness


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str
    replies: list[bytes]
    server_alive: bool
    # The warm environment's replicas, before and after the call: id -> retire reason.
    replicas_before: dict[str, str]
    replicas_after: dict[str, str]


class Fuzzer:
    """Sends cases from hypothesis' thread onto the servers' loop, and judges them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        worker: Any,
        controller: Any,
        env_key: str,
        channels: dict[str, grpc.aio.Channel],
        metadata: dict[str, tuple[tuple[str, str], ...]],
    ) -> None:
        self._loop = loop
        self._worker = worker
        self._controller = controller
        self._env_key = env_key
        self._channels = channels
        self._metadata = metadata
        self.counts: Counter[str] = Counter()
        self.lost_statuses: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}

    # ------------------------------------------------------------ on the loop

    def _target_replicas(self) -> dict[str, str]:
        pool = self._controller.service.pools[self._env_key]
        return {r.replica_id: r.retire_reason for r in pool.replicas.values()}

    async def _call(self, rpc: Rpc, bodies: tuple[bytes, ...]) -> Outcome:
        channel = self._channels[rpc.service]
        metadata = self._metadata[rpc.service]
        before = self._target_replicas()
        replies: list[bytes] = []
        try:
            if rpc.streaming:

                async def requests() -> AsyncIterator[bytes]:
                    for body in bodies:
                        yield body

                call = channel.stream_stream(rpc.path)(
                    requests(), timeout=CALL_DEADLINE, metadata=metadata
                )
                async for reply in call:
                    replies.append(reply)
            else:
                replies.append(
                    await channel.unary_unary(rpc.path)(
                        bodies[0], timeout=CALL_DEADLINE, metadata=metadata
                    )
                )
            code, details = Code.OK, ""
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
        checked = code in (Code.UNAVAILABLE, Code.INTERNAL)
        alive = await self._alive(rpc.service) if checked else True
        return Outcome(code, details, replies, alive, before, self._target_replicas())

    async def _alive(self, service: str) -> bool:
        if service == "Worker" and self._worker.process.returncode is not None:
            return False
        status = self._channels[service].unary_unary(f"/reuse_runtime.v1.{service}/GetStatus")
        try:
            await status(b"", timeout=10, metadata=self._metadata[service])
        except grpc.aio.AioRpcError:
            return False
        return True

    # ------------------------------------------------------------ in hypothesis' thread

    def check(self, rpc: Rpc, bodies: tuple[bytes, ...]) -> None:
        parsed = [_parse(rpc.request, body) for body in bodies]
        assume(not any(m is not None and runnable(m) for m in parsed))
        future = asyncio.run_coroutine_threadsafe(self._call(rpc, bodies), self._loop)
        try:
            outcome = future.result(CALL_DEADLINE + 15)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise AssertionError(
                f"{rpc.label} did not finish in {CALL_DEADLINE + 15:g} s"
            ) from None
        self.counts[rpc.label] += 1
        if outcome.code is Code.INTERNAL and outcome.details == CLIENT_LOST_STATUS:
            self.lost_statuses[rpc.label] += 1
        problem = judge(rpc, parsed, outcome)
        assert problem is None, problem

    def fuzz(self, rpcs: Sequence[Rpc], cases: int, derandomize: bool) -> dict[str, str]:
        """Run ``cases`` examples of each RPC; returns the failures, by RPC."""
        failures: dict[str, str] = {}
        for rpc in rpcs:

            @settings(
                max_examples=cases,
                deadline=None,
                database=None,
                derandomize=derandomize,
                phases=(Phase.generate, Phase.shrink),
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            @given(bodies=rpc.cases())
            def fuzz_one(rpc: Rpc, bodies: tuple[bytes, ...]) -> None:
                self.check(rpc, bodies)

            started = time.perf_counter()
            try:
                fuzz_one(rpc)
            except Exception as exc:
                notes = "\n".join(getattr(exc, "__notes__", []))
                failures[rpc.label] = f"{type(exc).__name__}: {exc}\n{notes}"[:6000]
            self.seconds[rpc.label] = time.perf_counter() - started
        return failures

    def summary(self, rpcs: Sequence[Rpc]) -> str:
        lines = [
            f"  {rpc.label:32} {self.counts[rpc.label]:>7} cases "
            f"in {self.seconds.get(rpc.label, 0.0):6.1f} s"
            + (
                f" ({self.lost_statuses[rpc.label]} statuses lost by the client)"
                if self.lost_statuses[rpc.label]
                else ""
            )
            for rpc in rpcs
        ]
        total = sum(self.seconds.values())
        return "fuzz cases per RPC:\n" + "\n".join(lines) + f"\n  total {total:.1f} s"


def judge(rpc: Rpc, parsed: Sequence[Message | None], outcome: Outcome) -> str | None:
    """What is wrong with one call's outcome, or None."""
    code, where = outcome.code, f"{rpc.label}: {outcome.code.name}: {outcome.details!r}"
    if code is Code.DEADLINE_EXCEEDED:
        return f"{rpc.label} hung: no answer within {CALL_DEADLINE:g} s"
    if code is Code.INTERNAL and outcome.details == CLIENT_LOST_STATUS and rpc.streaming:
        # The client lost the server's answer to a stream the server ended early.
        if not outcome.server_alive:
            return f"the server died: {where}"
        if not any(m is None for m in parsed) and rpc.name != "Connect":
            return f"every request parsed, yet the stream failed: {where}"
        return None
    if code not in EXPECTED_CODES:
        return f"unexpected status from {where}"
    if code is Code.UNAVAILABLE and not outcome.server_alive:
        return f"the server died: {where}"
    if any(message is None for message in parsed) and code is not Code.INVALID_ARGUMENT:
        return f"a request that does not parse must get INVALID_ARGUMENT, got {where}"
    try:
        results = _results(rpc, outcome.replies)
    except DecodeError as exc:
        return f"{rpc.label} answered bytes that do not parse: {exc}"
    internal = [r for r in results if r.error.kind == pb.ERROR_KIND_INTERNAL]
    if internal:
        return f"{rpc.label} reported an internal error: {internal[0]}"
    if rpc.streaming and rpc.name != "Connect" and all(m is not None for m in parsed):
        if code is not Code.OK:
            return f"every request parsed, yet the stream failed: {where}"
        sent = Counter(task_id for m in parsed if m is not None for task_id in _task_ids(m))
        got = Counter(r.task_id for r in results)
        if sent != got:
            return (
                f"{rpc.label} must return exactly one result per task sent: "
                f"sent {dict(sent)}, got {dict(got)}"
            )
    replaced = {
        replica: outcome.replicas_after.get(replica, "it is gone")
        for replica, reason in outcome.replicas_before.items()
        if not reason and outcome.replicas_after.get(replica, "it is gone")
    }
    if replaced:
        return f"a {rpc.label} case cost the warm environment its replica(s): {replaced}"
    return None


# ---------------------------------------------------------------- the tests


def _no_fuzz_module_exists() -> None:
    found = [
        m.name
        for m in pkgutil.iter_modules([*sys.path, str(ROOT)])
        if m.name.startswith(FUZZ_MODULE_PREFIX)
    ]
    assert not found, f"fuzz cases must name no importable module, but {found} exist"


async def fuzz_every_rpc(cases: int, *, derandomize: bool) -> None:
    _no_fuzz_module_exists()
    loop = asyncio.get_running_loop()
    async with spawn_worker() as worker, running_controller() as (controller, client):
        key = await client.register(fuzz_tasks.echo.environment_spec())
        warm = fuzz_tasks.echo.task_spec(("warm",), {}, run_id="fuzz-warm-up")
        assert (await asyncio.wait_for(client.submit(Submission(key, warm)), 60)).unwrap() == "warm"

        rpcs = every_rpc(key)
        async with (
            grpc.aio.insecure_channel(worker.address, options=CHANNEL_OPTIONS) as to_worker,
            grpc.aio.insecure_channel(controller.address, options=CHANNEL_OPTIONS) as to_controller,
        ):
            fuzzer = Fuzzer(
                loop,
                worker,
                controller,
                key,
                {"Worker": to_worker, "Controller": to_controller},
                {"Worker": worker.metadata, "Controller": call_metadata(controller.security)},
            )
            failures = await asyncio.to_thread(fuzzer.fuzz, rpcs, cases, derandomize)
        summary = fuzzer.summary(rpcs)
        registered = len(controller.service.pools)
        summary += f"\n  environments registered on the controller: {registered}"
        print(f"\n{summary}", flush=True)

        assert not failures, (
            summary + "\n\n" + "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
        )
        short = {label: n for label, n in fuzzer.counts.items() if n < cases}
        assert not short and len(fuzzer.counts) == len(rpcs), f"too few cases: {short}\n{summary}"

        # Both servers still serve a normal task, and nothing is left running.
        assert worker.process.returncode is None, "".join(worker.stderr_lines)
        async with WorkerClient(worker.address) as direct:
            result = await asyncio.wait_for(direct.run(task(fuzz_tasks.echo, "worker ok")), 30)
            assert result.unwrap() == "worker ok"
            assert (await direct.status()).active == 0
        last = fuzz_tasks.echo.task_spec(("controller ok",), {}, run_id="fuzz-final")
        result = await asyncio.wait_for(client.submit(Submission(key, last)), 60)
        assert result.unwrap() == "controller ok"
        assert not controller.service.tasks, "the controller still tracks tasks"
        assert worker.process.returncode is None, "".join(worker.stderr_lines)


@pytest.mark.slow  # 15-25 s of the default suite's budget: CI's slow suite runs it
@pytest.mark.timeout(240)
async def test_fuzz_every_rpc() -> None:
    await fuzz_every_rpc(FAST_CASES, derandomize=True)


@pytest.mark.slow
@pytest.mark.timeout(1500)
async def test_fuzz_every_rpc_at_length() -> None:
    await fuzz_every_rpc(SLOW_CASES, derandomize=False)
