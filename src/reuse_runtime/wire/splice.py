"""Large payloads written into and read out of messages without protobuf's copies.

A task's arguments and a result's value are bytes fields of the stream messages.
Protobuf copies such a field at least four times on its way through a process:
parsing copies it into the message, reading it copies it out to Python, setting it
copies it in, and serializing copies it out again. For a payload of a mebibyte that is
most of what forwarding it costs. Here, payloads of :data:`SPLICE_BYTES` or more bypass it:

* **Writing**: the message is built with those fields empty, and :class:`Spliced`
  serializes it element by element, appending each payload's field after its
  element's own bytes. Protobuf merges a field given twice (a message field's
  contents are merged, a bytes field is set), so the receiver sees one message.
* **Reading**: :func:`parser` walks the message's framing (tags and lengths, no
  payload bytes) down to the payload fields, cuts them out as views of the bytes
  gRPC handed over, and lets protobuf parse the small remainder. The payloads go
  with the message, by the index of the element they belong to.

Both sides put ordinary protobuf on the wire: any client parses these messages as
it would any other, and a message with no large payload takes protobuf's own path.
A payload read this way is a ``memoryview`` of its message's bytes, which it keeps
alive: whatever holds one for long (the replay log) keeps a copy instead.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reuse_runtime.wire.v1 import runtime_pb2 as pb

#: Payloads of at least this many bytes travel spliced. Below it, walking the framing in
#: Python costs about what protobuf's copies do.
SPLICE_BYTES = 128 * 1024

#: Large payloads of one message, by the index of the element each belongs to.
Payloads = Mapping[int, memoryview]
NO_PAYLOADS: Payloads = MappingProxyType({})

#: Serializes a message or a :class:`Spliced` one: gRPC's serializer for these streams.
serialize: Callable[[Any], bytes] = operator.methodcaller("SerializeToString")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@dataclass(frozen=True)
class Layout:
    """Where a message's large payloads sit: message fields down to a repeated one (the
    elements), then message fields down to the payload's bytes field."""

    message: Any
    outer: tuple[str, ...]
    repeated: str
    inner: tuple[str, ...]
    #: The field numbers of outer, repeated and inner, in order.
    numbers: tuple[int, ...] = field(init=False)
    #: Each field's tag as it is written (length-delimited), in the same order.
    tags: tuple[bytes, ...] = field(init=False)

    def __post_init__(self) -> None:
        numbers = []
        descriptor = self.message.DESCRIPTOR
        for name in (*self.outer, self.repeated, *self.inner):
            found = descriptor.fields_by_name[name]
            numbers.append(found.number)
            descriptor = found.message_type
        object.__setattr__(self, "numbers", tuple(numbers))
        object.__setattr__(self, "tags", tuple(_varint(n << 3 | 2) for n in numbers))


LAYOUTS: dict[Any, Layout] = {
    layout.message: layout
    for layout in (
        Layout(pb.SubmitBatch, (), "submissions", ("task", "args")),
        Layout(pb.DispatchBatch, (), "tasks", ("args",)),
        Layout(pb.ControllerMessage, ("dispatch",), "tasks", ("args",)),
        Layout(pb.SubmitEvents, (), "results", ("value",)),
        Layout(pb.ResultBatch, (), "results", ("value",)),
        Layout(pb.WorkerMessage, ("results",), "results", ("value",)),
    )
}


class Spliced:
    """``message`` with ``payloads`` (by element index) to write into its elements."""

    __slots__ = ("_layout", "message", "payloads")

    def __init__(self, message: Any, payloads: dict[int, bytes | memoryview]) -> None:
        self.message = message
        self.payloads = payloads
        self._layout = LAYOUTS[type(message)]

    def SerializeToString(self) -> bytes:
        """The message's bytes (protobuf's name: :data:`serialize` takes either)."""
        pieces = self._encode(self.message, 0)
        return b"".join(pieces)

    def _encode(self, message: Any, depth: int) -> list[bytes | memoryview]:
        layout = self._layout
        outer = len(layout.outer)
        name = layout.outer[depth] if depth < outer else layout.repeated
        rest = type(message)()
        rest.CopyFrom(message)
        rest.ClearField(name)
        pieces: list[bytes | memoryview] = [rest.SerializeToString()]
        tag = layout.tags[depth]
        if depth < outer:
            inner = self._encode(getattr(message, name), depth + 1)
            pieces += (tag, _varint(_length(inner)), *inner)
            return pieces
        for index, element in enumerate(getattr(message, name)):
            body = element.SerializeToString()
            payload = self.payloads.get(index)
            if payload is None:
                pieces += (tag, _varint(len(body)), body)
                continue
            wrapped = _wrap(layout.tags[depth + 1 :], payload)
            pieces += (tag, _varint(len(body) + _length(wrapped)), body, *wrapped)
        return pieces


def outgoing(message: Any, payloads: dict[int, bytes | memoryview]) -> Any:
    """What to write: ``message`` itself, or it with ``payloads`` spliced in."""
    return Spliced(message, payloads) if payloads else message


def parse(message_type: Any, data: bytes) -> tuple[Any, Payloads]:
    """``data`` as a ``message_type``, with its large payloads cut out (see the module).

    Raises what protobuf's parser raises for bytes that are not such a message.
    """
    if len(data) >= SPLICE_BYTES:
        found: dict[int, memoryview] = {}
        try:
            cutter = _Cutter(LAYOUTS[message_type], memoryview(data), found)
            pieces = cutter.cut(0, len(data), 0, -1)
        except (IndexError, ValueError):
            pieces = None  # not well framed: protobuf's parser says what is wrong
        if pieces is not None:
            return message_type.FromString(b"".join(pieces)), found
    return message_type.FromString(data), NO_PAYLOADS


def parser(message_type: Any) -> Callable[[bytes], tuple[Any, Payloads]]:
    """gRPC's deserializer for a stream of ``message_type``: see :func:`parse`."""
    return functools.partial(parse, message_type)


class _Cutter:
    """Cuts the large payload fields of one message's bytes out, keeping the rest."""

    def __init__(self, layout: Layout, data: memoryview, found: dict[int, memoryview]) -> None:
        self._numbers = layout.numbers
        self._elements_at = len(layout.outer)
        self._data = data
        self._found = found
        self._count = 0  # elements seen so far

    def cut(self, start: int, end: int, depth: int, element: int) -> list[Any] | None:
        """The pieces of ``data[start:end]`` (a message at ``depth`` of the layout) with
        large payloads cut out, or None if it holds none."""
        data = self._data
        want = self._numbers[depth]
        last = depth == len(self._numbers) - 1
        pieces: list[Any] = []
        run = pos = start  # run: where the bytes not yet in pieces begin
        while pos < end:
            begun = pos
            key, head = _read_varint(data, pos)
            length, body, pos = _field_end(data, key, head)
            if pos > end:
                raise ValueError("a field runs past its message")
            if length < 0 or key >> 3 != want:
                continue
            inside = element
            if depth == self._elements_at:
                inside = self._count
                self._count += 1
            if length < SPLICE_BYTES:
                if last:  # a bytes field given twice is its last value: this small one
                    self._found.pop(inside, None)
                continue
            if last:
                self._found[inside] = data[body:pos]
                pieces.append(data[run:begun])
            else:
                inner = self.cut(body, pos, depth + 1, inside)
                if inner is None:
                    continue
                pieces += (data[run:head], _varint(_length(inner)), *inner)
            run = pos
        if not pieces:
            return None
        pieces.append(data[run:end])
        return pieces


def _field_end(data: memoryview, key: int, head: int) -> tuple[int, int, int]:
    """For the field whose key ends at ``head``: its length, where its body starts, and
    where it ends; the length is -1 for a field that is not length-delimited."""
    wire = key & 7
    if wire == 2:
        length, body = _read_varint(data, head)
        return length, body, body + length
    if wire == 0:
        return -1, head, _read_varint(data, head)[1]
    if wire == 1:
        return -1, head, head + 8
    if wire == 5:
        return -1, head, head + 4
    raise ValueError(f"wire type {wire}")


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("a varint of more than 10 bytes")


def _length(pieces: list[Any]) -> int:
    return sum(len(piece) for piece in pieces)


def _wrap(tags: tuple[bytes, ...], payload: bytes | memoryview) -> list[bytes | memoryview]:
    """``payload`` as the innermost of the fields ``tags`` name, each inside the last."""
    pieces: list[bytes | memoryview] = [payload]
    size = len(payload)
    for tag in reversed(tags):
        length = _varint(size)
        pieces[:0] = (tag, length)
        size += len(tag) + len(length)
    return pieces
