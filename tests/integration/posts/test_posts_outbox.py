"""Events leave through the outbox: on NATS once each, even when NATS was down."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import msgspec
import nats

from tests.conftest import RUN_ID, eventually, make_user


async def test_every_change_is_published_on_nats_in_order(
    api: Any, nats_client: Any, settings_for: Any, instructor: Any
) -> None:
    settings = settings_for("posts")
    received: list[tuple[str, dict[str, Any], str]] = []

    async def collect(msg: Any) -> None:
        envelope = msgspec.json.decode(msg.data)
        received.append((msg.subject, envelope, (msg.headers or {}).get("Nats-Msg-Id", "")))

    sub = await nats_client.subscribe(settings.subject("posts.>"), cb=collect)
    await nats_client.flush()
    try:
        author, fan = make_user(), make_user()
        post = await api.create_post(author, "watch me")
        pid = post["id"]
        await api.client.put(f"/posts/{pid}/like", headers=fan.headers)
        reply = await api.create_reply(pid, fan)
        rurl = f"/posts/{pid}/replies/{reply['id']}"
        await api.client.patch(rurl, json={"content": "edited"}, headers=fan.headers)
        await api.client.delete(rurl, headers=fan.headers)
        await api.client.patch(f"/posts/{pid}", json={"content": "v2"}, headers=author.headers)
        await api.client.put(f"/posts/{pid}/pin", headers=instructor.headers)
        await api.client.delete(f"/posts/{pid}/pin", headers=instructor.headers)
        await api.client.delete(f"/posts/{pid}/like", headers=fan.headers)
        opened = await api.client.post(
            f"/posts/{pid}/reports", json={"reason": "spam"}, headers=fan.headers
        )
        await api.client.post(
            f"/reports/{opened.json()['id']}/resolve",
            json={"action": "remove"},
            headers=instructor.headers,
        )
        expected_post_events = [
            "posts.post.created",
            "posts.post.liked",
            "posts.reply.created",
            "posts.reply.updated",
            "posts.reply.deleted",
            "posts.post.updated",
            "posts.post.pinned",
            "posts.post.unpinned",
            "posts.post.unliked",
            "posts.post.deleted",
        ]

        def about_this_post() -> list[tuple[str, dict[str, Any], str]]:
            return [
                r for r in received if pid in (r[1]["data"].get("id"), r[1]["data"].get("post_id"))
            ]

        async def all_arrived() -> bool:
            return len(about_this_post()) == len(expected_post_events) + 2

        try:
            await eventually(all_arrived)
        except AssertionError:
            raise AssertionError([r[1]["type"] for r in about_this_post()]) from None
        await asyncio.sleep(0.3)  # and nothing more arrives
        mine = about_this_post()
        assert len(mine) == len(expected_post_events) + 2
        post_events = [r for r in mine if not r[1]["type"].startswith("posts.report.")]
        # Events of one post keep their order on the wire.
        assert [r[1]["type"] for r in post_events] == expected_post_events
        assert sorted(r[1]["type"] for r in mine if r[1]["type"].startswith("posts.report.")) == [
            "posts.report.created",
            "posts.report.resolved",
        ]
        for subject, envelope, msg_id in mine:
            assert subject == f"{RUN_ID}.{envelope['type']}"  # the wire subject is prefixed
            assert msg_id == envelope["id"]  # Nats-Msg-Id = event id
            assert envelope["source"] == "posts"
            assert envelope["occurred_at"].endswith("Z")
        ids = [r[1]["id"] for r in mine]
        assert len(ids) == len(set(ids))
    finally:
        await sub.unsubscribe()


async def test_post_succeeds_while_nats_is_down_and_is_published_once_after(
    isolated_posts_app: Any, nats_server: Any
) -> None:
    async with isolated_posts_app(
        own_database=True, nats_url=nats_server.url, outbox_poll_seconds=0.2
    ) as other:
        await nats_server.stop()
        user = make_user()
        response = await other.client.post(
            "/posts", json={"content": "written while NATS is away"}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        post = response.json()
        # The app's own pool lives on the test client's loop: use a connection of ours.
        conn = await asyncpg.connect(other.settings.database_url)
        try:
            row = await conn.fetchrow(
                "SELECT id, published_at FROM posts.outbox WHERE aggregate = $1",
                f"post:{post['id']}",
            )
        finally:
            await conn.close()
        assert row is not None and row["published_at"] is None
        event_id = str(row["id"])
        await asyncio.sleep(1.0)  # the relay tries, fails and backs off meanwhile

        await nats_server.start()
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            stream = other.settings.stream_name("EVENTS")

            async def stored() -> bool:
                try:
                    info = await js.stream_info(stream)
                except Exception:
                    return False
                return bool(info.state.messages >= 1)

            await eventually(stored, timeout=15)

            async def marked() -> bool:
                conn = await asyncpg.connect(other.settings.database_url)
                try:
                    published = await conn.fetchval(
                        "SELECT published_at FROM posts.outbox WHERE id = $1", uuid.UUID(event_id)
                    )
                finally:
                    await conn.close()
                return published is not None

            await eventually(marked, timeout=15)
            await asyncio.sleep(1.0)  # further relay passes publish nothing again
            info = await js.stream_info(stream)
            assert info.state.messages == 1
            msg = await js.get_msg(stream, seq=info.state.first_seq)
            assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event_id
            envelope = msgspec.json.decode(msg.data)
            assert envelope["id"] == event_id
            assert envelope["type"] == "posts.post.created"
            assert envelope["data"]["id"] == post["id"]
        finally:
            await nc.close()
