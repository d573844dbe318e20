"""Redis goes down under reads and writes, and comes back empty (SPEC §3).

The leaderboard (boards in Redis) and posts (rate limits in Redis) run against
a private redis-server, which is killed and restarted without persistence, as
a crashed cache comes back. While it is down every request that needs it
answers 503 with Retry-After: no 500, no hang, and no write that skipped its
rate limit. Once it is back, without restarting anything, the boards are whole
again (rebuilt from Postgres) and rate limits are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from community_shared.settings import Settings

from tests.conftest import RUN_ID, Infra, eventually, fresh_database, make_user
from tests.faults.servers import Outcomes, PrivateRedis, private_redis, request
from tests.harness import nats_hooks_ran, serve_in_this_loop
from tests.integration.leaderboard.leaderboard_support import Events

STUDENTS = 120
RECOVERY_BOUND = 20.0


async def board_total(client: Any) -> int | None:
    response = await client.get("/leaderboard", params={"limit": 1})
    return int(response.json()["total"]) if response.status_code == 200 else None


async def board_members(client: Any) -> set[str]:
    members: set[str] = set()
    offset = 0
    while True:
        response = await client.get("/leaderboard", params={"limit": 100, "offset": offset})
        assert response.status_code == 200, response.text
        page = response.json()
        members.update(item["user_id"] for item in page["items"])
        offset += 100
        if offset >= page["total"]:
            return members


async def test_redis_down_and_back_under_reads_and_writes(
    infra: Infra, settings_for: Callable[..., Settings], nats_client: Any
) -> None:
    from community_leaderboard.app import create_app as leaderboard_app
    from community_leaderboard.config import LeaderboardConfig
    from community_posts.app import create_app as posts_app

    prefix = f"{RUN_ID}rf{uuid.uuid4().hex[:4]}."
    with private_redis() as redis_server:
        async with fresh_database(infra) as database_url:

            def settings(service: str) -> Settings:
                # Posts on a prefix of its own: its authors do not join the boards.
                return settings_for(
                    service,
                    database_url=database_url,
                    redis_url=redis_server.url,
                    nats_subject_prefix=prefix if service == "leaderboard" else f"{prefix}p.",
                    redis_key_prefix="",
                )

            lb_settings = settings("leaderboard")
            config = LeaderboardConfig.from_env({"LEADERBOARD_BOARDS_CHECK_SECONDS": "0.5"})
            lb = leaderboard_app(lb_settings, config)
            posts = posts_app(settings("posts"))
            async with (
                serve_in_this_loop(lb) as lb_client,
                serve_in_this_loop(posts) as posts_client,
            ):
                await nats_hooks_ran(lb)
                await nats_hooks_ran(posts)
                await run_outage(lb_client, posts_client, lb_settings, nats_client, redis_server)


async def run_outage(
    lb_client: Any,
    posts_client: Any,
    lb_settings: Settings,
    nats_client: Any,
    redis_server: PrivateRedis,
) -> None:
    # A community on the boards.
    events = Events(js=nats_client.jetstream(), settings=lb_settings, db=None)  # type: ignore[arg-type]
    students = [make_user("student") for _ in range(STUDENTS)]
    for student in students:
        await events.video_event(student)

    async def all_ranked() -> bool:
        return await board_total(lb_client) == STUDENTS

    await eventually(all_ranked, timeout=30, interval=0.2)
    expected = {str(s.id) for s in students}
    assert await board_members(lb_client) == expected

    outcomes = Outcomes()
    stop = asyncio.Event()
    me = students[0]

    async def reader() -> None:
        while not stop.is_set():
            await request(outcomes, lb_client, "GET", "/leaderboard?limit=20", route="board")
            await request(outcomes, lb_client, "GET", "/leaderboard/me", route="me",
                          headers=me.headers)  # fmt: skip
            await asyncio.sleep(0.02)

    async def writer() -> None:
        show = False
        while not stop.is_set():
            show = not show
            await request(
                outcomes, lb_client, "PUT", "/leaderboard/me/privacy", route="privacy",
                headers=students[1].headers,
                json={"show_on_leaderboard": True, "show_earnings": show},
            )  # fmt: skip
            author = make_user("student")
            await request(outcomes, posts_client, "POST", "/posts", route="post",
                          headers=author.headers, json={"content": "still here?"})  # fmt: skip
            await asyncio.sleep(0.02)

    load = [asyncio.create_task(reader()), asyncio.create_task(writer())]
    recovery: float | None = None
    try:
        await asyncio.sleep(0.5)
        outcomes.phase = "stopping"  # requests begun now may still get through
        redis_server.kill()
        outcomes.phase = "down"
        await asyncio.sleep(2.0)
        ready_down = await lb_client.get("/ready")
        outcomes.phase = "gap"  # requests begun while down end before Redis returns
        await asyncio.sleep(0.3)

        outcomes.phase = "back"
        redis_server.start()  # empty: nothing was saved
        back_at = time.monotonic()

        async def whole_again() -> bool:
            ready = await lb_client.get("/ready")
            return ready.status_code == 200 and await board_total(lb_client) == STUDENTS

        with contextlib.suppress(AssertionError):
            await eventually(whole_again, timeout=RECOVERY_BOUND, interval=0.1)
            recovery = time.monotonic() - back_at
        await asyncio.sleep(0.5)  # a little load on the whole boards
    finally:
        stop.set()
        await asyncio.gather(*load)

    print(
        f"FAULT redis: requests={outcomes.count()} 5xx={outcomes.server_errors()}"
        f" 503={outcomes.count(status=503)} other_5xx={len(outcomes.failures)}"
        f" hangs={len(outcomes.hangs)} down_503={outcomes.count('down', 503)}"
        f"/{outcomes.count('down')} recovery="
        + (f"{recovery:.2f}s" if recovery is not None else f"none within {RECOVERY_BOUND:g}s")
        + f" students={STUDENTS} board_after={await board_total(lb_client)}"
    )
    assert not outcomes.failures, outcomes.failures[:5]
    assert not outcomes.hangs, outcomes.hangs[:5]
    assert not outcomes.missing_retry_after, outcomes.missing_retry_after[:5]
    # While down, every route that needs Redis said so, and nothing needing it went through.
    assert outcomes.routes_answered("down", 503) >= {"board", "me", "privacy", "post"}
    for route in ("privacy", "post"):
        assert route not in outcomes.routes_answered("down", 200) | outcomes.routes_answered(
            "down", 201
        ), f"{route} went through without Redis"
    assert ready_down.status_code == 503 and "redis" in ready_down.json()["failing"]
    assert recovery is not None, "the boards were not whole again without a restart"
    assert await board_members(lb_client) == expected

    # Rate limits are exact again (once the limiter's one-second breaker has
    # let Redis be tried again): the 11th post within the hour is refused.
    async def posts_accepted() -> bool:
        probe = make_user("student")
        response = await posts_client.post("/posts", json={"content": "p"}, headers=probe.headers)
        return bool(response.status_code == 201)

    await eventually(posts_accepted, timeout=5, interval=0.2)
    author = make_user("student")
    statuses = [
        (
            await posts_client.post("/posts", json={"content": f"n{i}"}, headers=author.headers)
        ).status_code
        for i in range(11)
    ]
    assert statuses == [201] * 10 + [429], statuses


async def test_connections_left_by_a_redis_restart_fail_nothing(
    settings_for: Callable[..., Settings],
) -> None:
    """Every pooled connection is dead after a restart; the shared client must
    replace them without failing a command (stale connections once made
    greetings report `unread` 0 and rate checks fail for minutes)."""
    from community_shared.connections import create_redis

    with private_redis() as redis_server:
        client = create_redis(settings_for("gateway", redis_url=redis_server.url))
        try:
            await asyncio.gather(*(client.set(f"k{i}", i) for i in range(20)))  # 20 connections
            pooled = len(client.connection_pool._available_connections)  # type: ignore[attr-defined]
            redis_server.kill()
            redis_server.start()
            started = time.monotonic()
            results = await asyncio.gather(
                *(client.incr(f"k{i}") for i in range(20)), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            print(
                f"FAULT redis-stale: pooled={pooled} commands=20 failed={len(failed)}"
                f" took={time.monotonic() - started:.2f}s"
            )
            assert not failed, failed[:3]
            assert results == [1] * 20  # the restarted Redis is empty
        finally:
            await client.aclose()
