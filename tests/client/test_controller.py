"""The controller client against a real controller on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from reuse_runtime.errors import PolicyError
from tests.controller import tasks
from tests.helpers import running_controller


async def test_concurrent_first_registrations_share_one_rpc() -> None:
    """10k children started at once must not send 10k RegisterEnvironment calls."""
    async with running_controller() as (server, client):
        service = server.service  # type: ignore[attr-defined]
        calls = 0
        register = service.register_environment

        def counting(spec: object) -> str:  # counts, then does the real work
            nonlocal calls
            calls += 1
            return register(spec)  # type: ignore[no-any-return]

        service.register_environment = counting
        spec = tasks.child.environment_spec()
        keys = await asyncio.wait_for(
            asyncio.gather(*(client.register(spec) for _ in range(2_000))),  # type: ignore[attr-defined]
            30,
        )
        assert set(keys) == set(service.pools) and len(service.pools) == 1
        assert calls == 1
        # Known afterwards: no RPC at all.
        assert await client.register(spec) == keys[0]  # type: ignore[attr-defined]
        assert calls == 1


async def test_a_failed_registration_is_retried_by_the_next_call() -> None:
    async with running_controller() as (_, client):
        good = tasks.child.environment_spec()
        bad = dataclasses.replace(good, name="not a valid name!")
        outcomes = await asyncio.gather(
            *(client.register(bad) for _ in range(50)),  # type: ignore[attr-defined]
            return_exceptions=True,
        )
        assert all(isinstance(o, PolicyError) for o in outcomes), outcomes
        assert "invalid environment" in str(outcomes[0]) and "name" in str(outcomes[0])
        with pytest.raises(PolicyError):
            await client.register(bad)  # type: ignore[attr-defined]
        assert await client.register(good)  # type: ignore[attr-defined]
