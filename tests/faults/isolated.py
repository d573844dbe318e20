"""A copy of the system of its own on the machine's servers, for fault tests that
count rows: its own database, NATS subject and stream prefix and Redis key
prefix, all dropped after the test. Components run on it as `Component`s
(`tests.faults.processes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import nats
import redis.asyncio as aioredis
from community_shared.settings import Settings

from tests.conftest import JWT_SECRET, fresh_database
from tests.faults.processes import Component, component_env, free_port


@dataclass
class IsolatedDeployment:
    """A copy of the system of its own: database, subject prefix, key prefix."""

    env: dict[str, str]
    database_url: str
    prefix: str

    def component(self, name: str, logs: Path, **env: str) -> Component:
        """`community_<name>.app` on a free port of its own (kept across restarts)."""
        return Component(
            name,
            f"community_{name}.app",
            component_env(self.env, PORT=str(free_port()), **env),
            logs / f"{name}.log",
        )

    def settings(self, service: str) -> Settings:
        return Settings.from_env(
            service,
            0,
            database_url=self.database_url,
            nats_url=self.env["NATS_URL"],
            redis_url=self.env["REDIS_URL"],
            jwt_secret=JWT_SECRET,
            nats_subject_prefix=self.prefix,
            redis_key_prefix=self.env["REDIS_KEY_PREFIX"],
        )


async def isolated_deployment(infra: Any) -> AsyncIterator[IsolatedDeployment]:
    run = uuid.uuid4().hex[:8]
    prefix = f"k{run}."
    async with fresh_database(infra) as database_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": infra.nats_url,
            "REDIS_URL": infra.redis_url,
            "NATS_SUBJECT_PREFIX": prefix,
            "REDIS_KEY_PREFIX": f"k{run}:",
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            "OUTBOX_POLL_SECONDS": "0.5",
            "DB_POOL_MAX_SIZE": "6",
        }
        yield IsolatedDeployment(env, database_url, prefix)
    nc = await nats.connect(infra.nats_url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(f"k{run}_"):
                await js.delete_stream(info.config.name)
    await nc.drain()
    client = aioredis.Redis.from_url(infra.redis_url)
    async for key in client.scan_iter(match=f"k{run}:*", count=1000):
        await client.delete(key)
    await client.aclose()


async def events_of(nats_url: str, prefix: str, subject: str) -> list[dict[str, Any]]:
    """Every envelope in this deployment's EVENTS stream on `subject`."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = prefix.replace(".", "_") + "EVENTS"
    envelopes: list[dict[str, Any]] = []
    try:
        subscription = await js.pull_subscribe(prefix + subject, stream=stream)
        while True:
            try:
                batch = await subscription.fetch(500, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for message in batch:
                envelopes.append(msgspec.json.decode(message.data))
                await message.ack()
        await subscription.unsubscribe()
    finally:
        await nc.drain()
    return envelopes


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.25)
    return await check()


async def started(component: Component) -> float:
    """Start `component`; the seconds until its `/ready` answered 200."""
    began = time.monotonic()
    await component.start()
    await component.wait_ready()
    return time.monotonic() - began
