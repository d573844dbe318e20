"""Postgres goes down under reads and writes, and comes back (SPEC §3).

The posts service runs against a private Postgres cluster, which is stopped
(connections terminated, as a failover or a restart does) and started again.
While it is down every request answers 503 with Retry-After: no 500, no hang.
Once it is back, writes succeed again without restarting the service, and
nothing is half-applied: every post has exactly its one `post.created` event in
the outbox, and every post answered 201 is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
from community_shared.settings import Settings

from tests.conftest import RUN_ID, eventually, make_user
from tests.faults.servers import Outcomes, PrivatePostgres, private_postgres, request
from tests.harness import nats_hooks_ran, serve_in_this_loop

RECOVERY_BOUND = 20.0


async def test_postgres_down_and_back_under_reads_and_writes(
    settings_for: Callable[..., Settings], nats_client: Any
) -> None:
    from community_posts.app import create_app as posts_app

    with private_postgres() as server:
        admin = await asyncpg.connect(f"{server.admin_dsn}/postgres")
        await admin.execute('CREATE DATABASE "community"')
        await admin.close()
        database_url = f"{server.admin_dsn}/community"
        settings = settings_for(
            "posts",
            database_url=database_url,
            nats_subject_prefix=f"{RUN_ID}pf{uuid.uuid4().hex[:4]}.",
            redis_key_prefix=f"{RUN_ID}:pf{uuid.uuid4().hex[:4]}:",
        )
        app = posts_app(settings)
        async with serve_in_this_loop(app) as client:
            await nats_hooks_ran(app)
            await run_outage(client, server, database_url)


async def run_outage(client: Any, server: PrivatePostgres, database_url: str) -> None:
    outcomes = Outcomes()
    created: set[str] = set()
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            author = make_user("student")
            response = await request(
                outcomes, client, "POST", "/posts", route="post", headers=author.headers,
                json={"content": f"written {time.monotonic():.3f}"},
            )  # fmt: skip
            if response is not None and response.status_code == 201:
                created.add(response.json()["id"])
            await asyncio.sleep(0.02)

    async def reader() -> None:
        while not stop.is_set():
            response = await request(outcomes, client, "GET", "/posts?limit=5", route="feed")
            if response is not None and response.status_code == 200:
                for item in response.json()["items"][:1]:
                    await request(outcomes, client, "GET", f"/posts/{item['id']}", route="post_id")
            await asyncio.sleep(0.02)

    load = [asyncio.create_task(writer()), asyncio.create_task(reader())]
    recovery: float | None = None
    try:
        await asyncio.sleep(0.5)
        outcomes.phase = "stopping"  # requests begun now may still get through
        await asyncio.to_thread(server.stop, "fast")
        outcomes.phase = "down"
        await asyncio.sleep(2.0)
        ready_down = await client.get("/ready")
        outcomes.phase = "gap"
        await asyncio.sleep(0.3)

        outcomes.phase = "back"
        await asyncio.to_thread(server.start)
        back_at = time.monotonic()
        before = len(created)

        async def writes_again() -> bool:
            ready = await client.get("/ready")
            return ready.status_code == 200 and len(created) > before

        with contextlib.suppress(AssertionError):
            await eventually(writes_again, timeout=RECOVERY_BOUND, interval=0.1)
            recovery = time.monotonic() - back_at
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*load)

    conn = await asyncpg.connect(database_url)
    try:
        rows = {str(r["id"]) for r in await conn.fetch("SELECT id FROM posts.posts")}
        announced = [
            msgspec.json.decode(bytes(r["payload"]))["data"]["id"]
            for r in await conn.fetch(
                "SELECT payload FROM posts.outbox WHERE subject = 'posts.post.created'"
            )
        ]
    finally:
        await conn.close()

    print(
        f"FAULT postgres: requests={outcomes.count()} 5xx={outcomes.server_errors()}"
        f" 503={outcomes.count(status=503)} other_5xx={len(outcomes.failures)}"
        f" hangs={len(outcomes.hangs)} down_503={outcomes.count('down', 503)}"
        f"/{outcomes.count('down')} recovery="
        + (f"{recovery:.2f}s" if recovery is not None else f"none within {RECOVERY_BOUND:g}s")
        + f" posts_201={len(created)} posts_stored={len(rows)} events={len(announced)}"
    )
    assert not outcomes.failures, outcomes.failures[:5]
    assert not outcomes.hangs, outcomes.hangs[:5]
    assert not outcomes.missing_retry_after, outcomes.missing_retry_after[:5]
    assert outcomes.routes_answered("down", 503) >= {"post", "feed"}
    assert not outcomes.routes_answered("down", 201), "a write went through without Postgres"
    assert ready_down.status_code == 503 and "postgres" in ready_down.json()["failing"]
    assert recovery is not None, "writes did not succeed again without a restart"
    # Nothing half-applied: each stored post has exactly its one event, and
    # every post answered 201 is stored. (A post committed as Postgres went
    # down may have been answered 503: at most one per writer.)
    assert sorted(announced) == sorted(rows)
    assert created <= rows
    assert len(rows - created) <= 1
