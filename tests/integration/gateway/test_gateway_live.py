"""Subscribing, live delivery, audiences, authorization and frame errors, through a real gateway."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import make_user
from tests.integration.gateway.conftest import is_event, post_data


async def test_subscribe_feed_and_receive_post_created(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    author = make_user()
    async with ws_connect(gateway) as ws:
        subscribed = await ws.subscribe("feed")
        assert subscribed["op"] == "subscribed"
        assert subscribed["channel"] == "feed"
        assert isinstance(subscribed["seq"], int)
        assert subscribed["recovered"] is False
        data = post_data(author_id=author.id, content="first!")
        envelope = await publish_event("posts.post.created", data, actor_id=author.id)
        frame = await ws.recv_until(is_event("feed", "post.created", {data["id"]}))
        assert frame["seq"] > subscribed["seq"]
        assert frame["data"] == data
        assert frame["ts"].endswith("Z")
        assert frame["ts"][:19] == envelope.occurred_at.isoformat()[:19]
        assert set(frame) == {"op", "channel", "seq", "type", "data", "ts"}


async def test_members_only_posts_reach_members_only(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    member, lapsed = make_user(), make_user(member=False)
    async with (
        ws_connect(gateway) as guest_ws,
        ws_connect(gateway, lapsed.token) as lapsed_ws,
        ws_connect(gateway, member.token) as member_ws,
    ):
        for ws in (guest_ws, lapsed_ws, member_ws):
            assert (await ws.subscribe("feed"))["op"] == "subscribed"
        secret = post_data(visibility="members", content="members only")
        public = post_data(content="for everyone")
        await publish_event("posts.post.created", secret)
        await publish_event("posts.post.created", public)
        ours = is_event("feed", ids={secret["id"], public["id"]})
        got = await member_ws.recv_until(ours)
        assert got["data"]["id"] == secret["id"]
        assert (await member_ws.recv_until(ours))["data"]["id"] == public["id"]
        for ws in (guest_ws, lapsed_ws):
            frame = await ws.recv_until(ours)
            assert frame["data"]["id"] == public["id"]
            assert all(f.get("data", {}).get("id") != secret["id"] for f in ws.skipped)


async def test_likes_update_the_feed_and_notify_the_author(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    author, liker = make_user(), make_user()
    post = post_data(author_id=author.id)
    like = {
        "post_id": post["id"],
        "user_id": str(liker.id),
        "user_name": liker.name,
        "likes_count": 1,
        "post_author_id": str(author.id),
        "visibility": "public",
    }
    async with (
        ws_connect(gateway, author.token) as author_ws,
        ws_connect(gateway, liker.token) as liker_ws,
    ):
        await liker_ws.subscribe("feed")
        await publish_event("posts.post.liked", like, actor_id=liker.id)
        feed = await liker_ws.recv_until(is_event("feed", "post.liked", {post["id"]}))
        assert feed["data"] == {"post_id": post["id"], "likes_count": 1}
        note = await author_ws.recv_until(is_event(f"user:{author.id}"))
        assert note["type"] == "like.received"
        assert note["data"] == {
            "post_id": post["id"],
            "user_id": str(liker.id),
            "user_name": liker.name,
            "likes_count": 1,
        }
        # The liker gets no notification about their own like.
        assert not [
            f for f in await liker_ws.drain(0.3) if f.get("channel", "").startswith("user:")
        ]


async def test_channel_authorization(gateway: Any, ws_connect: Any, publish_event: Any) -> None:
    student, other, instructor = make_user(), make_user(), make_user("instructor")
    async with ws_connect(gateway, student.token) as ws:
        answer = await ws.subscribe(f"user:{other.id}")
        assert (answer["op"], answer["code"]) == ("error", "forbidden")
        answer = await ws.subscribe("reviews")
        assert (answer["op"], answer["code"]) == ("error", "forbidden")
        answer = await ws.subscribe("everything")
        assert (answer["op"], answer["code"]) == ("error", "unknown_channel")
        assert (await ws.subscribe(f"user:{student.id}"))["op"] == "subscribed"
    async with ws_connect(gateway) as guest:
        answer = await guest.subscribe(f"user:{student.id}")
        assert answer["code"] == "forbidden"
        assert (await guest.subscribe("reviews"))["code"] == "forbidden"
    async with ws_connect(gateway, instructor.token) as ws:
        assert (await ws.subscribe("reviews"))["op"] == "subscribed"
        review = {
            "review_id": str(uuid.uuid4()),
            "student_id": str(student.id),
            "student_name": student.name,
            "track": "agency",
            "goal_slug": "agency-1k",
            "amount": "1500.00",
            "proof_url": "https://example.com/p.png",
            "note": None,
            "created_at": "2025-01-01T00:00:00Z",
        }
        await publish_event("goals.submission.created", review, actor_id=student.id)
        frame = await ws.recv_until(is_event("reviews", "review.requested"))
        assert frame["data"]["kind"] == "revenue_submission"
        assert frame["data"]["student"] == {"id": str(student.id), "name": student.name}
        assert frame["data"]["amount"] == "1500.00"


async def test_unsubscribe_stops_delivery(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    async with ws_connect(gateway) as ws:
        await ws.subscribe("activity")
        answer = await ws.request({"op": "unsubscribe", "channel": "activity"})
        assert answer["op"] == "unsubscribed" and answer["channel"] == "activity"
        await publish_event("leaderboard.activity.recorded", {"id": "a1", "type": "post"})
        assert [f for f in await ws.drain(0.4) if f.get("op") == "event"] == []
        answer = await ws.request({"op": "unsubscribe", "channel": "nowhere"})
        assert answer["code"] == "unknown_channel"


async def test_bad_frames_get_bad_request_and_the_connection_stays_open(
    gateway: Any, ws_connect: Any
) -> None:
    async with ws_connect(gateway) as ws:
        for bad in (
            "not json",
            "[]",
            '{"op":"fly"}',
            '{"op":"subscribe","channel":7}',
            '{"op":"subscribe","channel":"feed","since":"x"}',
            '{"op":"mode"}',
        ):
            await ws.send_raw(bad)
            frame = await ws.recv()
            assert (frame["op"], frame["code"]) == ("error", "bad_request"), bad
        await ws.send_raw(b"\x00binary")
        assert (await ws.recv())["code"] == "bad_request"
        await ws.send({"op": "read", "id": "r1"})
        frame = await ws.recv()
        assert frame == {
            "op": "error",
            "code": "bad_request",
            "message": frame["message"],
            "id": "r1",
        }
        pong = await ws.request({"op": "ping"})
        assert pong["op"] == "pong"


async def test_ops_are_answered_in_order_with_their_ids(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        await ws.send({"op": "ping", "id": 1})
        await ws.send({"op": "subscribe", "channel": "leaderboard", "id": 2})
        await ws.send({"op": "mode", "mode": "background", "id": "three"})
        await ws.send({"op": "unsubscribe", "channel": "leaderboard", "id": 4})
        await ws.send({"op": "ping"})  # no id: still answered, without one
        frames = [await ws.recv() for _ in range(5)]
        assert [(f["op"], f.get("id")) for f in frames] == [
            ("pong", 1),
            ("subscribed", 2),
            ("ok", "three"),
            ("unsubscribed", 4),
            ("pong", None),
        ]


async def test_ops_faster_than_the_rate_are_rate_limited(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        for n in range(80):
            await ws.send({"op": "ping", "id": n})
        frames = [await ws.recv() for _ in range(80)]
        limited = [f for f in frames if f["op"] == "error"]
        assert limited and all(f["code"] == "rate_limited" for f in limited)
        assert len([f for f in frames if f["op"] == "pong"]) >= 50
        await asyncio.sleep(0.2)
        assert (await ws.request({"op": "ping"}))["op"] == "pong"  # it recovers


async def test_too_large_and_oversized_frames(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        await ws.send({"op": "ping", "id": "big", "pad": "x" * 20_000})
        frame = await ws.recv()
        assert (frame["code"], frame["id"]) == ("too_large", "big")
        assert (await ws.request({"op": "ping"}))["op"] == "pong"
        await ws.send({"op": "ping", "pad": "x" * (64 * 1024)})
        assert await ws.wait_closed() == 1009


async def test_background_mode_delivers_only_reviews_and_inbox(
    gateway: Any, ws_connect: Any, publish_event: Any
) -> None:
    instructor, student = make_user("instructor"), make_user()
    async with ws_connect(gateway, instructor.token) as ws:
        await ws.subscribe("feed")
        await ws.subscribe("reviews")
        assert (await ws.request({"op": "mode", "mode": "background"}))["op"] == "ok"
        await publish_event("posts.post.created", post_data())
        review = {
            "review_id": str(uuid.uuid4()),
            "student_id": str(student.id),
            "student_name": "S",
            "track": "saas",
            "goal_slug": "saas-1k-mrr",
            "goal_name": "1k",
            "created_at": "2025-01-01T00:00:00Z",
        }
        await publish_event("goals.goal.requested", review)
        frame = await ws.recv_until(lambda f: f.get("op") == "event")
        assert frame["channel"] == "reviews"
        assert frame["data"]["review_id"] == review["review_id"]
        assert not [f for f in await ws.drain(0.3) if f.get("channel") == "feed"]
        assert (await ws.request({"op": "mode", "mode": "foreground"}))["op"] == "ok"
        post = post_data()
        await publish_event("posts.post.created", post)
        await ws.recv_until(is_event("feed", ids={post["id"]}))
