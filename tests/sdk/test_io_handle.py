"""The async file handle and the hash methods of ``flyte.io``."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from reuse_runtime.sdk.io_handle import (
    AsyncFileHandle,
    HashFunction,
    HashlibAccumulator,
    HashMethod,
    PrecomputedValue,
)


def test_hash_methods_follow_flytes_protocol() -> None:
    acc = HashlibAccumulator.from_hash_name("sha256")
    acc.update(b"ab")
    acc.update(b"c")
    assert acc.result() == hashlib.sha256(b"abc").hexdigest()
    last = HashFunction.from_fn(lambda data: data.decode())
    last.update(b"x")
    last.update(b"y")
    assert last.result() == "y"  # Flyte's HashFunction keeps the last piece's value
    fixed = PrecomputedValue("v1")
    fixed.update(b"ignored")
    assert fixed.result() == "v1"
    assert all(isinstance(m, HashMethod) for m in (acc, last, fixed))
    assert not isinstance("v1", HashMethod)


def test_the_handle_closes_once_and_reports_its_state(tmp_path: Path) -> None:
    closed: list[int] = []
    path = tmp_path / "f.txt"

    async def scenario() -> list[object]:
        async with AsyncFileHandle(path.open("w+"), on_close=lambda: closed.append(1)) as fh:
            await fh.write("one\ntwo\n")
            await fh.flush()
            await fh.seek(0)
            lines = await fh.readlines()
            await fh.truncate(4)
            state = [await fh.readable(), await fh.writable(), await fh.seekable(), fh.mode]
        await fh.close()
        return [lines, state, fh.closed, fh.name]

    lines, state, closed_now, name = asyncio.run(scenario())
    assert lines == ["one\n", "two\n"] and state == [True, True, True, "w+"]
    assert closed_now and name == str(path) and closed == [1]
    assert path.read_text() == "one\n"
