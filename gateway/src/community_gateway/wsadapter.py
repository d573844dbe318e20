"""Everything the gateway uses of a `websockets` connection beyond its documented API.

The gateway writes a frame at once to a client that keeps up, as
`websockets.broadcast` does (no task switch per frame) but framed once per
frame rather than once per client (`text_frame`), and measures a
client's backlog where only the server can see it: the transport's buffer and
the kernel's. Neither has a public API in `websockets.asyncio`, so both are
done here and nowhere else, on these internals (websockets 14 to 17):

- `ServerConnection.protocol` (the sans-I/O `ServerProtocol`), its `state`
  and `send_text(data)`, which only buffers the frame;
- `ServerConnection.send_data()`, which writes what the protocol buffered to
  the transport (what `broadcast` calls); websockets calls it after every
  frame it buffers, so nothing waits in the protocol between two calls, and a
  frame written to the transport directly keeps its place in the stream;
- `Protocol.extensions`: a frame is written ready-made only when none was
  negotiated (the gateway offers none: `compression=None`);
- `ServerConnection.send_in_progress`, set while a fragmented message is
  being sent (no other frame may be written then);
- `ServerConnection.pending_pings` (ping payload → the future its pong
  completes, and when it was sent) and `Protocol.send_ping(data)`: the
  keepalive pings without waiting for the write buffer to drain, which the
  public `ping()` does;
- `ServerConnection.transport`, the asyncio transport: its write buffer
  size, `is_closing()`, `abort()` and the socket under it.

`missing_internals()` lists what is not where this module expects it; the
server refuses to start on a `websockets` that lacks one of them, and a test
drives every method here on a real connection, so an upgrade that changes
them fails loudly instead of silently losing the direct write path.
"""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import os
import struct
import termios
from collections.abc import Sequence
from typing import Final

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.protocol import Protocol, State

from community_gateway.sendqueue import Outgoing

WRITE_LIMIT: Final = 32 * 1024
"""websockets' high-water mark for a connection's socket buffer (its default, set explicitly)."""
_TIOCOUTQ: int | None = getattr(termios, "TIOCOUTQ", None)


def missing_internals() -> list[str]:
    """The internals this module relies on that the installed `websockets` lacks."""
    missing = [
        f"{cls.__name__}.{name}"
        for cls, name in (
            (Connection, "send_data"),
            (Connection, "connection_made"),
            (Protocol, "send_text"),
            (Protocol, "send_ping"),
            (Protocol, "state"),
        )
        if not hasattr(cls, name)
    ]
    # Instance attributes: set in `Connection.__init__` / `connection_made` and
    # `Protocol.__init__` (checked in their source; without it, by the test only).
    try:
        init = inspect.getsource(Connection.__init__)
        made = inspect.getsource(Connection.connection_made)
        protocol_init = inspect.getsource(Protocol.__init__)
    except (OSError, TypeError):
        return missing
    for owner, attribute, source in (
        ("Connection", "self.protocol =", init),
        ("Connection", "self.send_in_progress", init),
        ("Connection", "self.pending_pings", init),
        ("Connection", "self.transport =", made),
        ("Protocol", "self.extensions", protocol_init),
    ):
        if attribute not in source:
            missing.append(f"{owner}.{attribute.removeprefix('self.').rstrip(' =')}")
    return missing


def text_frame(payload: bytes) -> bytes:
    """A whole unmasked text frame carrying `payload` (RFC 6455 §5.2), no extension.

    What websockets' server writes for `send_text(payload)` when no extension
    was negotiated (a test compares the two for every length form).
    """
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def _wire(item: Outgoing) -> bytes:
    """`item`'s frame on the wire, made by the first write that needs it."""
    wire = item.wire
    if wire is None:
        wire = item.wire = text_frame(item.payload)
    return wire


def kernel_unacked(fd: int | None) -> int:
    """Bytes the kernel still holds for a socket (sent but not acknowledged, or not sent).

    Linux's TIOCOUTQ (SIOCOUTQ) on a TCP socket; 0 where it is not available.
    """
    if fd is None or _TIOCOUTQ is None:
        return 0
    try:
        raw = fcntl.ioctl(fd, _TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])


class Link:
    """One server connection as the outbound path sees it."""

    __slots__ = ("_fd", "_framed", "_write_limit", "ws")

    def __init__(self, ws: ServerConnection, write_limit: int = WRITE_LIMIT) -> None:
        self.ws = ws
        sock = ws.transport.get_extra_info("socket")
        self._fd: int | None = sock.fileno() if sock is not None else None
        self._write_limit = write_limit
        # Ready-made frames only where no extension transforms them.
        self._framed = not ws.protocol.extensions

    def is_open(self) -> bool:
        return self.ws.state is State.OPEN

    def can_write_now(self) -> bool:
        """Open, no fragmented message being sent, the socket buffer below the high-water mark."""
        ws = self.ws
        return (
            ws.protocol.state is State.OPEN
            and ws.send_in_progress is None
            and ws.transport.get_write_buffer_size() < self._write_limit
        )

    def write_all(self, items: Sequence[Outgoing]) -> None:
        """Write text frames to the transport without waiting (`broadcast`'s way), in order,
        in one write (one system call).

        Each frame is made once (`item.wire`) and the same bytes go to every
        client it is written to. Only when `can_write_now()`; raises if the
        connection is going away.
        """
        ws = self.ws
        if not self._framed:
            for item in items:
                ws.protocol.send_text(item.payload)
            ws.send_data()
        elif len(items) == 1:
            ws.transport.write(_wire(items[0]))
        else:
            ws.transport.writelines([_wire(item) for item in items])

    def ping(self) -> asyncio.Future[float] | None:
        """Send a ping at once; the future completes (with the latency) when its pong comes.

        What `ServerConnection.ping()` does, without its wait for the write
        buffer to drain: the keepalive pings every client from one loop, and a
        client that reads nothing must not hold it up. None when the
        connection is not open; raises if it is going away.
        """
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            return None
        data = os.urandom(4)
        while data in ws.pending_pings:
            data = os.urandom(4)
        loop = asyncio.get_running_loop()
        pong: asyncio.Future[float] = loop.create_future()
        ws.pending_pings[data] = (pong, loop.time())
        ws.protocol.send_ping(data)
        ws.send_data()
        return pong

    def buffered(self) -> int:
        """Bytes waiting in the transport's write buffer."""
        return self.ws.transport.get_write_buffer_size()

    def held(self) -> int:
        """Bytes written but not yet acknowledged by the peer: transport buffer and kernel."""
        return self.ws.transport.get_write_buffer_size() + kernel_unacked(self._fd)

    def is_closing(self) -> bool:
        return self.ws.transport.is_closing()

    def abort(self) -> None:
        """Drop the TCP connection at once (a close that cannot get through)."""
        self.ws.transport.abort()
