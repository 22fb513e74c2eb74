"""Conversion between the domain dataclasses and their protobuf messages.

This module and its siblings are the only importers of generated code.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from reuse_runtime import model
from reuse_runtime.wire import splice
from reuse_runtime.wire.splice import SPLICE_BYTES
from reuse_runtime.wire.v1 import runtime_pb2 as pb

Item = TypeVar("Item")

_STATE_TO_PB = {
    model.TaskState.SUCCEEDED: pb.TASK_STATE_SUCCEEDED,
    model.TaskState.FAILED: pb.TASK_STATE_FAILED,
    model.TaskState.CANCELLED: pb.TASK_STATE_CANCELLED,
    model.TaskState.TIMED_OUT: pb.TASK_STATE_TIMED_OUT,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}
# Error kinds share their numbers with the proto enum.
_KINDS = {kind.value: kind for kind in model.ErrorKind}
_REFS: dict[tuple[str, str, str], model.FunctionRef] = {}
_MAX_SHARED = 4096


# ------------------------------------------------------------------ code


def ref_to_proto(ref: model.FunctionRef) -> pb.FunctionRef:
    return pb.FunctionRef(module=ref.module, qualname=ref.qualname, code_version=ref.code_version)


# Tasks name the same few functions: their messages are made once (read, never changed).
_ref_message = functools.lru_cache(maxsize=_MAX_SHARED)(ref_to_proto)


def ref_from_proto(msg: pb.FunctionRef) -> model.FunctionRef:
    # Thousands of queued tasks name the same few functions: share one object each.
    key = (msg.module, msg.qualname, msg.code_version)
    ref = _REFS.get(key)
    if ref is None:
        if len(_REFS) >= _MAX_SHARED:
            _REFS.clear()
        ref = _REFS[key] = model.FunctionRef(*key)
    return ref


def _shared(text: str) -> str:
    """One copy of a string many tasks repeat (a run id, a parent id, a task name)."""
    if len(text) > 128:
        return text
    return sys.intern(text)


def bundle_to_proto(bundle: model.CodeBundle) -> pb.CodeBundle:
    return pb.CodeBundle(
        module=bundle.module, digest=bundle.digest, filename=bundle.filename, source=bundle.source
    )


def bundle_from_proto(msg: pb.CodeBundle) -> model.CodeBundle:
    return model.CodeBundle(msg.module, msg.digest, msg.filename, msg.source)


def _optional_ref(msg: pb.FunctionRef) -> model.FunctionRef | None:
    return ref_from_proto(msg) if msg.module else None


# ------------------------------------------------------------------ tasks


def task_to_proto(
    spec: model.TaskSpec,
    msg: pb.TaskSpec | None = None,
    big: dict[int, model.Payload] | None = None,
    index: int = 0,
) -> pb.TaskSpec:
    """``spec`` as a message: a new one, or written into ``msg`` (a field of a message
    being built: a message passed to a constructor would be copied).

    With ``big``, arguments of :data:`~splice.SPLICE_BYTES` or more stay out of the
    message: they go into ``big`` at ``index``, to be spliced in (see :mod:`splice`).
    """
    if msg is None:
        msg = pb.TaskSpec()
    msg.task_id = spec.task_id
    msg.name = spec.name
    args = spec.args
    if len(args) < SPLICE_BYTES:
        msg.args = args  # type: ignore[assignment]  # only a large payload is a view
    else:
        msg.args = _large(args, big, index)
    if spec.timeout:
        msg.timeout_seconds = spec.timeout
    if spec.run_id:
        msg.run_id = spec.run_id
    if spec.parent_task_id:
        msg.parent_task_id = spec.parent_task_id
    if spec.call_key:
        msg.call_key = spec.call_key
    if spec.ref is not None:
        msg.ref.CopyFrom(_ref_message(spec.ref))
    elif spec.pickled is not None:
        msg.pickled = spec.pickled
    if spec.bundle is not None:
        msg.bundle.CopyFrom(bundle_to_proto(spec.bundle))
    if spec.group or spec.custom_context or spec.attempt or spec.run_options is not None:
        _extras_to_proto(spec, msg.extras)
    return msg


def _extras_to_proto(spec: model.TaskSpec, extras: pb.TaskExtras) -> None:
    extras.group = spec.group
    extras.attempt = spec.attempt
    extras.custom_context.update(spec.custom_context)
    options = spec.run_options
    if options is not None:
        extras.run_options.overwrite_cache = options.overwrite_cache
        extras.run_options.disable_cache = options.disable_cache
        extras.run_options.log_level = options.log_level
        extras.run_options.env_vars.update(options.env_vars)


def _large(data: model.Payload, big: dict[int, model.Payload] | None, index: int) -> bytes:
    """What a message's field gets for a payload of SPLICE_BYTES or more: nothing, when it
    goes into ``big`` at ``index`` to be spliced in; else the payload, as bytes."""
    if big is None:
        return bytes(data)
    big[index] = data
    return b""


def task_from_proto(msg: pb.TaskSpec, args: model.Payload | None = None) -> model.TaskSpec:
    """The task ``msg`` carries; ``args`` are its arguments if they were spliced out."""
    which = msg.WhichOneof("function")
    group, attempt = "", 0
    custom_context: tuple[tuple[str, str], ...] = ()
    run_options: model.RunOptions | None = None
    if msg.HasField("extras"):
        extras = msg.extras
        if extras.group:
            group = _shared(extras.group)
        custom_context = tuple(sorted(extras.custom_context.items()))
        attempt = extras.attempt
        if extras.HasField("run_options"):
            run_options = _run_options(extras.run_options)
    # Positional: a task is built from a message at every hop, and keywords cost more.
    return model.TaskSpec(
        msg.task_id,
        _shared(msg.name),
        msg.args if args is None else args,
        ref_from_proto(msg.ref) if which == "ref" else None,
        msg.pickled if which == "pickled" else None,
        bundle_from_proto(msg.bundle) if msg.HasField("bundle") else None,
        msg.timeout_seconds or None,
        _shared(msg.run_id),
        _shared(msg.parent_task_id),
        group,
        custom_context,
        attempt,
        run_options,
        msg.call_key,
    )


def _run_options(msg: pb.RunOptions) -> model.RunOptions:
    return model.RunOptions(
        overwrite_cache=msg.overwrite_cache,
        disable_cache=msg.disable_cache,
        env_vars=tuple(sorted(msg.env_vars.items())),
        log_level=msg.log_level,
    )


def error_to_proto(err: model.RemoteError) -> pb.RemoteError:
    return pb.RemoteError(
        kind=err.kind.value,  # type: ignore[arg-type]
        type=err.type,
        message=err.message,
        traceback=err.traceback,
        pickled=err.pickled,
    )


def error_from_proto(msg: pb.RemoteError) -> model.RemoteError:
    return model.RemoteError(
        kind=_KINDS.get(msg.kind, model.ErrorKind.INTERNAL),
        type=msg.type,
        message=msg.message,
        traceback=msg.traceback,
        pickled=msg.pickled,
    )


def result_to_proto(
    result: model.TaskResult,
    msg: pb.TaskResult | None = None,
    big: dict[int, model.Payload] | None = None,
    index: int = 0,
) -> pb.TaskResult:
    """``result`` as a message, as :func:`task_to_proto` does a task (``big`` likewise)."""
    if msg is None:
        msg = pb.TaskResult()
    msg.task_id = result.task_id
    msg.state = _STATE_TO_PB[result.state]
    value = result.value
    if value:
        if len(value) < SPLICE_BYTES:
            msg.value = value  # type: ignore[assignment]  # only a large payload is a view
        else:
            msg.value = _large(value, big, index)
    if result.replica_id:
        msg.replica_id = result.replica_id
    if result.duration:
        msg.duration_seconds = result.duration
    if result.attempts:
        msg.attempts = result.attempts
    if result.cached:
        msg.cached = True
    if result.error is not None:
        msg.error.CopyFrom(error_to_proto(result.error))
    return msg


def result_from_proto(msg: pb.TaskResult, value: model.Payload | None = None) -> model.TaskResult:
    """The result ``msg`` carries; ``value`` is its value if it was spliced out."""
    state = _STATE_FROM_PB.get(msg.state)
    error = error_from_proto(msg.error) if msg.HasField("error") else None
    if state is None:
        state = model.TaskState.FAILED
        error = model.RemoteError(
            model.ErrorKind.INTERNAL, "", f"result arrived with unknown state {msg.state}"
        )
    return model.TaskResult(  # positional, as in task_from_proto
        msg.task_id,
        state,
        msg.value if value is None else value,
        error,
        msg.replica_id,
        msg.duration_seconds,
        msg.attempts,
        msg.cached,
    )


def log_to_proto(line: model.LogLine, msg: pb.LogLine | None = None) -> pb.LogLine:
    if msg is None:
        msg = pb.LogLine()
    msg.task_id = line.task_id
    msg.task_name = line.task_name
    msg.run_id = line.run_id
    msg.stream = line.stream
    msg.text = line.text
    msg.parent_task_id = line.parent_task_id
    msg.replica_id = line.replica_id
    return msg


def log_from_proto(msg: pb.LogLine) -> model.LogLine:
    return model.LogLine(
        msg.task_id,
        msg.task_name,
        msg.run_id,
        msg.stream,
        msg.text,
        _shared(msg.parent_task_id),
        _shared(msg.replica_id),
    )


def _write_elements(
    items: Iterable[Item], add: Callable[[], Any], to_proto: Callable[..., Any]
) -> dict[int, model.Payload]:
    """Writes ``items`` into new elements of a repeated field (``add``) with ``to_proto``;
    returns the large payloads left out of them, by element index (see :mod:`splice`)."""
    big: dict[int, model.Payload] = {}
    for index, item in enumerate(items):
        to_proto(item, add(), big, index)
    return big


def _read_elements(
    elements: Iterable[Any], from_proto: Callable[..., Item], big: splice.Payloads
) -> list[Item]:
    """``elements`` read with ``from_proto``, each given its large payload, if ``big``
    holds one for its index."""
    if big:
        return [from_proto(element, big.get(i)) for i, element in enumerate(elements)]
    return [from_proto(element) for element in elements]


def dispatch_batch(
    tasks: list[model.TaskSpec], cancel: list[str], batch: pb.DispatchBatch
) -> dict[int, model.Payload]:
    """Writes ``tasks`` and ``cancel`` into ``batch``; returns the large arguments left
    out of it, by task index, for :func:`splice.outgoing`."""
    big = _write_elements(tasks, batch.tasks.add, task_to_proto)
    if cancel:
        batch.cancel.extend(cancel)
    return big


def dispatch_message(tasks: list[model.TaskSpec], cancel: list[str]) -> Any:
    """A ``DispatchBatch`` to write, its large arguments spliced (see :mod:`splice`)."""
    batch = pb.DispatchBatch()
    return splice.outgoing(batch, dispatch_batch(tasks, cancel, batch))


def result_batch(
    results: list[model.TaskResult],
    logs: list[model.LogLine],
    batch: pb.ResultBatch | pb.SubmitEvents,
) -> dict[int, model.Payload]:
    """Writes results and output lines into ``batch`` (a ``ResultBatch``, or the
    ``SubmitEvents`` it is a copy of); returns the large values left out of it."""
    big = _write_elements(results, batch.results.add, result_to_proto)
    if logs:
        add_log = batch.logs.add
        for line in logs:
            log_to_proto(line, add_log())
    return big


def result_message(results: list[model.TaskResult], logs: list[model.LogLine]) -> Any:
    """A ``ResultBatch`` to write, its large values spliced (see :mod:`splice`)."""
    batch = pb.ResultBatch()
    return splice.outgoing(batch, result_batch(results, logs, batch))


def results_from_batch(
    msg: pb.ResultBatch | pb.SubmitEvents, big: splice.Payloads = splice.NO_PAYLOADS
) -> tuple[list[model.TaskResult], list[model.LogLine]]:
    """The results and lines of ``msg``, with ``big``, its values spliced out by index."""
    results = _read_elements(msg.results, result_from_proto, big)
    return results, [log_from_proto(x) for x in msg.logs]


def tasks_from_batch(
    msg: pb.DispatchBatch, big: splice.Payloads = splice.NO_PAYLOADS
) -> list[model.TaskSpec]:
    """The tasks of ``msg``, with ``big``, their arguments spliced out by index."""
    return _read_elements(msg.tasks, task_from_proto, big)


# ------------------------------------------------------------------ replicas


def report_to_proto(report: model.ReplicaReport) -> pb.ReplicaReport:
    return pb.ReplicaReport(
        replica_id=report.replica_id,
        active=report.active,
        capacity=report.capacity,
        waiting=report.waiting,
        idle_since=report.idle_since or 0.0,
        idle_seconds=report.idle_seconds,
        completed=report.completed,
        failed=report.failed,
        rss_bytes=report.rss_bytes,
        loop_lag_seconds=report.loop_lag,
        draining=report.draining,
        uptime_seconds=report.uptime,
        loop_blocked_by=report.loop_blocked_by,
        sent_at=report.sent_at,
        recycle_reason=report.recycle_reason,
    )


def report_from_proto(msg: pb.ReplicaReport) -> model.ReplicaReport:
    return model.ReplicaReport(
        replica_id=msg.replica_id,
        active=msg.active,
        capacity=msg.capacity,
        waiting=msg.waiting,
        idle_since=msg.idle_since or None,
        idle_seconds=msg.idle_seconds,
        completed=msg.completed,
        failed=msg.failed,
        rss_bytes=msg.rss_bytes,
        loop_lag=msg.loop_lag_seconds,
        draining=msg.draining,
        uptime=msg.uptime_seconds,
        loop_blocked_by=msg.loop_blocked_by,
        sent_at=msg.sent_at,
        recycle_reason=msg.recycle_reason,
    )


def init_to_proto(init: model.ReplicaInit) -> pb.ReplicaInit:
    msg = pb.ReplicaInit(
        stop_grace_seconds=init.stop_grace,
        environment=init.environment,
        idle_heartbeat_seconds=init.idle_heartbeat,
        code_bundle=init.code_bundle,
        fetch_code=init.fetch_code,
    )
    if init.on_start is not None:
        msg.on_start.CopyFrom(ref_to_proto(init.on_start))
    if init.on_stop is not None:
        msg.on_stop.CopyFrom(ref_to_proto(init.on_stop))
    if init.bundle is not None:
        msg.bundle.CopyFrom(bundle_to_proto(init.bundle))
    return msg


def init_from_proto(msg: pb.ReplicaInit) -> model.ReplicaInit:
    return model.ReplicaInit(
        on_start=_optional_ref(msg.on_start),
        on_stop=_optional_ref(msg.on_stop),
        bundle=bundle_from_proto(msg.bundle) if msg.HasField("bundle") else None,
        stop_grace=msg.stop_grace_seconds,
        environment=msg.environment,
        idle_heartbeat=msg.idle_heartbeat_seconds,
        code_bundle=msg.code_bundle,
        fetch_code=msg.fetch_code,
    )


def hello_to_proto(hello: model.ReplicaHello) -> pb.ReplicaHello:
    return pb.ReplicaHello(
        replica_id=hello.replica_id,
        capacity=hello.capacity,
        address=hello.address,
        pid=hello.pid,
        environment=hello.environment,
    )


def hello_from_proto(msg: pb.ReplicaHello) -> model.ReplicaHello:
    return model.ReplicaHello(msg.replica_id, msg.capacity, msg.address, msg.pid, msg.environment)


# ------------------------------------------------------------------ environments


def environment_to_proto(env: model.EnvironmentSpec) -> pb.EnvironmentSpec:
    p = env.policy
    msg = pb.EnvironmentSpec(
        name=env.name,
        policy=pb.PolicySpec(
            min_replicas=p.min_replicas,
            max_replicas=p.max_replicas,
            concurrency=p.concurrency,
            scaledown_ttl_seconds=p.scaledown_ttl,
            idle_ttl_seconds=p.idle_ttl,
            max_tasks=p.max_tasks,
            max_rss_bytes=p.max_rss,
            max_lifetime_seconds=p.max_lifetime,
            reusable=p.reusable,
        ),
        image=env.image,
        resources=env.resources,
        code_version=env.code_version,
        working_dir=env.working_dir,
        python_path=list(env.python_path),
        env_vars=dict(env.env_vars),
        stop_grace_seconds=env.stop_grace,
        scope=env.scope,
        code_bundle=env.code_bundle,
    )
    if env.on_start is not None:
        msg.on_start.CopyFrom(ref_to_proto(env.on_start))
    if env.on_stop is not None:
        msg.on_stop.CopyFrom(ref_to_proto(env.on_stop))
    if env.hooks_bundle is not None:
        msg.hooks_bundle.CopyFrom(bundle_to_proto(env.hooks_bundle))
    return msg


def environment_from_proto(msg: pb.EnvironmentSpec) -> model.EnvironmentSpec:
    p = msg.policy
    return model.EnvironmentSpec(
        name=msg.name,
        policy=model.PoolPolicy(
            min_replicas=p.min_replicas,
            max_replicas=p.max_replicas,
            concurrency=p.concurrency,
            scaledown_ttl=p.scaledown_ttl_seconds,
            idle_ttl=p.idle_ttl_seconds,
            max_tasks=p.max_tasks,
            max_rss=p.max_rss_bytes,
            max_lifetime=p.max_lifetime_seconds,
            reusable=p.reusable,
        ),
        image=msg.image,
        resources=msg.resources,
        code_version=msg.code_version,
        working_dir=msg.working_dir,
        python_path=tuple(msg.python_path),
        env_vars=tuple(sorted(msg.env_vars.items())),
        on_start=_optional_ref(msg.on_start),
        on_stop=_optional_ref(msg.on_stop),
        hooks_bundle=bundle_from_proto(msg.hooks_bundle) if msg.HasField("hooks_bundle") else None,
        stop_grace=msg.stop_grace_seconds,
        scope=msg.scope,
        code_bundle=msg.code_bundle,
    )


def submission_to_proto(
    sub: model.Submission,
    msg: pb.Submission | None = None,
    big: dict[int, model.Payload] | None = None,
    index: int = 0,
) -> pb.Submission:
    """``sub`` as a message; ``big`` and ``index`` as for :func:`task_to_proto`."""
    if msg is None:
        msg = pb.Submission()
    msg.env_key = sub.env_key
    task_to_proto(sub.task, msg.task, big, index)
    if sub.retries:
        msg.retries = sub.retries
    if sub.stream_logs:
        msg.stream_logs = True
    if sub.cache_key or sub.cache_overwrite or sub.retry_backoff is not None:
        extras = msg.extras
        extras.cache_key = sub.cache_key
        extras.cache_overwrite = sub.cache_overwrite
        extras.cache_max_age_seconds = sub.cache_max_age
        backoff = sub.retry_backoff
        if backoff is not None:
            extras.retry_backoff.base_seconds = backoff.base
            extras.retry_backoff.factor = backoff.factor
            extras.retry_backoff.cap_seconds = backoff.cap
    return msg


def submission_batch(
    submissions: list[model.Submission], batch: pb.SubmitBatch
) -> dict[int, model.Payload]:
    """Writes ``submissions`` into ``batch``; returns the large arguments left out of it."""
    return _write_elements(submissions, batch.submissions.add, submission_to_proto)


def submissions_from_batch(
    msg: pb.SubmitBatch, big: splice.Payloads = splice.NO_PAYLOADS
) -> list[model.Submission]:
    """The submissions of ``msg``, with ``big``, their arguments spliced out by index."""
    return _read_elements(msg.submissions, submission_from_proto, big)


def submission_from_proto(
    msg: pb.Submission, args: model.Payload | None = None
) -> model.Submission:
    """The submission ``msg`` carries; ``args`` as for :func:`task_from_proto`."""
    if not msg.HasField("extras"):
        return model.Submission(
            _shared(msg.env_key), task_from_proto(msg.task, args), msg.retries, msg.stream_logs
        )
    extras = msg.extras
    backoff = None
    if extras.HasField("retry_backoff"):
        b = extras.retry_backoff
        backoff = model.RetryBackoff(b.base_seconds, b.factor, b.cap_seconds)
    return model.Submission(
        env_key=_shared(msg.env_key),
        task=task_from_proto(msg.task, args),
        retries=msg.retries,
        stream_logs=msg.stream_logs,
        cache_key=extras.cache_key,
        cache_overwrite=extras.cache_overwrite,
        retry_backoff=backoff,
        cache_max_age=extras.cache_max_age_seconds,
    )
