"""100 clients behind a proxy that cuts their connections every 1-3 s (SPEC §9 recovery).

While posts are created at ~10/s and inbox events are produced for every
client (domain events published to EVENTS as the services' relays do, so
that the figures do not depend on the database's speed), a TCP proxy between the clients and a
real gateway cuts each connection 1-3 s after it opens, with 20 ms of latency
each way. Clients reconnect and resubscribe with `since` (the last seq they
saw) on `feed` and on their `user:` channel. Each must end up with every
event exactly once, in order: delivery ratio 100%, 0 duplicates, 0 out of
order, on both channels.

Short form ~20 s of faults; `FAULTS_LONG=1` runs 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from typing import Any
from urllib.parse import quote

import msgspec
from websockets.asyncio.client import connect

from tests.conftest import User, make_user
from tests.faults.delivery import DomainEvents, Tally, fault_line, tally
from tests.faults.gatewayprocess import gateway_process
from tests.faults.tcpproxy import TcpProxy

CLIENTS = 100
FAULT_SECONDS = 60.0 if os.environ.get("FAULTS_LONG") == "1" else 20.0
POSTS_PER_SECOND = 10.0
INBOX_EVENTS_PER_SECOND = 30.0
PROXY_DELAY = 0.02


class FlakyClient:
    """Reconnects after every cut and resumes `feed` and its inbox from the last seq it saw."""

    def __init__(self, user: User, url: str) -> None:
        self.user = user
        self.inbox = f"user:{user.id}"
        self.url = f"{url}?token={quote(user.token)}"
        self.frames: dict[str, list[dict[str, Any]]] = {"feed": [], self.inbox: []}
        self.last: dict[str, int] = {}
        self.connections = 0
        self.not_recovered = 0
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # A cut shows up as any of websockets' or the socket's errors.
            with contextlib.suppress(Exception):
                await self._connection()
            await asyncio.sleep(random.uniform(0.02, 0.2))

    async def _connection(self) -> None:
        # proxy=None: no look-up of proxy settings in the environment per connection.
        async with connect(
            self.url, open_timeout=5, compression=None, max_queue=None, proxy=None
        ) as ws:
            self.connections += 1
            hello = msgspec.json.decode(await ws.recv())
            assert hello["op"] == "hello"
            if not self.ready.is_set():
                # The starting point: the channels' latest seqs (no fault yet).
                for channel in self.frames:
                    frame = {"op": "subscribe", "channel": channel}
                    await ws.send(msgspec.json.encode(frame).decode())
                    while (answer := msgspec.json.decode(await ws.recv()))["op"] != "subscribed":
                        self._note(answer)
                    self.last.setdefault(channel, answer["seq"])
                self.ready.set()
            else:
                for channel in self.frames:
                    frame = {"op": "subscribe", "channel": channel, "since": self.last[channel]}
                    await ws.send(msgspec.json.encode(frame).decode())
            async for message in ws:
                self._note(msgspec.json.decode(message))

    def _note(self, frame: dict[str, Any]) -> None:
        if frame.get("op") == "event" and frame.get("channel") in self.frames:
            self.frames[frame["channel"]].append(frame)
            self.last[frame["channel"]] = frame["seq"]
        elif frame.get("op") == "subscribed" and frame.get("recovered") is False:
            self.not_recovered += 1

    def has(self, channel: str, ids: set[str]) -> bool:
        return ids <= {f["data"].get("id") for f in self.frames[channel]}


async def test_clients_behind_a_cutting_proxy_get_everything_once_in_order(
    gateway: Any, settings_for: Any, nats_client: Any
) -> None:
    settings = settings_for("gateway")
    async with gateway_process(settings) as port:
        events = DomainEvents(nats_client.jetstream(), settings)
        await behind_a_cutting_proxy(port, events)


async def behind_a_cutting_proxy(port: int, events: DomainEvents) -> None:
    proxy = TcpProxy(port, lifetime=(1.0, 3.0), delay=PROXY_DELAY, seed=7)
    await proxy.start()
    url = f"ws://127.0.0.1:{proxy.port}/ws"
    clients = [FlakyClient(make_user(), url) for _ in range(CLIENTS)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in clients]
    posts: list[str] = []
    badges: dict[uuid.UUID, list[str]] = {c.user.id: [] for c in clients}
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 60)
        proxy.cutting = True
        timings = {"ready": time.monotonic()}

        async def create_post(n: int) -> None:
            post_id = str(uuid.uuid4())
            posts.append(post_id)
            await events.post(post_id, f"flaky {n}")

        async def award_badge(n: int) -> None:
            client = clients[n % CLIENTS]
            badge_id = f"flaky-{n}-{uuid.uuid4().hex[:6]}"
            badges[client.user.id].append(badge_id)
            await events.badge(client.user.id, badge_id)

        async def at_rate(rate: float, produce: Any) -> None:
            """Start one production every 1/rate s (without waiting for the previous one)."""
            start = time.monotonic()
            started: list[asyncio.Task[None]] = []
            while time.monotonic() < start + FAULT_SECONDS:
                n = len(started)
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
                started.append(asyncio.create_task(produce(n)))
            await asyncio.gather(*started)

        await asyncio.gather(
            at_rate(POSTS_PER_SECOND, create_post), at_rate(INBOX_EVENTS_PER_SECOND, award_badge)
        )
        proxy.cutting = False  # the network heals: everything must now arrive
        timings["produced"] = time.monotonic()

        expected_posts = set(posts)
        deadline = time.monotonic() + 30 + FAULT_SECONDS  # catching up takes a while
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110 (polled)
            c.has("feed", expected_posts) and c.has(c.inbox, set(badges[c.user.id]))
            for c in clients
        ):
            await asyncio.sleep(0.2)
        timings["converged"] = time.monotonic()
    finally:
        stop.set()
        proxy.cutting = False
        await proxy.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    feed, inbox = Tally(), Tally()
    for client in clients:
        feed.add(tally(posts, client.frames["feed"]))
        inbox.add(tally(badges[client.user.id], client.frames[client.inbox]))
    connections = sum(c.connections for c in clients)
    not_recovered = sum(c.not_recovered for c in clients)
    total = Tally()
    total.add(feed)
    total.add(inbox)
    print(
        "\n"
        + fault_line(
            "flaky_network",
            expected=total.expected,
            delivered=total.delivered,
            duplicated=total.duplicated,
            lost=total.lost,
            out_of_order=total.out_of_order,
            feed=f"{feed.delivered}/{feed.expected}",
            feed_duplicated=feed.duplicated,
            feed_out_of_order=feed.out_of_order,
            inbox=f"{inbox.delivered}/{inbox.expected}",
            inbox_duplicated=inbox.duplicated,
            inbox_out_of_order=inbox.out_of_order,
            clients=CLIENTS,
            fault_seconds=FAULT_SECONDS,
            cuts=proxy.cuts,
            connections=connections,
            not_recovered=not_recovered,
            converged_s=timings["converged"] - timings["produced"],
        )
    )
    assert proxy.cuts >= CLIENTS * FAULT_SECONDS / 3 * 0.5, "the proxy hardly cut anything"
    for result in (feed, inbox):
        assert result.expected > 0
        assert (result.ratio, result.duplicated, result.out_of_order) == (1.0, 0, 0), result
