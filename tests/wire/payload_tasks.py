"""Tasks the splice tests run on a real worker, imported there by reference."""

from __future__ import annotations


async def echo(value: object) -> object:
    return value
