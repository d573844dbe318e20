"""Real service processes on a deployment of their own, for fault tests.

A `Deployment` is a copy of the system with its own database, NATS subject and
stream prefix and Redis key prefix on the machine's servers; it is dropped
after the test. A `ServiceProcess` runs one component as an OS process
(`python -m community_<name>.app`) on a fixed port, so it can be SIGKILLed and
started again where its clients expect it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import nats
import pytest
import redis.asyncio as aioredis
from community_shared.settings import Settings

from tests.conftest import JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Deployment:
    """A copy of the system of its own: database, subject prefix, key prefix."""

    env: dict[str, str]
    database_url: str
    prefix: str

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


async def make_deployment(infra: Any) -> AsyncIterator[Deployment]:
    run = uuid.uuid4().hex[:8]
    name = f"cl_kill_{run}"
    admin = await asyncpg.connect(f"{infra.admin_dsn}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = f"{infra.admin_dsn}/{name}"
    prefix = f"k{run}."
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
    yield Deployment(env, database_url, prefix)
    admin = await asyncpg.connect(f"{infra.admin_dsn}/postgres")
    with contextlib.suppress(Exception):
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
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


class ServiceProcess:
    """One service as an OS process, started, SIGKILLed and started again on one port."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as sink:
            return subprocess.Popen(
                [sys.executable, "-m", f"community_{self.name}.app"],
                cwd=ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    async def start(self, within: float = 30) -> float:
        """Start the process; the seconds until `/ready` answered 200."""
        started = time.monotonic()
        self.process = self.spawn()
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() - started < within:
                if self.process.poll() is not None:
                    pytest.fail(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/ready")).status_code == 200:
                        return time.monotonic() - started
                await asyncio.sleep(0.1)
        pytest.fail(f"{self.name} not ready within {within} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
