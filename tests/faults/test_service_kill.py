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
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import make_user
from tests.faults.isolated import (
    IsolatedDeployment,
    events_of,
    eventually,
    isolated_deployment,
    started,
)
from tests.faults.processes import Component

WRITERS = 8
WRITES_EACH_SIDE = 25  # acknowledged writes before the kill, and again after the restart


@pytest.fixture
async def own(infra: Any) -> AsyncIterator[IsolatedDeployment]:
    async for made in isolated_deployment(infra):
        yield made


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


async def write_until(service: Component, write: Write, stop: asyncio.Event, tally: Tally) -> None:
    """Create things one after another, each as a fresh user (no rate limit in the way)."""
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            user = make_user(write.role)
            try:
                answer = await http.post(
                    service.base_url + write.path, json=write.body(), headers=user.headers
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


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_sigkill_mid_writes_loses_no_acknowledged_write_and_doubles_no_event(
    name: str, own: IsolatedDeployment, infra: Any, tmp_path: Path
) -> None:
    write = WRITES[name]
    service = own.component(name, tmp_path)
    await started(service)
    tally = Tally()
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(write_until(service, write, stop, tally)) for _ in range(WRITERS)
    ]
    try:
        await acknowledged_at_least(tally, WRITES_EACH_SIDE)
        before_kill = len(tally.acknowledged)
        await service.kill()
        restart_seconds = await started(service)
        await acknowledged_at_least(tally, before_kill + WRITES_EACH_SIDE)
    finally:
        stop.set()
        await asyncio.gather(*writers)

    try:
        pool = await asyncpg.connect(own.database_url)
        try:
            rows = {str(r["id"]) for r in await pool.fetch(f"SELECT id FROM {write.table}")}
        finally:
            await pool.close()

        envelopes: list[dict[str, Any]] = []

        async def every_row_published() -> bool:
            nonlocal envelopes
            envelopes = await events_of(infra.nats_url, own.prefix, write.subject)
            return {write.event_key(e["data"]) for e in envelopes} >= rows

        await eventually(every_row_published, within=20)
    finally:
        await service.stop()

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
