"""One websocket connection's I/O besides reading: its outbound path, its keepalive, its timers.

Frames reach a client in order through one of two ways: written at once when
the client keeps up (as `websockets.broadcast` does), else through its
bounded `SendQueue` and a writer task, started by the first frame queued and
ended when the queue is empty (an idle connection holds no task and no event:
memory per connection is what capacity is counted in). What overflows, and what a client
that stopped reading gets, is decided by `sendqueue.py` (the drop policy,
the byte bound, the stall clock); this module measures and closes (4008).
The keepalive pings from the server's watch loop (`keepalive.PingClock`
decides when), not from a task per connection. The `websockets` internals it
needs are behind `wsadapter.Link`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from community_shared.tasks import stop_tasks
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from community_gateway import metrics
from community_gateway.actions import Timer, TokenExpiry
from community_gateway.config import GatewayConfig
from community_gateway.keepalive import PingClock
from community_gateway.protocol import (
    CLOSE_TOO_SLOW,
    ConnectionProtocol,
    RecoveryBufferFull,
    StoredEvent,
)
from community_gateway.sendqueue import Outgoing, SendQueue, StallClock
from community_gateway.wsadapter import Link


class Client:
    """One websocket connection: its protocol, its outbound queue and its writer."""

    __slots__ = (
        "_close_task",
        "_close_timeout",
        "_handed",
        "_low_water",
        "_ping",
        "_pong",
        "_room",
        "_stall",
        "_writer",
        "close_code",
        "closing",
        "link",
        "protocol",
        "queue",
        "session",
        "ws",
    )

    def __init__(
        self, ws: ServerConnection, protocol: ConnectionProtocol, config: GatewayConfig
    ) -> None:
        self.ws = ws
        self.link = Link(ws)
        self.protocol = protocol
        self.session = protocol.session
        self.queue = SendQueue(
            config.queue_bound, on_drop=self._dropped, byte_bound=config.outbound_bytes
        )
        self.closing = False
        self.close_code: int | None = None
        """The code the server decided to close with (what the metrics record)."""
        self._stall = StallClock(config.stall_seconds)
        self._handed = 0  # payload bytes handed to websockets
        self._writer: asyncio.Task[None] | None = None  # while the queue is drained
        self._room: asyncio.Future[None] | None = None  # a paced push waiting for room
        self._low_water = max(1, config.queue_bound // 2)
        self._close_task: asyncio.Task[None] | None = None
        self._close_timeout = config.close_timeout
        self._ping = PingClock(time.monotonic(), config.ping_interval, config.ping_timeout)
        self._pong: asyncio.Future[float] | None = None  # while a ping is out

    @property
    def writing(self) -> bool:
        """Whether a writer task is at work (one that keeps up never has one)."""
        return self._writer is not None

    @staticmethod
    def _dropped(reason: str) -> None:
        metrics.DROPS.labels(reason).inc()

    def push(self, item: Outgoing) -> bool:
        """Send or queue a frame without waiting; on overflow the connection is closed (4008)."""
        if self._write_now([item], len(item.payload)):
            metrics.FRAMES_SENT.inc()
            return True
        return self._enqueue(item)

    def _write_now(self, items: Sequence[Outgoing], size: int) -> bool:
        """Write the frames at once, in one write, if this client keeps up; False if they
        must be queued.

        A client that keeps up (nothing queued, no writer at work, the socket
        buffer below websockets' high-water mark) gets its frames written
        directly, as `websockets.broadcast` would: no task switch per frame.
        Any other client's frames go through its queue and writer task, so the
        order is the same either way.
        """
        if not self._keeps_up():
            return False
        try:
            self.link.write_all(items)
        except Exception:  # the connection is going away: queue them, the reader will notice
            return False
        self._handed += size
        return True

    def _keeps_up(self) -> bool:
        return (
            not self.closing
            and self._writer is None
            and not self.queue
            and self.link.can_write_now()
        )

    def _enqueue(self, item: Outgoing) -> bool:
        if self.closing:
            return False
        if not self.queue.push(item, held=self.link.buffered()):
            self.close(CLOSE_TOO_SLOW, "client too slow")
            return False
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return True

    async def push_paced(self, item: Outgoing) -> bool:
        """Queue a frame, first waiting until the queue is below its bound (history replay)."""
        while not self.closing and len(self.queue) >= self.queue.bound:
            if self._room is None:
                self._room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room)
        return self.push(item)

    def _make_room(self) -> None:
        """Wake a paced push waiting for room in the queue."""
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    def deliver(self, events: Sequence[StoredEvent]) -> int:
        """Offer live channel events, in order (fan-out; never blocks).

        The frames due are written at once, in one write, to a client that
        keeps up, and their number returned (left for the caller to count, so
        that fan-out updates the metrics once, not once per frame); to any
        other client they are queued (0).
        """
        if self.closing:
            return 0
        items: list[Outgoing] = []
        size = 0
        offer = self.session.offer
        try:
            for event in events:
                item = offer(event)
                if item is not None:
                    items.append(item)
                    size += len(item.payload)
        except RecoveryBufferFull:
            self.close(CLOSE_TOO_SLOW, "client too slow")
            return 0
        if not items:
            return 0
        if self._write_now(items, size):
            return len(items)
        for item in items:
            if not self._enqueue(item):
                break
        return 0

    def check_outbound(self, now: float) -> None:
        """Close with 4008 a client whose whole backlog is over the bound or stopped draining.

        The backlog is the queue plus what the transport and the kernel hold
        (those only the gateway can see: a client that stops reading fills
        the kernel's socket buffer first, which can take megabytes).
        """
        if self.closing or self.link.is_closing():
            return
        held = self.link.held()
        if not self.queue.fits(held):
            self.close(CLOSE_TOO_SLOW, "client too slow")
            return
        pending = bool(self.queue) or held > 0
        if self._stall.observe(now, pending=pending, mark=self._handed - held):
            self.close(CLOSE_TOO_SLOW, "client stopped reading")

    def check_alive(self, now: float) -> None:
        """Ping when one is due; close (1011) a client that answered no ping within the timeout."""
        if self.closing:
            return
        pong = self._pong
        answered = pong is None or pong.done()
        if answered:
            self._pong = None
        step = self._ping.observe(now, answered=answered)
        if step == "ping":
            try:
                pong = self.link.ping()
            except Exception:  # the connection is going away: the reader will notice
                return
            if pong is not None:
                pong.add_done_callback(_retrieve)
            self._pong = pong
        elif step == "give up":
            self.close(CLOSE_NO_PONG, "keepalive ping timeout")

    def close(self, code: int, reason: str) -> None:
        """Start closing (idempotent); queued frames are discarded."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self.queue.clear()
        self._make_room()
        self._close_task = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        # websockets' close() waits, without a time limit, for the write buffer
        # to drain before its own close timeout starts: a client that reads
        # nothing would hold the connection until the ping timeout. Bound it.
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.ws.close(code, reason)
        except TimeoutError:
            self.link.abort()

    async def _drain(self) -> None:
        """Write the queued frames in order, then end (the next queued frame starts another)."""
        try:
            while not self.closing:
                item = self.queue.pop()
                if item is None:
                    return
                if len(self.queue) < self._low_water:
                    self._make_room()
                # Written to the transport at once, then waits while the
                # socket buffer is above the high-water mark.
                self._handed += len(item.payload)
                await self.ws.send(item.payload, text=True)
                metrics.FRAMES_SENT.inc()
        except ConnectionClosed:
            # Nothing queued can get through any more; the reader sees the close.
            self.queue.clear()
        finally:
            self._writer = None
            self._make_room()

    async def stop(self) -> None:
        """End the writer, if one is at work (the connection is over)."""
        self.closing = True
        self._make_room()
        await stop_tasks(self._writer)


CLOSE_INTERNAL_ERROR = 1011
"""A server error: the client reconnects with backoff and recovers with `since`."""
CLOSE_NO_PONG = CLOSE_INTERNAL_ERROR
"""What websockets' own keepalive closes with when a ping goes unanswered."""


def _retrieve(pong: asyncio.Future[float]) -> None:
    # A ping still out when the connection closes fails with ConnectionClosed;
    # nobody awaits it, so take the exception here (asyncio would log it).
    if not pong.cancelled():
        pong.exception()


class Timers:
    """A connection's pending timers (the protocol's `Schedule`), cancelled when it ends.

    One `TokenExpiry` at a time (a new one replaces it; its delay is counted
    from the wall clock); `InboxHold`s after their delay, or as soon as the
    loop is free for a delay of 0.
    """

    __slots__ = ("_expiry", "_fire", "_handles")

    def __init__(self, fire: Callable[[Timer], None]) -> None:
        self._fire = fire
        self._handles: set[asyncio.Handle] | None = None  # made by the first one
        self._expiry: asyncio.TimerHandle | None = None

    def schedule(self, timer: Timer, delay: float) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(timer, TokenExpiry):
            if self._expiry is not None:
                self._expiry.cancel()
            self._expiry = loop.call_later(max(0.0, timer.at - time.time()), self._fire, timer)
            return
        handle: asyncio.Handle
        if delay <= 0:
            handle = loop.call_soon(self._fire, timer)
        else:
            handle = loop.call_later(delay, self._fire, timer)
        if self._handles is None:
            self._handles = set()
        self._handles.add(handle)

    def cancel(self) -> None:
        for handle in self._handles or ():
            handle.cancel()
        self._handles = None
        if self._expiry is not None:
            self._expiry.cancel()
