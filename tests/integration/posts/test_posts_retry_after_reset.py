"""A client whose connection broke after sending retries without creating a duplicate.

The posts app is served by uvicorn on a real port. The client writes a whole
`POST /posts` on a raw socket, waits until the post is committed, and resets
the connection (SO_LINGER 0) without reading the answer, as a phone losing
its network would. It then retries with the same `Idempotency-Key`: the
community must end up with exactly one post, announced once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import msgspec
import uvicorn
from community_posts.app import create_app
from community_shared.settings import Settings

from tests.conftest import User, eventually, make_user


@contextlib.asynccontextmanager
async def served_on_a_port(settings: Settings) -> AsyncIterator[str]:
    """Serve a posts app with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: _started(server, task), timeout=20)
        await asyncio.wait_for(app.state.runtime.nats_ready.wait(), timeout=15)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
        sock.close()


async def _started(server: uvicorn.Server, task: asyncio.Task[Any]) -> bool:
    if task.done():
        task.result()  # raise what stopped it
    return server.started


async def send_then_reset(
    port: int, path: str, body: bytes, headers: dict[str, str], committed: Callable[[], Any]
) -> None:
    """Write a whole request, wait until `committed()` holds, then reset without reading."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    await eventually(committed, timeout=10)
    raw = writer.get_extra_info("socket")
    # Linger 0: close() sends a RST, the answer (if any arrived) is never read.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    del reader


async def posts_by(db: asyncpg.Pool, author: User) -> list[asyncpg.Record]:
    return await db.fetch("SELECT id FROM posts.posts WHERE author_id = $1", author.id)


async def test_a_retry_after_a_connection_reset_creates_one_post(
    settings_for: Callable[..., Settings], db: asyncpg.Pool, nats_client: Any, redis_client: Any
) -> None:
    author = make_user("student")
    key = f"retry-{uuid.uuid4()}"
    body = msgspec.json.encode({"content": "posted from a train going into a tunnel"})
    headers = {**author.headers, "Idempotency-Key": key}

    async with served_on_a_port(settings_for("posts")) as base_url:
        port = int(base_url.rsplit(":", 1)[1])

        async def committed() -> bool:
            return len(await posts_by(db, author)) == 1

        await send_then_reset(port, "/posts", body, headers, committed)

        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            retry = await client.post(
                "/posts",
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            )

    assert retry.status_code == 201, retry.text
    rows = await posts_by(db, author)
    assert len(rows) == 1, f"{len(rows)} posts were created for one intended post"
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.json()["id"] == str(rows[0]["id"])
    announced = await db.fetchval(
        "SELECT count(*) FROM posts.outbox WHERE subject = 'posts.post.created'"
        " AND position($1::bytea in payload) > 0",
        str(rows[0]["id"]).encode(),
    )
    assert announced == 1
