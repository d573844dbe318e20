"""SIGKILL a service while clients write to it: nothing acknowledged is lost, nothing doubles.

Each service runs as a real process (`python -m community_<name>.app`) on its
own database, subject prefix and key prefix, against the machine's Postgres,
NATS and Redis (only the service process is killed). Writers keep creating
things before, during and after the kill; a write counts as acknowledged when
its 201 arrived. Afterwards:

- every acknowledged write is in the service's table;
- every row in that table (acknowledged or committed while its client saw the
  connection die) has exactly one event in `EVENTS`, and no event id repeats.
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
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import nats
import pytest
import redis.asyncio as aioredis

from tests.conftest import JWT_SECRET, make_user

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 8
WRITES_EACH_SIDE = 25  # acknowledged writes before the kill, and again after the restart


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


@pytest.fixture
async def deployment(infra: Any) -> AsyncIterator[Deployment]:
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


@dataclass(frozen=True)
class Write:
    """How to create one thing on a service, and where its rows and events are."""

    role: str
    path: str
    body: Callable[[], dict[str, Any]]
    table: str
    subject: str
    event_key: Callable[[dict[str, Any]], str]


WRITES: dict[str, Write] = {
    "posts": Write(
        role="student",
        path="/posts",
        body=lambda: {"content": f"Kill test {uuid.uuid4().hex}"},
        table="posts.posts",
        subject="posts.post.created",
        event_key=lambda data: str(data["id"]),
    ),
    "resources": Write(
        role="instructor",
        path="/resources",
        body=lambda: {
            "title": f"Kill test {uuid.uuid4().hex[:8]}",
            "type": "guide",
            "category": "client-acquisition",
            "file_url": "https://files.example.com/kill.pdf",
            "access": "free",
        },
        table="resources.resources",
        subject="resources.resource.created",
        event_key=lambda data: str(data["id"]),
    ),
    "goals": Write(
        role="student",
        path="/goals/stories",
        body=lambda: {
            "title": f"Kill test {uuid.uuid4().hex[:8]}",
            "story": "From zero to my first client in six weeks.",
            "anonymous": False,
        },
        table="goals.stories",
        subject="goals.story.created",
        event_key=lambda data: str(data["story_id"]),
    ),
}


@dataclass
class Tally:
    acknowledged: set[str] = field(default_factory=set)
    failed: int = 0
    server_errors: int = 0
    refusals: Counter[int] = field(default_factory=Counter)


async def write_until(
    service: ServiceProcess, write: Write, stop: asyncio.Event, tally: Tally
) -> None:
    """Create things one after another, each as a fresh user (no rate limit in the way)."""
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            user = make_user(write.role)
            try:
                answer = await http.post(
                    service.url + write.path, json=write.body(), headers=user.headers
                )
            except httpx.HTTPError:
                tally.failed += 1
                await asyncio.sleep(0.05)
                continue
            if answer.status_code == 201:
                tally.acknowledged.add(str(answer.json()["id"]))
            elif answer.status_code >= 500 and answer.status_code != 503:
                tally.server_errors += 1
            else:
                tally.failed += 1
                tally.refusals[answer.status_code] += 1
                await asyncio.sleep(0.05)


async def acknowledged_at_least(tally: Tally, count: int, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while len(tally.acknowledged) < count:
        assert time.monotonic() < deadline, f"only {len(tally.acknowledged)} writes acknowledged"
        await asyncio.sleep(0.05)


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


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_sigkill_mid_writes_loses_no_acknowledged_write_and_doubles_no_event(
    name: str, deployment: Deployment, infra: Any, tmp_path: Path
) -> None:
    write = WRITES[name]
    service = ServiceProcess(name, deployment.env, tmp_path / f"{name}.log")
    await service.start()
    tally = Tally()
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(write_until(service, write, stop, tally)) for _ in range(WRITERS)
    ]
    try:
        await acknowledged_at_least(tally, WRITES_EACH_SIDE)
        before_kill = len(tally.acknowledged)
        service.kill()
        restart_seconds = await service.start()
        await acknowledged_at_least(tally, before_kill + WRITES_EACH_SIDE)
    finally:
        stop.set()
        await asyncio.gather(*writers)

    try:
        pool = await asyncpg.connect(deployment.database_url)
        try:
            rows = {str(r["id"]) for r in await pool.fetch(f"SELECT id FROM {write.table}")}
        finally:
            await pool.close()

        envelopes: list[dict[str, Any]] = []

        async def every_row_published() -> bool:
            nonlocal envelopes
            envelopes = await events_of(infra.nats_url, deployment.prefix, write.subject)
            return {write.event_key(e["data"]) for e in envelopes} >= rows

        await eventually(every_row_published, within=20)
    finally:
        service.stop()

    per_thing = Counter(write.event_key(e["data"]) for e in envelopes)
    per_event_id = Counter(e["id"] for e in envelopes)
    lost = tally.acknowledged - rows
    unpublished = rows - set(per_thing)
    duplicated = sum(n - 1 for n in per_thing.values() if n > 1)
    print(
        f"FAULT service SIGKILL mid-writes ({name}): acknowledged={len(tally.acknowledged)} "
        f"(before kill {before_kill}) rows={len(rows)} events={len(envelopes)} "
        f"lost={len(lost)} unpublished={len(unpublished)} duplicated={duplicated} "
        f"failed_requests={tally.failed} 5xx={tally.server_errors} "
        f"restart_to_ready={restart_seconds:.2f}s refusals={dict(tally.refusals)}"
    )
    assert before_kill > 0 and len(tally.acknowledged) > before_kill
    assert not lost, f"acknowledged but not stored: {sorted(lost)[:5]}"
    assert not unpublished, f"stored but never published: {sorted(unpublished)[:5]}"
    assert duplicated == 0, per_thing.most_common(3)
    assert max(per_event_id.values()) == 1
    assert set(per_thing) == rows  # no event for a thing that was never committed
    assert tally.server_errors == 0
