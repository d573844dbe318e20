"""Resubscribing with `since` on a live connection: no event is sent twice (SPEC §9)."""

from __future__ import annotations

import uuid
from typing import Any

from community_gateway.config import GatewayConfig

from tests.conftest import make_user


def badge(user_id: uuid.UUID, n: int) -> dict[str, Any]:
    return {"user_id": str(user_id), "badge": f"b{n}", "name": f"Badge {n}"}


async def test_resubscribing_the_inbox_with_since_sends_nothing_twice(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    """After a reconnect the client's `subscribe user:… since` arrives after live inbox events.

    Reported on the wire: seq 12340 (live, on the automatic subscription),
    then 12339, 12340 again (replayed for `since` 12338).
    """
    user = make_user()
    inbox = f"user:{user.id}"

    def inbox_event(frame: dict[str, Any]) -> bool:
        return frame.get("op") == "event" and frame.get("channel") == inbox

    async with ws_connect(gateway, user.token) as ws:
        assert ws.hello["channels"] == [inbox]
        for n in (1, 2):
            await publish_event("leaderboard.badge.awarded", badge(user.id, n))
        first, second = await ws.events(inbox, 2)
        assert first["seq"] < second["seq"]

        subscribed = await ws.subscribe(inbox, since=first["seq"] - 1)
        assert subscribed["op"] == "subscribed" and subscribed["seq"] >= second["seq"]
        await publish_event("leaderboard.badge.awarded", badge(user.id, 3))
        third = await ws.recv_until(inbox_event)
        wire = [first, second, *(f for f in ws.skipped if inbox_event(f)), third]
        wire += [f for f in await ws.drain(0.5) if inbox_event(f)]
        assert [f["data"]["badge"] for f in wire] == ["b1", "b2", "b3"]
        seqs = [f["seq"] for f in wire]
        assert seqs == sorted(set(seqs)), seqs


async def test_resubscribing_with_an_old_since_still_replays_what_was_never_sent(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    """Only what the connection was sent is skipped: events after it are replayed, in order."""
    user = make_user()
    inbox = f"user:{user.id}"
    async with ws_connect(gateway, user.token) as ws:
        await publish_event("leaderboard.badge.awarded", badge(user.id, 1))
        [first] = await ws.events(inbox, 1)
        await ws.request({"op": "unsubscribe", "channel": inbox})
        for n in (2, 3):
            await publish_event("leaderboard.badge.awarded", badge(user.id, n))
        # A second connection of the same user waits until the router has stored both.
        async with ws_connect(gateway, user.token) as other:
            await other.subscribe(inbox, since=first["seq"])
            seen = [f for f in other.skipped if f.get("op") == "event"]
            while len(seen) < 2:
                seen += await other.events(inbox, 1)
        await ws.subscribe(inbox, since=0)
        frames = [f for f in await ws.drain(0.5) if f.get("op") == "event"]
        assert [f["data"]["badge"] for f in frames] == ["b2", "b3"]
        assert frames[0]["seq"] > first["seq"]


async def test_a_reconnecting_client_gets_what_it_missed_then_live_in_order(
    gateway_factory: Any, ws_connect: Any, publish_event: Any
) -> None:
    """A live inbox event that comes between `hello` and the client's `since` waits its turn."""
    server = await gateway_factory(config=GatewayConfig(inbox_hold_seconds=5.0))
    user = make_user()
    inbox = f"user:{user.id}"
    async with ws_connect(server, user.token) as ws:
        await publish_event("leaderboard.badge.awarded", badge(user.id, 0))
        # This client sends no op: its live inbox events wait out the whole hold.
        [seen] = await ws.events(inbox, 1, timeout=15)
    await publish_event("leaderboard.badge.awarded", badge(user.id, 1))  # while disconnected
    async with ws_connect(server, user.token) as ws, ws_connect(server, user.token) as watcher:
        await watcher.subscribe(inbox, since=seen["seq"])  # a connection already live
        await publish_event("leaderboard.badge.awarded", badge(user.id, 2))
        while not any(f.get("data", {}).get("badge") == "b2" for f in watcher.skipped):
            watcher.skipped += await watcher.events(inbox, 1)
        # b2 has reached the instance; `ws` is still within its hold.
        answer = await ws.subscribe(inbox, since=seen["seq"])
        assert answer["recovered"] is True
        frames = [f for f in [*ws.skipped, *await ws.drain(0.5)] if f.get("op") == "event"]
        assert [f["data"]["badge"] for f in frames] == ["b1", "b2"]
