"""The `websockets` internals the gateway relies on (`wsadapter`), on a real connection.

`wsadapter.py` is the one place that reaches past `websockets`' documented
API: the direct write path (as `broadcast` does) and the backlog the gateway
measures (transport buffer, kernel). If an upgrade of the library moves or
renames any of it, this test fails, naming what changed, instead of the
gateway silently queueing every frame or misjudging slow clients.
"""

from __future__ import annotations

import asyncio

from community_gateway.wsadapter import Link, missing_internals
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve


def test_the_installed_websockets_has_every_internal_the_adapter_uses() -> None:
    assert missing_internals() == []


async def test_every_adapter_method_works_on_a_real_connection() -> None:
    checked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        try:
            link = Link(ws)
            assert link.is_open()
            assert link.can_write_now()
            assert link.buffered() == 0
            assert link.held() >= 0
            assert not link.is_closing()
            link.write_now(b'{"op":"pong"}')
            await ws.wait_closed()
            assert not link.is_open()
            assert not link.can_write_now()
            checked.set_result(None)
        except BaseException as exc:
            checked.set_exception(exc)
            raise

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            assert await asyncio.wait_for(client.recv(), 5) == '{"op":"pong"}'
        await asyncio.wait_for(checked, 5)


async def test_abort_drops_the_connection_at_once() -> None:
    async def handler(ws: ServerConnection) -> None:
        Link(ws).abort()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            await asyncio.wait_for(client.wait_closed(), 5)
            assert client.close_code == 1006  # no close frame: the TCP connection was dropped
