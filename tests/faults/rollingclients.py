"""`feed` readers that follow gateways through restarts, in a process of their own.

Run as `python -m tests.faults.rollingclients <count> <ws url> [<ws url> …]`.
Client `i` connects first to URL `i mod n`; whenever its connection ends
(1012 from a stopping gateway, or anything else) it reconnects at once to
the next URL in the list, as a client given a list of gateway URLs (or one
behind a load balancer) does, and resubscribes with `since` = the last seq it
got, so the gateway replays what it missed. It reconnects without any delay
of its own (the JavaScript client adds a random one after 1012): the rate
at which reconnections arrive is the stopping gateway's spreading alone.

Lines on stdin, answers on stdout (one JSON document per line):
- at start: `{"ready": <count>}` once every client is subscribed;
- `check <path>`: `path` holds the expected post ids, one per line; waits (up
  to 120 s) until every client has them all, then answers the tally: `lost`
  (expected ids a client never got), `app_duplicates` (one post delivered to
  the application twice, under two seqs: frames whose seq is not above the
  last one are dropped as the protocol says, and counted as
  `wire_duplicates`), `not_recovered` (resubscriptions answered
  `recovered: false`), `reconnects` (the monotonic instant of every
  reconnection), `failed_attempts` and `retried_subscribes` (a `subscribe`
  answered `unavailable`, the history not readable at that moment, is sent
  again after 0.2 s, as the protocol asks).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.client import connect

RETRY_PAUSE = 0.05
"""After a failed attempt (the next gateway not up yet) before trying the one after."""


class Follower:
    def __init__(self, index: int, urls: list[str]) -> None:
        self.urls = urls
        self.next_url = index % len(urls)
        self.ids: set[str] = set()
        self.wire_duplicates = 0
        self.app_duplicates = 0
        self.last_seq: int | None = None
        self.reconnects: list[float] = []
        self.failed_attempts = 0
        self.retried_subscribes = 0
        self.not_recovered = 0
        self.subscribed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        first = True
        while True:
            url = self.urls[self.next_url]
            self.next_url = (self.next_url + 1) % len(self.urls)
            connected = False
            try:
                async with connect(url, compression=None, open_timeout=30, max_queue=None) as ws:
                    connected = True
                    await ws.recv()  # hello
                    await ws.send(self._subscribe())
                    if not first:
                        self.reconnects.append(time.monotonic())
                    first = False
                    async for message in ws:
                        frame = msgspec.json.decode(message)
                        if frame.get("op") == "error" and frame.get("code") == "unavailable":
                            # The history could not be read: retry, as the protocol says.
                            self.retried_subscribes += 1
                            await asyncio.sleep(RETRY_PAUSE * 4)
                            await ws.send(self._subscribe())
                        else:
                            self._frame(frame)
            except asyncio.CancelledError:
                raise
            except Exception:  # refused, reset, closed (1012 included): on to the next
                if not connected:
                    self.failed_attempts += 1
                    await asyncio.sleep(RETRY_PAUSE)

    def _subscribe(self) -> str:
        subscribe: dict[str, Any] = {"op": "subscribe", "channel": "feed", "id": 1}
        if self.last_seq is not None:
            subscribe["since"] = self.last_seq
        return msgspec.json.encode(subscribe).decode()

    def _frame(self, frame: dict[str, Any]) -> None:
        if frame.get("op") == "subscribed":
            if frame.get("recovered") is False and self.last_seq is not None:
                self.not_recovered += 1
            if self.last_seq is None:
                self.last_seq = int(frame.get("seq") or 0)
            self.subscribed.set()
        elif frame.get("op") == "event" and frame.get("channel") == "feed":
            seq = int(frame["seq"])
            if self.last_seq is not None and seq <= self.last_seq:
                # Not above the last seq: the application never sees it (dedup by seq).
                self.wire_duplicates += 1
                return
            self.last_seq = seq
            post_id = (frame.get("data") or {}).get("id")
            if isinstance(post_id, str):
                if post_id in self.ids:  # one event under two seqs: a true duplicate
                    self.app_duplicates += 1
                self.ids.add(post_id)


async def main(count: int, urls: list[str]) -> None:
    followers: list[Follower] = []
    for start in range(0, count, 50):
        batch = [Follower(i, urls) for i in range(start, min(count, start + 50))]
        followers += batch
        await asyncio.gather(*(f.subscribed.wait() for f in batch))
    print(msgspec.json.encode({"ready": len(followers)}).decode(), flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := (await stdin.readline()).decode().split():
        _, path = line
        expected = set((await asyncio.to_thread(Path(path).read_text)).split())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110 (polled)
            expected <= f.ids for f in followers
        ):
            await asyncio.sleep(0.1)
        answer: dict[str, Any] = {
            "lost": sum(len(expected - f.ids) for f in followers),
            "app_duplicates": sum(f.app_duplicates for f in followers),
            "wire_duplicates": sum(f.wire_duplicates for f in followers),
        }
        answer["not_recovered"] = sum(f.not_recovered for f in followers)
        answer["failed_attempts"] = sum(f.failed_attempts for f in followers)
        answer["retried_subscribes"] = sum(f.retried_subscribes for f in followers)
        answer["reconnects"] = sorted(t for f in followers for t in f.reconnects)
        print(msgspec.json.encode(answer).decode(), flush=True)
    for follower in followers:
        follower.task.cancel()
        with contextlib.suppress(BaseException):
            await follower.task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2:]))
