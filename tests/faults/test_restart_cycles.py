"""Every component, killed with SIGKILL and started again, under a little load.

Each service and the gateway runs as its own process (as in production),
against a private Postgres and Redis and the session's NATS prefix. Every
cycle kills all of them at once (no shutdown at all) and starts them again;
each must answer `/ready` 200 within `READY_BOUND` seconds: start-up never
hangs (the leaderboard's used to, now and then, on a cancellation its outbox
relay swallowed). Live processes never answer a 5xx other than 503, and after
the last cycle a new post still reaches the leaderboard (relays and consumers
work). `FAULT_RESTART_CYCLES` sets the number of cycles (3 by default).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import asyncpg
import httpx

from tests.conftest import JWT_SECRET, RUN_ID, Infra, make_user
from tests.faults.servers import (
    Outcomes,
    ServiceProcess,
    private_postgres,
    private_redis,
    request,
    warm_launcher,
)

READY_BOUND = 30.0
REQUEST_BOUND = 10.0
"""A request to a live process taking longer is a hang (the machine is busy
starting five processes meanwhile)."""
CYCLES = int(os.environ.get("FAULT_RESTART_CYCLES", "3"))
COMPONENTS = {
    "posts": "community_posts.app",
    "resources": "community_resources.app",
    "goals": "community_goals.app",
    "leaderboard": "community_leaderboard.app",
    "gateway": "community_gateway.app",
}


async def wait_ready(component: ServiceProcess, started: float) -> float:
    """Seconds from `started` until `/ready` answers 200; fails after READY_BOUND."""
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            try:
                if (await client.get(f"{component.url}/ready")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > READY_BOUND:
                raise AssertionError(
                    f"{component.name} not ready within {READY_BOUND:g} s (start-up hung?)\n"
                    + component.tail()
                )
            await asyncio.sleep(0.1)


async def start_all(components: list[ServiceProcess]) -> dict[str, float]:
    started = time.monotonic()
    modules = [c.module for c in components]
    for component in components:
        component.start(modules)
    times = await asyncio.gather(*(wait_ready(c, started) for c in components))
    return {c.name: t for c, t in zip(components, times, strict=True)}


async def test_every_component_restarts_after_sigkill_under_load(
    infra: Infra, nats_client: Any
) -> None:
    warming = asyncio.create_task(asyncio.to_thread(warm_launcher, list(COMPONENTS.values())))
    with private_postgres() as postgres, private_redis() as redis_server:
        await warming
        admin = await asyncpg.connect(f"{postgres.admin_dsn}/postgres")
        await admin.execute('CREATE DATABASE "community"')
        await admin.close()
        env = {
            "DATABASE_URL": f"{postgres.admin_dsn}/community",
            "REDIS_URL": redis_server.url,
            "NATS_URL": infra.nats_url,
            "NATS_SUBJECT_PREFIX": f"{RUN_ID}rc{uuid.uuid4().hex[:4]}.",
            "REDIS_KEY_PREFIX": "",
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            "DB_POOL_MAX_SIZE": "5",
            "OUTBOX_POLL_SECONDS": "0.5",
        }
        components = [ServiceProcess(name, module, env) for name, module in COMPONENTS.items()]
        try:
            await run_cycles(components)
        finally:
            for component in components:
                component.remove()


async def run_cycles(components: list[ServiceProcess]) -> None:
    by_name = {c.name: c for c in components}
    first = await start_all(components)
    outcomes = Outcomes()
    stop = asyncio.Event()
    posted: list[str] = []  # authors of accepted posts

    async def load() -> None:
        async with httpx.AsyncClient(timeout=REQUEST_BOUND + 5) as client:
            while not stop.is_set():
                author = make_user("student")
                for method, component, path, kwargs in (
                    ("POST", "posts", "/posts", {"json": {"content": "hi"}}),
                    ("GET", "leaderboard", "/leaderboard?limit=5", {}),
                    ("GET", "goals", "/goals/tracks", {}),
                    ("GET", "resources", "/resources?limit=5", {}),
                ):
                    url = f"{by_name[component].url}{path}"
                    try:
                        response = await request(
                            outcomes, client, method, url, route=component, bound=REQUEST_BOUND,
                            headers=author.headers, **kwargs,
                        )  # fmt: skip
                    except httpx.TransportError:
                        continue  # the process is down: expected between kill and start
                    if response is not None and response.status_code == 201:
                        posted.append(str(author.id))
                await asyncio.sleep(0.05)

    traffic = asyncio.create_task(load())
    ready_times: list[float] = []
    try:
        for _ in range(CYCLES):
            await asyncio.sleep(0.3)  # some requests against the live processes
            for component in components:
                component.kill()
            ready_times.extend((await start_all(components)).values())
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await traffic

    # After the last restart, a new post still reaches the leaderboard.
    author = make_user("student")
    async with httpx.AsyncClient(timeout=5.0) as client:
        created = await client.post(
            f"{by_name['posts'].url}/posts", json={"content": "after"}, headers=author.headers
        )
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 20
        while True:
            board = await client.get(f"{by_name['leaderboard'].url}/leaderboard?limit=100")
            if str(author.id) in {i["user_id"] for i in board.json()["items"]}:
                break
            assert time.monotonic() < deadline, "events no longer reach the leaderboard"
            await asyncio.sleep(0.2)

    print(
        f"FAULT restart: components={len(components)} cycles={CYCLES}"
        f" starts={len(ready_times)} first_ready_max={max(first.values()):.1f}s"
        f" ready_max={max(ready_times):.1f}s"
        f" ready_mean={sum(ready_times) / len(ready_times):.1f}s bound={READY_BOUND:g}s"
        f" requests={outcomes.count()} 5xx={outcomes.server_errors()}"
        f" other_5xx={len(outcomes.failures)} hangs={len(outcomes.hangs)} posts={len(posted)}"
    )
    assert not outcomes.failures, outcomes.failures[:5]
    assert not outcomes.hangs, outcomes.hangs[:5]
