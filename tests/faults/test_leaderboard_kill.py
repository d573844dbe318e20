"""SIGKILL the leaderboard mid-ingest, republish events under other message ids, restart.

The leaderboard runs as a real process on a deployment of its own. A backlog
of `posts.post.created` events is in `EVENTS` before it starts; it is killed
while working through them; then some events it had applied and some it had
not are published again under another `Nats-Msg-Id` (so JetStream keeps both
copies, as after a producer's retry past the duplicate window). After the
restart every event counts exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from community_shared.events import Envelope, encode_envelope, make_event
from community_shared.streams import ensure_event_stream

from tests.conftest import make_user
from tests.faults.isolated import IsolatedDeployment, eventually, isolated_deployment, started
from tests.integration.leaderboard.leaderboard_support import post_created

STUDENTS = 50
POSTS_EACH = 100
REPUBLISHED = 1_000  # from the start of the backlog (applied) and from its end (not yet)


@pytest.fixture
async def own(infra: Any) -> AsyncIterator[IsolatedDeployment]:
    async for made in isolated_deployment(infra):
        yield made


def backlog() -> list[Envelope]:
    at = dt.datetime.now(dt.UTC)
    envelopes = []
    for _ in range(STUDENTS):
        author = make_user("student")
        for _ in range(POSTS_EACH):
            data = post_created(author, uuid.uuid4(), at)
            envelopes.append(
                make_event("posts.post.created", data, source="posts", actor_id=author.id)
            )
    return envelopes


async def publish(js: Any, subject: str, envelopes: list[Envelope], *, again: bool) -> None:
    """Publish in pipelined chunks; `again` uses another message id than the event id."""
    for start in range(0, len(envelopes), 500):
        await asyncio.gather(
            *(
                js.publish(
                    subject,
                    encode_envelope(envelope),
                    headers={"Nats-Msg-Id": f"again-{envelope.id}" if again else str(envelope.id)},
                )
                for envelope in envelopes[start : start + 500]
            )
        )


async def test_sigkill_mid_ingest_and_republished_duplicates_count_once(
    own: IsolatedDeployment, tmp_path: Path
) -> None:
    settings = own.settings("leaderboard")
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    # What the killed process had pulled comes back after the ack wait (30 s by
    # default); a short one keeps the test short.
    service = own.component("leaderboard", tmp_path, LEADERBOARD_ACK_WAIT_SECONDS="3")
    database = await asyncpg.connect(own.database_url)
    try:
        await ensure_event_stream(js, settings)
        events = backlog()
        total = len(events)
        subject = settings.subject("posts.post.created")
        await publish(js, subject, events, again=False)

        async def applied() -> int:
            try:
                return int(
                    await database.fetchval("SELECT count(*) FROM leaderboard.applied_events")
                )
            except asyncpg.UndefinedTableError:  # not migrated yet
                return 0

        await started(service)
        deadline = time.monotonic() + 60
        while (done := await applied()) < total // 10:
            assert time.monotonic() < deadline, f"only {done} events applied"
            await asyncio.sleep(0.02)
        await service.kill()
        applied_at_kill = await applied()
        assert applied_at_kill < total, "the backlog was through before the kill"

        again = events[:REPUBLISHED] + events[-REPUBLISHED:]
        await publish(js, subject, again, again=True)
        restart_seconds = await started(service)

        stream = settings.stream_name("EVENTS")
        durable = settings.stream_name("leaderboard_posts")

        async def through() -> bool:
            info = await js.consumer_info(stream, durable)
            return not info.num_pending and not info.num_ack_pending

        began = time.monotonic()
        assert await eventually(through, within=90), "the backlog was not worked through"
        catch_up_seconds = time.monotonic() - began

        distinct = await applied()
        posts = await database.fetch(
            "SELECT posts, count(*) AS students FROM leaderboard.students GROUP BY posts"
        )
        async with httpx.AsyncClient(timeout=5) as http:
            board = (await http.get(f"{service.base_url}/leaderboard?limit=100")).json()["items"]
    finally:
        await service.stop()
        await database.close()
        await nc.drain()

    print(
        f"FAULT leaderboard SIGKILL mid-ingest: events={total} applied_at_kill={applied_at_kill} "
        f"republished={len(again)} applied_after={distinct} "
        f"restart_to_ready={restart_seconds:.2f}s "
        f"catch_up={catch_up_seconds:.1f}s per_student_posts={[dict(r) for r in posts]}"
    )
    assert distinct == total
    assert [dict(r) for r in posts] == [{"posts": POSTS_EACH, "students": STUDENTS}]
    assert len(board) == STUDENTS
    assert len({item["points"] for item in board}) == 1
