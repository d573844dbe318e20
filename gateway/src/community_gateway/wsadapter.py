"""Everything the gateway uses of a `websockets` connection beyond its documented API.

The gateway writes a frame at once to a client that keeps up, as
`websockets.broadcast` does (no task switch per frame), and measures a
client's backlog where only the server can see it: the transport's buffer and
the kernel's. Neither has a public API in `websockets.asyncio`, so both are
done here and nowhere else, on these internals (websockets 14 to 17):

- `ServerConnection.protocol` (the sans-I/O `ServerProtocol`), its `state`
  and `send_text(data)`, which only buffers the frame;
- `ServerConnection.send_data()`, which writes what the protocol buffered to
  the transport (what `broadcast` calls);
- `ServerConnection.send_in_progress`, set while a fragmented message is
  being sent (no other frame may be written then);
- `ServerConnection.transport`, the asyncio transport: its write buffer
  size, `is_closing()`, `abort()` and the socket under it.

`missing_internals()` lists what is not where this module expects it; the
server refuses to start on a `websockets` that lacks one of them, and a test
drives every method here on a real connection, so an upgrade that changes
them fails loudly instead of silently losing the direct write path.
"""

from __future__ import annotations

import fcntl
import inspect
import struct
import termios
from typing import Final

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.protocol import Protocol, State

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
            (Protocol, "state"),
        )
        if not hasattr(cls, name)
    ]
    # Instance attributes: set in `Connection.__init__` / `connection_made`
    # (checked in their source; without the source, by the test only).
    try:
        init = inspect.getsource(Connection.__init__)
        made = inspect.getsource(Connection.connection_made)
    except (OSError, TypeError):
        return missing
    for attribute, source in (
        ("self.protocol =", init),
        ("self.send_in_progress", init),
        ("self.transport =", made),
    ):
        if attribute not in source:
            missing.append(f"Connection.{attribute.removeprefix('self.').rstrip(' =')}")
    return missing


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

    __slots__ = ("_fd", "_write_limit", "ws")

    def __init__(self, ws: ServerConnection, write_limit: int = WRITE_LIMIT) -> None:
        self.ws = ws
        sock = ws.transport.get_extra_info("socket")
        self._fd: int | None = sock.fileno() if sock is not None else None
        self._write_limit = write_limit

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

    def write_now(self, payload: bytes) -> None:
        """Write one text frame to the transport without waiting (`broadcast`'s way).

        Only when `can_write_now()`; raises if the connection is going away.
        """
        self.ws.protocol.send_text(payload)
        self.ws.send_data()

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
