"""NATS restarts under writes, then the routing gateway is killed: no post is lost.

Two gateway processes and the posts service run on the test's own nats-server.
Clients on both gateways follow `feed` while posts are written at a steady
pace. The nats-server is killed for a few seconds and restarted on the same
store directory; once routing works again, the gateway that routes is
SIGKILLed. Every post the service accepted (2xx) must reach every client of
the surviving gateway exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field

import httpx

from tests.conftest import make_user
from tests.faults.conftest import Deployment
from tests.faults.feed import open_clients, tally, wait_for_all
from tests.faults.processes import NatsProcess

OUTAGE_SECONDS = 3.0
WRITERS = 2
PAUSE = 0.05
"""Each writer's pause between posts (about 30 posts per second in all)."""


@dataclass
class Writer:
    """Posts as fresh students (one post each: the hourly limit is per user)."""

    base_url: str
    accepted: dict[str, float] = field(default_factory=dict)
    server_errors: int = 0
    other_failures: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write(n)) for n in range(WRITERS)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def accepted_since(self, moment: float) -> set[str]:
        return {post_id for post_id, at in self.accepted.items() if at >= moment}

    async def _write(self, n: int) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            while not self._stop.is_set():
                user = make_user("student")
                try:
                    response = await client.post(
                        "/posts", json={"content": f"fault post {n}"}, headers=user.headers
                    )
                except httpx.HTTPError:
                    self.other_failures += 1
                else:
                    if 200 <= response.status_code < 300:
                        self.accepted[response.json()["id"]] = time.monotonic()
                    elif response.status_code >= 500:
                        self.server_errors += 1
                    else:
                        self.other_failures += 1
                await asyncio.sleep(PAUSE)


async def test_nats_restart_then_router_kill_loses_no_post(
    deployment: Deployment, nats_proc: NatsProcess
) -> None:
    gateways = [await deployment.gateway("gateway-a"), await deployment.gateway("gateway-b")]
    posts = await deployment.posts()
    await asyncio.gather(*(component.wait_ready() for component in (*gateways, posts)))
    await deployment.router_among(gateways)
    clients = {g.name: await open_clients(g.ws_url, 3) for g in gateways}
    everyone = [client for group in clients.values() for client in group]
    writer = Writer(posts.base_url)
    writer.start()
    try:
        await asyncio.sleep(1.0)
        await nats_proc.kill(signal.SIGKILL)
        await asyncio.sleep(OUTAGE_SECONDS)
        restarted = time.monotonic()
        await nats_proc.start()

        # Routing works again once a post accepted after the restart reaches a client.
        deadline = time.monotonic() + 20
        while not any(
            post_id in client.received
            for post_id in writer.accepted_since(restarted)
            for client in everyone
        ):
            assert time.monotonic() < deadline, "nothing routed within 20 s of the restart"
            await asyncio.sleep(0.1)

        router = await deployment.router_among(gateways)
        survivor = next(g for g in gateways if g is not router)
        killed_at = time.monotonic()
        await router.kill()
        await asyncio.sleep(2.0)
    finally:
        await writer.stop()

    watching = clients[survivor.name]
    ids = set(writer.accepted)
    await wait_for_all(watching, ids, timeout=15)
    result = tally(watching, ids)
    # From the kill to the first post written after it reaching a surviving client.
    gap = (
        min(
            (
                times[0]
                for client in watching
                for post_id, times in client.received.items()
                if post_id in writer.accepted_since(killed_at)
            ),
            default=float("inf"),
        )
        - killed_at
    )
    print(
        f"FAULT nats-restart-then-router-kill: posts={len(ids)} clients={len(watching)} "
        f"expected={result.expected} delivered={result.delivered} "
        f"duplicated={result.duplicated} lost={result.lost} 5xx={writer.server_errors} "
        f"other_failures={writer.other_failures} outage={OUTAGE_SECONDS}s gap={gap:.3f}s"
    )
    for client in everyone:
        await client.close()
    assert ids, "no post was accepted"
    assert (result.lost, result.duplicated) == (0, 0)
    assert writer.server_errors == 0
