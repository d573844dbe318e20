"""A websocket client driven at the raw socket level, for clients that stop reading.

websockets' sans-I/O `ClientProtocol` does the framing; this class moves the
bytes itself, so a test decides exactly when the socket is read: a client
that "stalls" simply stops calling `read`, and its kernel receive buffer (set
small) fills up, then the server's.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any
from urllib.parse import quote

import msgspec
from websockets.client import ClientProtocol
from websockets.frames import Close
from websockets.http11 import Response
from websockets.uri import parse_uri


class RawWsClient:
    """`await RawWsClient.connect(url, token)`; frames are dicts, `close` the close frame seen."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.frames: list[dict[str, Any]] = []
        self.eof = False
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(
        cls, url: str, token: str | None = None, *, receive_buffer: int = 4096
    ) -> RawWsClient:
        if token is not None:
            url = f"{url}?token={quote(token)}"
        uri = parse_uri(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before connecting so the advertised window stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (uri.host, uri.port))
        protocol = ClientProtocol(uri, max_size=None)
        protocol.send_request(protocol.connect())
        client = cls(sock, protocol)
        await client._flush()
        while not any(isinstance(e, Response) for e in await client._receive(5.0, keep=False)):
            pass
        return client

    async def send(self, frame: dict[str, Any]) -> None:
        self.protocol.send_text(msgspec.json.encode(frame))
        await self._flush()

    async def recv_until(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        """Read until a frame matching `predicate` arrives (every frame is kept in `frames`)."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for frame in self.frames[checked:]:
                if predicate(frame):
                    return frame
            checked = len(self.frames)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.eof:
                raise AssertionError("no matching frame")
            await self._receive(remaining)

    async def read_to_the_end(self, timeout: float = 10.0) -> None:
        """Read everything the socket still delivers, until EOF or a reset."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            await self._receive(deadline - time.monotonic())

    @property
    def close(self) -> Close | None:
        return self.protocol.close_rcvd

    def events(self, channel: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("op") == "event" and f.get("channel") == channel]

    def abort(self) -> None:
        self.sock.close()

    async def _receive(self, timeout: float, *, keep: bool = True) -> list[Any]:
        try:
            data = await asyncio.wait_for(self._loop.sock_recv(self.sock, 65536), timeout)
        except TimeoutError:
            return []
        except OSError:  # reset by the server
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.eof = True
            self.protocol.receive_eof()
        events = self.protocol.events_received()
        for event in events:
            if keep and getattr(event, "opcode", None) is not None and event.opcode.name == "TEXT":
                self.frames.append(msgspec.json.decode(event.data))
        # Answers pings while reading (a reading client is a live one).
        await self._flush()
        return events

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                try:
                    await self._loop.sock_sendall(self.sock, data)
                except OSError:
                    return
