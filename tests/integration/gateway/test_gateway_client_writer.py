"""A connection's writer task exists only while its queue holds frames (`client.Client`).

Memory per idle connection is what a gateway's capacity is counted in: a
connection that keeps up holds no writer task and no event. A queued frame
starts a writer, which writes the queue in order and ends with it; the next
frame that finds the connection keeping up is written directly again.
Real websockets connections, no NATS.
"""

from __future__ import annotations

import asyncio
from typing import Any

from community_gateway.client import Client
from community_gateway.config import GatewayConfig
from community_gateway.protocol import ConnectionProtocol
from community_gateway.sendqueue import Outgoing
from community_shared.auth import GUEST
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

CONFIG = GatewayConfig()


def frame(n: int) -> Outgoing:
    return Outgoing(f'{{"n":{n}}}'.encode())


async def test_the_writer_starts_with_a_queued_frame_and_ends_with_the_queue() -> None:
    seen: list[Any] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        try:
            client = Client(ws, ConnectionProtocol(GUEST, CONFIG, lambda token: GUEST), CONFIG)
            assert not client.writing, "an idle connection holds no writer"
            assert client.push(frame(1))
            seen.append(client.writing)  # written directly: still no writer
            # Frames that must queue (as when the socket buffer is full) start one.
            for n in (2, 3, 4):
                assert client._enqueue(frame(n))
            seen.append(client.writing)
            assert client.push(frame(5))  # a writer is at work: queued behind 2-4
            for _ in range(100):
                if not client.writing:
                    break
                await asyncio.sleep(0.01)
            seen.append(client.writing)
            assert client.push(frame(6))  # keeping up again: direct
            seen.append(client.writing)
            await client.stop()
            done.set_result(None)
        except BaseException as exc:
            done.set_exception(exc)
            raise
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            received = [await asyncio.wait_for(ws.recv(), 5) for _ in range(6)]
            await asyncio.wait_for(done, 5)
    assert received == [f'{{"n":{n}}}' for n in range(1, 7)], "in order, each once"
    assert seen == [False, True, False, False]
