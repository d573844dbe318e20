"""A stack of its own for the tests of `./run stack`: database, prefixes and secret."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis


@pytest.fixture
def isolation(infra: Any) -> Iterator[dict[str, str]]:
    """The environment of a stack of its own; what it leaves behind is dropped after."""
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "DATABASE_URL": f"{infra.admin_dsn}/cl_runner_{run_id}",
        "NATS_URL": infra.nats_url,
        "REDIS_URL": infra.redis_url,
        "NATS_SUBJECT_PREFIX": f"r{run_id}.",
        "REDIS_KEY_PREFIX": f"r{run_id}:",
        "JWT_SECRET": "runner-test-secret-long-enough-for-hs256",
        "LOG_LEVEL": "WARNING",
        "OUTBOX_POLL_SECONDS": "0.5",
    }
    yield env
    asyncio.run(_forget(env))


async def _forget(env: dict[str, str]) -> None:
    """Drop what a stack left: its database, streams and Redis keys."""
    base, _, name = env["DATABASE_URL"].rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    with contextlib.suppress(Exception):
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
    token = env["NATS_SUBJECT_PREFIX"].rstrip(".")
    nc = await nats.connect(env["NATS_URL"])
    js = nc.jetstream()
    with contextlib.suppress(Exception):
        for info in await js.streams_info():
            if info.config.name and token in info.config.name:
                await js.delete_stream(info.config.name)
    await nc.drain()
    client = aioredis.Redis.from_url(env["REDIS_URL"])
    async for key in client.scan_iter(match=f"{env['REDIS_KEY_PREFIX']}*", count=1000):
        await client.delete(key)
    await client.aclose()
