"""`top.changed` through a real gateway: routed to `leaderboard`, merged per board for
a client that stalls, so once it reads again it gets the latest first page of each
board (and not every page it missed)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import msgspec
from community_gateway.config import GatewayConfig
from community_gateway.metrics import DROPS
from websockets.asyncio.client import connect

BOARDS = ("all:all", "7d:agency", "30d:saas")
VERSIONS = 40
PAD = 4000


def page(board: str, version: int) -> dict[str, Any]:
    # about 80 KB: the 120 pages are more than the kernel buffers of a socket take
    return {
        "board": board,
        "items": [
            {"rank": rank, "user_id": str(uuid.uuid4()), "name": f"{version} " + "x" * PAD,
             "points": version}
            for rank in range(1, 21)
        ],
    }  # fmt: skip


def version_of(frame: dict[str, Any]) -> tuple[str, int]:
    data = frame["data"]
    return data["board"], data["items"][0]["points"]


async def test_a_stalled_client_catches_up_with_the_latest_first_page_of_each_board(
    gateway_factory: Any, ws_connect: Any, publish_event: Any
) -> None:
    # Falling behind here means more than 8 frames queued. The byte bound (what the
    # kernel holds counts) and the stall clock would cut the stalled client (4008)
    # instead, at a moment that depends on the machine's speed: out of the way.
    server = await gateway_factory(
        config=GatewayConfig(queue_bound=8, outbound_bytes=256 * 1024 * 1024, stall_seconds=60)
    )
    merged_before = DROPS.labels(reason="merged")._value.get()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    slow = await connect(server.url, sock=sock, max_queue=1, compression=None, max_size=2**22)
    try:
        await slow.recv()  # hello
        await slow.send('{"op":"subscribe","channel":"leaderboard"}')
        await slow.recv()  # subscribed; from now on it reads nothing for a while
        async with ws_connect(server, max_size=2**22) as fast:
            await fast.subscribe("leaderboard")
            for version in range(1, VERSIONS + 1):
                for board in BOARDS:
                    await publish_event("leaderboard.top.changed", page(board, version))
            # everything routed: a client that reads gets the last page of each board
            seen: dict[str, list[int]] = {board: [] for board in BOARDS}
            while any(VERSIONS not in v for v in seen.values()):
                frame = await fast.recv_until(
                    lambda f: (
                        f.get("type") == "top.changed"
                        and f["data"]["board"] in BOARDS
                        and f["data"]["items"][0]["name"].endswith("x" * PAD)
                    ),
                    timeout=15,
                )
                board, version = version_of(frame)
                seen[board].append(version)
            assert all(v == sorted(v) for v in seen.values())
        assert server.connection_count == 1  # merging kept the stalled one under its bound

        # The stalled client reads again.
        got: dict[str, list[int]] = {board: [] for board in BOARDS}
        while True:
            try:
                message = await asyncio.wait_for(slow.recv(), 2.0)
            except TimeoutError:
                break
            frame = msgspec.json.decode(message)
            if frame.get("type") == "top.changed" and frame["data"]["board"] in BOARDS:
                board, version = version_of(frame)
                got[board].append(version)
    finally:
        await slow.close()
    for board, versions in got.items():
        # what was already on its way before the stall, in order, then only the
        # latest page of the board: everything between was merged away
        assert versions[-1] == VERSIONS, (board, versions)
        assert versions[:-1] == list(range(1, len(versions))), (board, versions)
    received = sum(len(v) for v in got.values())
    assert received < len(BOARDS) * VERSIONS, got  # the superseded pages were merged away
    # counted by the gateway (process-wide: the reading client may have had some merged too)
    merged = DROPS.labels(reason="merged")._value.get() - merged_before
    assert merged >= len(BOARDS) * VERSIONS - received
