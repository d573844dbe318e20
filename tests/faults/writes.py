"""Writers that create things on a service as fresh users and count what was acknowledged."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.conftest import make_user
from tests.faults.isolated import events_of, eventually
from tests.faults.processes import Component


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


class Writers:
    """`count` concurrent writers of `write` on `service`, started and stopped together."""

    def __init__(self, service: Component, write: Write, count: int = 8) -> None:
        self.service, self.write, self.count = service, write, count
        self.tally = Tally()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(write_until(self.service, self.write, self._stop, self.tally))
            for _ in range(self.count)
        ]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


@dataclass(frozen=True)
class Published:
    """What a deployment holds of one kind of write: its rows and their events."""

    acknowledged: int
    rows: int
    events: int
    lost: set[str]
    unpublished: set[str]
    duplicated: int
    repeated_event_ids: int
    phantom: set[str]

    def figures(self) -> str:
        return (
            f"acknowledged={self.acknowledged} rows={self.rows} events={self.events} "
            f"lost={len(self.lost)} unpublished={len(self.unpublished)} "
            f"duplicated={self.duplicated}"
        )

    def assert_exactly_once(self) -> None:
        assert not self.lost, f"acknowledged but not stored: {sorted(self.lost)[:5]}"
        assert not self.unpublished, f"stored, never published: {sorted(self.unpublished)[:5]}"
        assert self.duplicated == 0 and self.repeated_event_ids == 0
        assert not self.phantom, f"events of things never committed: {sorted(self.phantom)[:5]}"


async def published(
    database_url: str, nats_url: str, prefix: str, write: Write, tally: Tally, within: float = 20
) -> Published:
    """Compare the acknowledged writes, the table and `EVENTS`, once every row's
    event is there (or `within` seconds passed)."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = {str(r["id"]) for r in await connection.fetch(f"SELECT id FROM {write.table}")}
    finally:
        await connection.close()
    envelopes: list[dict[str, Any]] = []

    async def every_row_published() -> bool:
        nonlocal envelopes
        envelopes = await events_of(nats_url, prefix, write.subject)
        return {write.event_key(e["data"]) for e in envelopes} >= rows

    await eventually(every_row_published, within=within)
    per_thing = Counter(write.event_key(e["data"]) for e in envelopes)
    per_event_id = Counter(e["id"] for e in envelopes)
    return Published(
        acknowledged=len(tally.acknowledged),
        rows=len(rows),
        events=len(envelopes),
        lost=tally.acknowledged - rows,
        unpublished=rows - set(per_thing),
        duplicated=sum(n - 1 for n in per_thing.values() if n > 1),
        repeated_event_ids=sum(n - 1 for n in per_event_id.values() if n > 1),
        phantom=set(per_thing) - rows,
    )
