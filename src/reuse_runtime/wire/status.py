"""Conversion of the controller's status and a run's progress to and from protobuf.

Beside :mod:`~reuse_runtime.wire.convert` (the messages of tasks, results and
replicas); like it, only the wire package imports generated code.
"""

from __future__ import annotations

from reuse_runtime import model
from reuse_runtime.wire.convert import report_from_proto, report_to_proto
from reuse_runtime.wire.v1 import runtime_pb2 as pb


def status_to_proto(status: model.ControllerStatus) -> pb.ControllerStatus:
    return pb.ControllerStatus(
        rss_bytes=status.rss_bytes,
        address=status.address,
        environments=[
            pb.EnvironmentStatus(
                key=env.key,
                name=env.name,
                min_replicas=env.min_replicas,
                max_replicas=env.max_replicas,
                concurrency=env.concurrency,
                backlog=env.backlog,
                completed=env.completed,
                failed=env.failed,
                cancelled=env.cancelled,
                dormant=env.dormant,
                last_error=env.last_error,
                events=[
                    pb.PoolEvent(
                        at=e.at,
                        kind=e.kind,
                        replica_id=e.replica_id,
                        reason=e.reason,
                        detail=e.detail,
                    )
                    for e in env.events
                ],
                cache_hits=env.cache_hits,
                late_results=env.late_results,
                version=env.version,
                superseded=env.superseded,
                runs=list(env.runs),
                groups=[
                    pb.GroupStatus(
                        name=g.name, running=g.running, succeeded=g.succeeded, failed=g.failed
                    )
                    for g in env.groups
                ],
                replicas=[
                    pb.ReplicaStatus(
                        replica_id=r.replica_id,
                        state=r.state,
                        assigned=r.assigned,
                        report=report_to_proto(r.report) if r.report else None,
                        where=r.where,
                        retire_reason=r.retire_reason,
                        external=r.external,
                    )
                    for r in env.replicas
                ],
            )
            for env in status.environments
        ],
    )


def status_from_proto(msg: pb.ControllerStatus) -> model.ControllerStatus:
    return model.ControllerStatus(
        rss_bytes=msg.rss_bytes,
        address=msg.address,
        environments=tuple(
            model.EnvironmentStatus(
                key=env.key,
                name=env.name,
                min_replicas=env.min_replicas,
                max_replicas=env.max_replicas,
                concurrency=env.concurrency,
                backlog=env.backlog,
                completed=env.completed,
                failed=env.failed,
                cancelled=env.cancelled,
                dormant=env.dormant,
                last_error=env.last_error,
                events=tuple(
                    model.PoolEvent(e.at, e.kind, e.replica_id, e.reason, e.detail)
                    for e in env.events
                ),
                cache_hits=env.cache_hits,
                late_results=env.late_results,
                version=env.version,
                superseded=env.superseded,
                runs=tuple(env.runs),
                groups=tuple(
                    model.GroupStatus(g.name, g.running, g.succeeded, g.failed) for g in env.groups
                ),
                replicas=tuple(
                    model.ReplicaStatus(
                        replica_id=r.replica_id,
                        state=r.state,
                        assigned=r.assigned,
                        report=report_from_proto(r.report) if r.HasField("report") else None,
                        where=r.where,
                        retire_reason=r.retire_reason,
                        external=r.external,
                    )
                    for r in env.replicas
                ),
            )
            for env in msg.environments
        ),
    )


# ------------------------------------------------------------------ progress


def progress_to_proto(progress: model.RunProgress) -> pb.RunProgress:
    return pb.RunProgress(
        found=progress.found,
        children=progress.children,
        held=progress.held,
        running=progress.running,
        succeeded=progress.succeeded,
        failed=progress.failed,
        retried=progress.retried,
        ended=progress.ended,
    )


def progress_from_proto(msg: pb.RunProgress) -> model.RunProgress:
    return model.RunProgress(
        found=msg.found,
        children=msg.children,
        held=msg.held,
        running=msg.running,
        succeeded=msg.succeeded,
        failed=msg.failed,
        retried=msg.retried,
        ended=msg.ended,
    )
