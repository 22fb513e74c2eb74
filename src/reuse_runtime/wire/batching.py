"""How big one message may be, and how batches of tasks and results are cut to fit.

Every stream batches: the tasks or results queued between two sends travel as one
message. A batch of many large payloads is cut into several messages of about
:data:`BATCH_BYTES` each, so that no message reaches :data:`MAX_MESSAGE_BYTES`,
which gRPC refuses to send (and would break the whole stream with). One task or
result larger than :data:`MAX_PAYLOAD_BYTES` cannot travel at all: callers check
that before sending (see ``ControllerClient.submit`` and the replica's
``--max-payload``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from reuse_runtime import model

#: Largest gRPC message either side accepts.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: Largest payload of one task (arguments, pickled function, code) or one result (value,
#: pickled exception, traceback): the rest of its message must fit beside it.
MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - 1024 * 1024
#: A batch is cut into messages of about this many payload bytes.
BATCH_BYTES = 4 * 1024 * 1024

Item = TypeVar("Item")


def task_size(spec: model.TaskSpec) -> int:
    """The payload bytes of a task."""
    return (
        len(spec.args) + len(spec.pickled or b"") + (len(spec.bundle.source) if spec.bundle else 0)
    )


def result_size(result: model.TaskResult) -> int:
    """The payload bytes of a result."""
    error = result.error
    if error is None:
        return len(result.value)
    return len(result.value) + len(error.pickled) + len(error.traceback) + len(error.message)


def in_batches(items: list[Item], size: Callable[[Item], int]) -> Iterator[tuple[list[Item], bool]]:
    """``items`` in order, cut into runs of about :data:`BATCH_BYTES` of payload, each
    with whether it is the last (which carries what goes once per batch: cancels, logs).

    An item larger than that goes alone; a short list (the common case) is yielded
    whole, as it came, and an empty one as one empty run.
    """
    if len(items) == 1:
        yield items, True
        return
    start = total = 0
    for index, item in enumerate(items):
        total += size(item)
        if total >= BATCH_BYTES:
            end = index + 1
            yield items[start:end], end == len(items)
            start, total = end, 0
    if start < len(items) or not items:
        yield items[start:], True
