"""Sequence numbers across instances, recovery with `since`, the inbox cursor, coalescing."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import httpx
from community_gateway.config import GatewayConfig
from websockets.asyncio.client import connect

from tests.conftest import eventually, make_user
from tests.integration.gateway.conftest import is_event, post_data


def feed_event(frame: dict[str, Any]) -> bool:
    return frame.get("op") == "event" and frame["channel"] == "feed"


def ids_of(posts: Any) -> set[str]:
    return {post["id"] for post in posts}


async def test_two_instances_deliver_the_same_event_with_the_same_seq(
    gateway: Any, gateway_factory: Any, ws_connect: Any, publish_event: Any
) -> None:
    second = await gateway_factory()
    assert second.port != gateway.port
    async with ws_connect(gateway) as a, ws_connect(second) as b:
        sub_a, sub_b = await a.subscribe("feed"), await b.subscribe("feed")
        assert sub_a["seq"] == sub_b["seq"]
        posts = [post_data(content=f"p{n}") for n in range(3)]
        for post in posts:
            await publish_event("posts.post.created", post)
        ours = is_event("feed", ids=ids_of(posts))
        frames_a = [await a.recv_until(ours) for _ in posts]
        frames_b = [await b.recv_until(ours) for _ in posts]
        assert frames_a == frames_b
        assert [f["data"]["id"] for f in frames_a] == [p["id"] for p in posts]
        assert [f["seq"] for f in frames_a] == sorted({f["seq"] for f in frames_a})


async def test_since_recovers_exactly_the_missed_events_then_live(
    gateway: Any, gateway_factory: Any, ws_connect: Any, publish_event: Any
) -> None:
    async with ws_connect(gateway) as ws:
        await ws.subscribe("feed")
        seen = post_data(content="seen")
        await publish_event("posts.post.created", seen)
        last_seen = (await ws.recv_until(is_event("feed", ids={seen["id"]})))["seq"]
    missed = [post_data(content=f"missed {n}") for n in range(4)]
    secret = post_data(visibility="members", content="not for guests")
    for post in (*missed[:2], secret, *missed[2:]):
        await publish_event("posts.post.created", post)
    # Make sure the router has written them all before reconnecting.
    member = make_user()
    async with ws_connect(gateway, member.token) as probe:
        await probe.subscribe("feed", since=last_seen)
        await probe.recv_until(lambda f: feed_event(f) and f["data"]["id"] == missed[-1]["id"])
    # Reconnect (to another instance: the seq means the same everywhere).
    other = await gateway_factory()
    async with ws_connect(other) as ws:
        subscribed = await ws.subscribe("feed", since=last_seen)
        assert subscribed["recovered"] is True
        history = [f for f in await ws.drain(0.5) if feed_event(f)]
        seqs = [f["seq"] for f in history]
        assert seqs == sorted(set(seqs)) and seqs[0] > last_seen and seqs[-1] <= subscribed["seq"]
        # Other tests' posts may share the channel; ours are all there, in order, once.
        ours = [f["data"]["id"] for f in history if f["data"]["id"] in ids_of([*missed, secret])]
        assert ours == [p["id"] for p in missed]
        live = post_data(content="live")
        await publish_event("posts.post.created", live)
        frame = await ws.recv_until(is_event("feed", ids={live["id"]}))
        assert frame["seq"] > subscribed["seq"]
    # A member recovering the same range also gets the members-only post, in its place.
    async with ws_connect(gateway, member.token) as ws:
        await ws.subscribe("feed", since=last_seen)
        frames = [f for f in await ws.drain(0.5) if feed_event(f)]
        ids = [f["data"]["id"] for f in frames if f["data"]["id"] in ids_of([*missed, secret])]
        assert ids == [
            missed[0]["id"],
            missed[1]["id"],
            secret["id"],
            missed[2]["id"],
            missed[3]["id"],
        ]


async def test_since_that_reaches_nothing_is_not_recovered(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        latest = (await ws.subscribe("leaderboard"))["seq"]
        answer = await ws.subscribe("leaderboard", since=latest + 10_000_000)
        assert answer["op"] == "subscribed" and answer["recovered"] is False
        answer = await ws.subscribe("leaderboard", since=latest)
        assert answer["recovered"] is True  # nothing happened since


async def test_inbox_unread_count_and_read_cursor(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    author = make_user()
    likers = [make_user() for _ in range(3)]
    post = post_data(author_id=author.id)
    for n, liker in enumerate(likers, start=1):
        like = {
            "post_id": post["id"],
            "user_id": str(liker.id),
            "user_name": liker.name,
            "likes_count": n,
            "post_author_id": str(author.id),
            "visibility": "public",
        }
        await publish_event("posts.post.liked", like, actor_id=liker.id)

    async def unread() -> int:
        async with ws_connect(gateway, author.token) as ws:
            return int(ws.hello["unread"])

    async def three_unread() -> bool:
        return await unread() == 3

    await eventually(three_unread)
    async with ws_connect(gateway, author.token) as ws:
        inbox = f"user:{author.id}"
        answer = await ws.subscribe(inbox, since=0)
        assert answer["recovered"] is True
        notes = [f for f in await ws.drain(0.4) if f.get("channel") == inbox]
        assert [n["data"]["likes_count"] for n in notes] == [1, 2, 3]
        assert all(n["type"] == "like.received" for n in notes)
        ok = await ws.request({"op": "read", "channel": inbox, "seq": notes[1]["seq"]})
        assert ok["op"] == "ok"
        # The cursor never moves back.
        await ws.request({"op": "read", "channel": inbox, "seq": notes[0]["seq"]})
        other = await ws.request({"op": "read", "channel": f"user:{uuid.uuid4()}", "seq": 1})
        assert other["code"] == "forbidden"
    assert await unread() == 1
    async with ws_connect(gateway, author.token) as ws:
        # A cursor beyond the newest event is clamped: future events stay unread.
        await ws.request({"op": "read", "channel": f"user:{author.id}", "seq": 10**15})
    assert await unread() == 0
    like = {
        "post_id": post["id"],
        "user_id": str(likers[0].id),
        "user_name": "x",
        "likes_count": 4,
        "post_author_id": str(author.id),
        "visibility": "public",
    }
    await publish_event("posts.post.liked", like, actor_id=likers[0].id)

    async def one_unread() -> bool:
        return await unread() == 1

    await eventually(one_unread)


async def test_resource_stats_burst_is_coalesced_and_the_last_is_exact(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    resource_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with ws_connect(gateway) as ws:
        await ws.subscribe("resources")
        for n in range(1, 31):
            stats = {
                "resource_id": resource_id,
                "user_id": None,
                "download_count": n,
                "rating_average": None,
                "rating_count": 0,
            }
            await publish_event("resources.resource.downloaded", stats)
        rated = {
            "resource_id": other_id,
            "user_id": str(uuid.uuid4()),
            "rating": 5,
            "download_count": 1,
            "rating_average": 5.0,
            "rating_count": 1,
        }
        await publish_event("resources.resource.rated", rated)
        frames: list[dict[str, Any]] = []
        while not any(
            f["data"].get("download_count") == 30
            for f in frames
            if f["data"].get("resource_id") == resource_id
        ):
            frame = await ws.recv_until(lambda f: f.get("op") == "event", timeout=5)
            frames.append(frame)
        frames += [f for f in await ws.drain(0.5) if f.get("op") == "event"]
    mine = [f for f in frames if f["data"]["resource_id"] == resource_id]
    assert all(f["type"] == "resource.stats" for f in mine)
    counts = [f["data"]["download_count"] for f in mine]
    assert counts[-1] == 30 and counts == sorted(counts)
    assert len(mine) < 10, counts  # 30 updates in well under a second: a handful of frames
    assert mine[-1]["data"] == {
        "resource_id": resource_id,
        "download_count": 30,
        "rating_average": None,
        "rating_count": 0,
    }
    [theirs] = [f for f in frames if f["data"]["resource_id"] == other_id]
    assert theirs["data"]["rating_average"] == 5.0


async def test_slow_client_is_closed_with_4008_while_a_fast_one_keeps_up(
    gateway_factory: Any, ws_connect: Any, publish_event: Any
) -> None:
    server = await gateway_factory(config=GatewayConfig(queue_bound=8))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    slow = await connect(server.url, sock=sock, max_queue=1, compression=None)
    try:
        await slow.recv()  # hello
        await slow.send('{"op":"subscribe","channel":"feed"}')
        await slow.recv()  # subscribed; from now on it reads nothing
        async with ws_connect(server) as fast:
            await fast.subscribe("feed")
            big = "x" * 32_000
            posts = [post_data(content=f"{n} {big}") for n in range(400)]
            got: set[str] = set()
            # In groups of 20, each read before the next is published: the fast
            # client keeps up (a burst of 400 at once would test the burst, not
            # the slow client), while the slow one reads nothing at all.
            for start in range(0, len(posts), 20):
                group = posts[start : start + 20]
                await asyncio.gather(*(publish_event("posts.post.created", p) for p in group))
                ours = is_event("feed", ids=ids_of(group))
                got |= {(await fast.recv_until(ours, timeout=10))["data"]["id"] for _ in group}
            assert got == {p["id"] for p in posts}

            async def slow_was_dropped() -> bool:
                return server.connection_count == 1

            await eventually(slow_was_dropped, timeout=10)
            assert (await fast.request({"op": "ping"}))["op"] == "pong"
        # The slow client, reading at last, finds the close code at the end.
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 5)
        except Exception:
            pass
        assert slow.protocol.close_rcvd is not None
        assert slow.protocol.close_rcvd.code == 4008
    finally:
        await slow.close()
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"http://127.0.0.1:{server.port}/metrics")).text
    assert 'gateway_closes_total{code="4008"}' in metrics
