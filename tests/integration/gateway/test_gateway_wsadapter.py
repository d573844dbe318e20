"""The `websockets` internals the gateway relies on (`wsadapter`), on a real connection.

`wsadapter.py` is the one place that reaches past `websockets`' documented
API: the direct write path (as `broadcast` does) and the backlog the gateway
measures (transport buffer, kernel). If an upgrade of the library moves or
renames any of it, this test fails, naming what changed, instead of the
gateway silently queueing every frame or misjudging slow clients.
"""

from __future__ import annotations

import asyncio

import pytest
from community_gateway.sendqueue import Outgoing
from community_gateway.wsadapter import Link, missing_internals, text_frame
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode


def test_the_installed_websockets_has_every_internal_the_adapter_uses() -> None:
    assert missing_internals() == []


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 300_000])
def test_a_ready_made_frame_is_what_websockets_would_write(size: int) -> None:
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


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
            item = Outgoing(b'{"op":"pong"}')
            link.write_all([item])
            assert item.wire == text_frame(item.payload)  # made once, kept for the next client
            link.write_all([item])
            link.write_all([Outgoing(b'{"n":1}'), item, Outgoing(b'{"n":2}')])  # one write
            pong = link.ping()
            assert pong is not None
            latency = await asyncio.wait_for(pong, 5)  # the client answers by itself
            assert latency >= 0
            await ws.wait_closed()
            assert link.ping() is None
            assert not link.is_open()
            assert not link.can_write_now()
            checked.set_result(None)
        except BaseException as exc:
            checked.set_exception(exc)
            raise

    # As the gateway serves: no extension negotiated.
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            received = [await asyncio.wait_for(client.recv(), 5) for _ in range(5)]
            assert received == [
                '{"op":"pong"}',
                '{"op":"pong"}',
                '{"n":1}',
                '{"op":"pong"}',
                '{"n":2}',
            ]
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


async def test_with_an_extension_negotiated_frames_go_through_websockets() -> None:
    """Compressed connections are framed by websockets, never ready-made."""
    made: list[bytes | None] = []

    async def handler(ws: ServerConnection) -> None:
        item = Outgoing(b'{"op":"pong"}')
        Link(ws).write_all([item])
        made.append(item.wire)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression="deflate") as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression="deflate") as client:
            assert await asyncio.wait_for(client.recv(), 5) == '{"op":"pong"}'
    assert made == [None]
