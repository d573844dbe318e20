"""The inbox's unread count while Redis is down and right after it comes back.

The read cursors live in Redis. A gateway whose pooled Redis connections went
stale in a Redis restart once answered `hello` with `unread: 0` for minutes
(its reads failed on the dead sockets). Now the first connection after the
restart counts again: a restarted Redis that kept nothing has no cursor, so
everything in the inbox is unread (nothing is hidden), and a cursor set then
is kept and used at once.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import eventually, make_user
from tests.faults.servers import private_redis
from tests.integration.gateway.conftest import post_data


async def test_unread_is_counted_again_right_after_a_redis_restart(
    gateway_factory: Any, ws_connect: Any, publish_event: Any
) -> None:
    author = make_user()
    post = post_data(author_id=author.id)
    for n in range(1, 4):
        liker = make_user()
        like = {
            "post_id": post["id"],
            "user_id": str(liker.id),
            "user_name": liker.name,
            "likes_count": n,
            "post_author_id": str(author.id),
            "visibility": "public",
        }
        await publish_event("posts.post.liked", like, actor_id=liker.id)
    inbox = f"user:{author.id}"

    with private_redis() as redis_server:
        server = await gateway_factory(redis_url=redis_server.url)

        async def unread() -> int:
            async with ws_connect(server, author.token) as ws:
                return int(ws.hello["unread"])

        async def unread_is(expected: int) -> bool:
            return await unread() == expected

        await eventually(lambda: unread_is(3))
        async with ws_connect(server, author.token) as ws:
            notes = [
                frame
                for frame in (await ws.subscribe(inbox, since=0), *await ws.drain(0.4))
                if frame.get("channel") == inbox and "seq" in frame and "data" in frame
            ]
            assert len(notes) == 3
            answer = await ws.request({"op": "read", "channel": inbox, "seq": notes[1]["seq"]})
            assert answer["op"] == "ok"
        assert await unread() == 1

        redis_server.kill()
        # Redis down: the connection still opens (the inbox itself is in JetStream).
        async with ws_connect(server, author.token) as ws:
            assert ws.hello["channels"] == [inbox]
        redis_server.start()  # empty: nothing was saved

        # The very first connection after the restart counts from no cursor.
        assert await unread() == 3
        async with ws_connect(server, author.token) as ws:
            answer = await ws.request({"op": "read", "channel": inbox, "seq": notes[2]["seq"]})
            assert answer["op"] == "ok"
        assert await unread() == 0
