"""SIGKILL of the routing gateway: the other instance routes again within 2 s (SPEC §9).

200 guests on the standby instance follow `feed`; domain events are published
into `EVENTS` at a steady rate; the routing instance is SIGKILLed halfway.
Measured: time from the kill to the first delivered event published after it,
the longest silence any client saw, and publish→frame latency (p50, p99) across
the kill. Every event must reach every client exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import nats
from community_shared.events import encode_envelope, make_event

from tests.faults.conftest import Deployment
from tests.faults.feed import FeedClient, open_clients, tally, wait_for_all
from tests.faults.processes import NatsProcess
from tests.integration.gateway.conftest import post_data

CLIENTS = 200
RATE = 10.0
"""Events per second."""
BEFORE_KILL = 2.0
AFTER_KILL = 3.0
TAKEOVER_BOUND = 2.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def longest_silence(client: FeedClient, since: float) -> float:
    arrivals = sorted(t for times in client.received.values() for t in times if t >= since)
    return max((b - a for a, b in itertools.pairwise(arrivals)), default=0.0)


async def publish_steadily(
    js: Any, prefix: str, published: dict[str, float], stop: asyncio.Event
) -> None:
    next_at = time.monotonic()
    while not stop.is_set():
        post = post_data(content=f"steady {uuid.uuid4().hex[:6]}")
        envelope = make_event("posts.post.created", post, source="posts", actor_id=None)
        published[post["id"]] = time.monotonic()
        await js.publish(
            f"{prefix}posts.post.created",
            encode_envelope(envelope),
            headers={"Nats-Msg-Id": str(envelope.id)},
        )
        next_at += 1 / RATE
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def test_router_takeover_within_two_seconds(
    deployment: Deployment, nats_proc: NatsProcess
) -> None:
    gateways = [await deployment.gateway("gateway-a"), await deployment.gateway("gateway-b")]
    await asyncio.gather(*(gateway.wait_ready() for gateway in gateways))
    router = await deployment.router_among(gateways)
    standby = next(g for g in gateways if g is not router)
    clients = await open_clients(standby.ws_url, CLIENTS)
    nc = await nats.connect(nats_proc.url)
    published: dict[str, float] = {}
    stop = asyncio.Event()
    publisher = asyncio.create_task(
        publish_steadily(nc.jetstream(), deployment.prefix, published, stop)
    )
    try:
        await asyncio.sleep(BEFORE_KILL)
        killed_at = time.monotonic()
        await router.kill()
        await asyncio.sleep(AFTER_KILL)
    finally:
        stop.set()
        await publisher
        await nc.close()
    ids = set(published)
    await wait_for_all(clients, ids, timeout=15)
    result = tally(clients, ids)
    after_kill = {post_id for post_id, at in published.items() if at > killed_at}
    first_after = min(
        (
            times[0]
            for c in clients
            for post_id, times in c.received.items()
            if post_id in after_kill
        ),
        default=float("inf"),
    )
    gap = first_after - killed_at
    silence = max(longest_silence(c, killed_at - 1.0) for c in clients)
    latencies = [
        (published[post_id], times[0] - published[post_id])
        for c in clients
        for post_id, times in c.received.items()
        if post_id in published
    ]
    p50, p99 = (percentile([lat for _, lat in latencies], f) for f in (0.5, 0.99))
    # Before the kill, far enough from it that the takeover delays none of them.
    steady_p99 = percentile([lat for at, lat in latencies if at < killed_at - 0.5], 0.99)
    print(
        f"FAULT router-kill-takeover: events={len(ids)} clients={CLIENTS} "
        f"expected={result.expected} delivered={result.delivered} "
        f"duplicated={result.duplicated} lost={result.lost} 5xx=0 "
        f"gap={gap:.3f}s longest_silence={silence:.3f}s "
        f"publish_to_frame_p50={p50 * 1000:.0f}ms p99={p99 * 1000:.0f}ms "
        f"p99_before_kill={steady_p99 * 1000:.0f}ms rate={RATE:.0f}/s"
    )
    for client in clients:
        await client.close()
    assert (result.lost, result.duplicated) == (0, 0)
    assert gap <= TAKEOVER_BOUND, f"takeover took {gap:.3f}s"
    # Nothing taken by the dead router waits for the ack wait (10 s) to come back.
    assert silence <= TAKEOVER_BOUND + 1.0, f"a client saw {silence:.3f}s without an event"
