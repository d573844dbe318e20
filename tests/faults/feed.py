"""Websocket clients of the fault tests: they record every `feed` event they receive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect


@dataclass
class FeedClient:
    """A guest subscribed to `feed`; `received` maps a post id to its arrival times."""

    url: str
    received: dict[str, list[float]] = field(default_factory=dict)
    closed: bool = False
    _connection: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None

    async def open(self, timeout: float = 10.0) -> None:
        self._connection = await connect(self.url, open_timeout=timeout, compression=None)
        hello = msgspec.json.decode(await asyncio.wait_for(self._connection.recv(), timeout))
        assert hello["op"] == "hello", hello
        await self._connection.send('{"op": "subscribe", "channel": "feed", "id": "s"}')
        while True:
            frame = msgspec.json.decode(await asyncio.wait_for(self._connection.recv(), timeout))
            if frame.get("id") == "s":
                assert frame["op"] == "subscribed", frame
                break
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._connection is not None
        try:
            async for message in self._connection:
                now = time.monotonic()
                frame: dict[str, Any] = msgspec.json.decode(message)
                if frame.get("op") == "event" and frame.get("channel") == "feed":
                    post_id = (frame.get("data") or {}).get("id")
                    if isinstance(post_id, str):
                        self.received.setdefault(post_id, []).append(now)
        except Exception:  # the gateway went away: the test looks at what arrived
            pass
        finally:
            self.closed = True

    def has_all(self, ids: set[str]) -> bool:
        return ids.issubset(self.received)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.close(), 2)


async def open_clients(url: str, count: int, at_once: int = 50) -> list[FeedClient]:
    """`count` guests on `url`, each subscribed to `feed` (connecting `at_once` at a time)."""
    gate = asyncio.Semaphore(at_once)
    clients = [FeedClient(url) for _ in range(count)]

    async def open_one(client: FeedClient) -> None:
        async with gate:
            await client.open()

    await asyncio.gather(*(open_one(client) for client in clients))
    return clients


@dataclass(frozen=True)
class Tally:
    """Exactly-once accounting of `expected` ids over clients."""

    expected: int
    delivered: int
    duplicated: int
    lost: int


def tally(clients: list[FeedClient], ids: set[str]) -> Tally:
    delivered = duplicated = lost = 0
    for client in clients:
        counts = Counter({post_id: len(times) for post_id, times in client.received.items()})
        for post_id in ids:
            n = counts.get(post_id, 0)
            delivered += min(n, 1)
            duplicated += max(n - 1, 0)
            lost += 1 if n == 0 else 0
    return Tally(len(ids) * len(clients), delivered, duplicated, lost)


async def wait_for_all(clients: list[FeedClient], ids: set[str], timeout: float) -> bool:
    """Wait until every client has every id (False after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(client.has_all(ids) for client in clients):
            return True
        await asyncio.sleep(0.1)
    return False
