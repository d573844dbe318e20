"""Posts, live: HTTP writes on the posts service reach websockets through the gateway.

Path under test: posts (HTTP → Postgres + outbox) → relay → JetStream →
gateway (router, channels) → websocket clients on `feed` and `user:<id>`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import User, make_user


@pytest.fixture
def posts(posts_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The session's posts service, running on the test's loop next to the gateway."""
    return posts_client


def event(type_: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    """Matches an event frame of `type_` whose data has the given values."""

    def matches(frame: dict[str, Any]) -> bool:
        return (
            frame.get("op") == "event"
            and frame.get("type") == type_
            and all(frame.get("data", {}).get(k) == v for k, v in data.items())
        )

    return matches


def mentions(frame: dict[str, Any], post_id: str) -> bool:
    data = frame.get("data") or {}
    return post_id in (data.get("id"), data.get("post_id"))


async def create_post(
    posts: httpx.AsyncClient, user: User, content: str, visibility: str = "public"
) -> dict[str, Any]:
    response = await posts.post(
        "/posts", json={"content": content, "visibility": visibility}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_post_and_a_like_reach_another_users_feed(
    posts: httpx.AsyncClient, gateway: Any, ws_connect: Any
) -> None:
    author, watcher, fan = make_user(), make_user(), make_user()
    async with ws_connect(gateway, watcher.token) as ws:
        assert (await ws.subscribe("feed"))["op"] == "subscribed"

        content = f"live {uuid.uuid4().hex}"
        post = await create_post(posts, author, content)
        returned = time.monotonic()
        frame = await ws.recv_until(event("post.created", id=post["id"]), timeout=2)
        assert time.monotonic() - returned < 2
        assert frame["channel"] == "feed"
        assert frame["data"]["content"] == content
        assert frame["data"]["author"]["id"] == str(author.id)

        liked = await posts.put(f"/posts/{post['id']}/like", headers=fan.headers)
        assert liked.status_code == 200
        frame = await ws.recv_until(event("post.liked", post_id=post["id"]), timeout=2)
        assert frame["data"]["likes_count"] == 1


async def test_thread_edits_deletes_and_pins_arrive_on_the_feed(
    posts: httpx.AsyncClient, gateway: Any, ws_connect: Any
) -> None:
    author, replier, instructor = make_user(), make_user(), make_user("instructor")
    async with ws_connect(gateway, make_user().token) as ws:
        await ws.subscribe("feed")
        post = await create_post(posts, author, "a thread")
        pid = post["id"]
        await ws.recv_until(event("post.created", id=pid))

        reply = (
            await posts.post(
                f"/posts/{pid}/replies", json={"content": "first!"}, headers=replier.headers
            )
        ).json()
        frame = await ws.recv_until(event("reply.created", id=reply["id"]))
        assert frame["data"]["post_id"] == pid and frame["data"]["content"] == "first!"

        await posts.patch(
            f"/posts/{pid}", json={"content": "a better thread"}, headers=author.headers
        )
        frame = await ws.recv_until(event("post.updated", id=pid))
        assert frame["data"]["content"] == "a better thread" and frame["data"]["edited"] is True

        await posts.delete(f"/posts/{pid}/replies/{reply['id']}", headers=replier.headers)
        frame = await ws.recv_until(event("reply.deleted", id=reply["id"]))
        assert frame["data"]["post_id"] == pid and frame["data"]["replies_count"] == 0

        await posts.put(f"/posts/{pid}/pin", headers=instructor.headers)
        frame = await ws.recv_until(event("post.pinned", id=pid))
        assert frame["data"]["is_pinned"] is True

        await posts.delete(f"/posts/{pid}/pin", headers=instructor.headers)
        frame = await ws.recv_until(event("post.unpinned", id=pid))
        assert frame["data"]["is_pinned"] is False

        await posts.delete(f"/posts/{pid}", headers=author.headers)
        frame = await ws.recv_until(event("post.deleted", id=pid))
        assert frame["channel"] == "feed"


async def test_a_guest_never_receives_a_members_only_post(
    posts: httpx.AsyncClient, gateway: Any, ws_connect: Any
) -> None:
    author, fan = make_user(), make_user()
    async with ws_connect(gateway) as guest, ws_connect(gateway, make_user().token) as member:
        assert guest.hello["role"] == "guest"
        await guest.subscribe("feed")
        await member.subscribe("feed")

        hidden = await create_post(posts, author, "for members only", visibility="members")
        await posts.put(f"/posts/{hidden['id']}/like", headers=fan.headers)
        await posts.post(
            f"/posts/{hidden['id']}/replies", json={"content": "psst"}, headers=fan.headers
        )
        await posts.patch(
            f"/posts/{hidden['id']}", json={"content": "still members only"}, headers=author.headers
        )
        public = await create_post(posts, author, "for everyone")

        # Members see both posts; the guest sees the public one ...
        await member.recv_until(event("post.created", id=hidden["id"]))
        await member.recv_until(event("reply.created", post_id=hidden["id"]))
        await member.recv_until(event("post.created", id=public["id"]))
        await guest.recv_until(event("post.created", id=public["id"]))
        # ... and nothing at all about the members-only one, before or after.
        later = await guest.drain(quiet=0.5)
        seen = [f for f in [*guest.skipped, *later] if mentions(f, hidden["id"])]
        assert seen == []


async def test_authors_are_notified_of_others_likes_and_replies_only(
    posts: httpx.AsyncClient, gateway: Any, ws_connect: Any
) -> None:
    author, fan, third = make_user(name="Author"), make_user(name="Fan"), make_user()
    post = await create_post(posts, author, "notify me")
    pid = post["id"]
    async with (
        ws_connect(gateway, author.token) as author_ws,
        ws_connect(gateway, fan.token) as fan_ws,
    ):
        assert f"user:{author.id}" in author_ws.hello["channels"]

        # The author's own like and reply notify nobody.
        await posts.put(f"/posts/{pid}/like", headers=author.headers)
        await posts.post(f"/posts/{pid}/replies", json={"content": "me"}, headers=author.headers)

        await posts.put(f"/posts/{pid}/like", headers=fan.headers)
        frame = await author_ws.recv_until(event("like.received", post_id=pid))
        assert frame["channel"] == f"user:{author.id}"
        assert frame["data"]["user_id"] == str(fan.id)
        assert frame["data"]["user_name"] == "Fan"
        assert frame["data"]["likes_count"] == 2

        reply = (
            await posts.post(f"/posts/{pid}/replies", json={"content": "hi"}, headers=fan.headers)
        ).json()
        frame = await author_ws.recv_until(event("reply.received", id=reply["id"]))
        assert frame["channel"] == f"user:{author.id}"

        # A reply to the fan's reply notifies the fan (whose reply it answers) and the author.
        nested = (
            await posts.post(
                f"/posts/{pid}/replies",
                json={"content": "welcome", "reply_to_id": reply["id"]},
                headers=third.headers,
            )
        ).json()
        await fan_ws.recv_until(event("reply.received", id=nested["id"]))
        await author_ws.recv_until(event("reply.received", id=nested["id"]))

        # Nothing else: no notification of the author's own actions, none to the fan
        # about their own like and reply, one notification per user per reply.
        author_frames = [*author_ws.skipped, *(await author_ws.drain(quiet=0.5))]
        fan_frames = [*fan_ws.skipped, *(await fan_ws.drain(quiet=0.3))]
        author_notes = [f for f in author_frames if f.get("channel") == f"user:{author.id}"]
        assert author_notes == [], author_notes
        fan_notes = [f for f in fan_frames if f.get("channel") == f"user:{fan.id}"]
        assert fan_notes == [], fan_notes
