"""Many healthy `feed` readers in a process of their own, noting when each post arrives.

Run as `python -m tests.faults.feedclients <ws url> <count>`. Keeping the
readers out of the test's process keeps their CPU out of the gateway's event
loop, as real clients would be; `time.monotonic()` is the system-wide
CLOCK_MONOTONIC on Linux, so arrival times compare with the test's publish
times.

Lines on stdin, answers on stdout (one JSON document per line):
- at start: `{"ready": <count>}` once every client is subscribed to `feed`;
- `collect <prefix> <n>`: waits (up to 60 s) until every client has `n` posts
  whose id starts with `prefix`, then answers `{"<post id>": [arrival, …]}`
  (one arrival per client) and forgets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

import msgspec
from websockets.asyncio.client import ClientConnection, connect


class Reader:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.arrivals: dict[str, float] = {}
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws:
                now = time.monotonic()
                frame = msgspec.json.decode(message)
                if frame.get("op") == "event" and frame.get("channel") == "feed":
                    self.arrivals[frame["data"]["id"]] = now


async def open_reader(url: str) -> Reader:
    ws = await connect(url, compression=None, open_timeout=30, max_queue=None)
    await ws.recv()  # hello
    await ws.send('{"op":"subscribe","channel":"feed","id":1}')
    await ws.recv()  # subscribed
    return Reader(ws)


async def main(url: str, count: int) -> None:
    readers: list[Reader] = []
    while len(readers) < count:
        batch = min(50, count - len(readers))
        readers += await asyncio.gather(*(open_reader(url) for _ in range(batch)))
    print(msgspec.json.encode({"ready": len(readers)}).decode(), flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := (await stdin.readline()).decode().split():
        _, prefix, wanted = line
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 (polled, not signalled)
            sum(1 for k in r.arrivals if k.startswith(prefix)) < int(wanted) for r in readers
        ):
            await asyncio.sleep(0.05)
        answer: dict[str, list[float]] = {}
        for reader in readers:
            for post_id in [k for k in reader.arrivals if k.startswith(prefix)]:
                answer.setdefault(post_id, []).append(reader.arrivals.pop(post_id))
        print(msgspec.json.encode(answer).decode(), flush=True)
    for reader in readers:
        reader.task.cancel()
        with contextlib.suppress(Exception):
            await reader.ws.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
