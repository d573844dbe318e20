"""Limits on the HTTP request head, which uvicorn does not enforce itself (SPEC §3).

uvicorn with httptools accepts request heads of any size (an 8 MB header, two
thousand header lines) and keeps a connection open for as long as its request
head is unfinished (slowloris). `head_limited_protocol` returns uvicorn's
httptools protocol with three limits added, each a setting:

- a head of more than `max_bytes` (default 16 KiB: the request line and
  header lines) is answered `431 Request Header Fields Too Large`, then the
  connection is closed;
- so is a head of more than `max_headers` header lines (default 100);
- a connection that has not sent a complete request head within `timeout`
  seconds (default 30) is closed: counted from the moment it opened, and on a
  kept-alive connection from the first bytes of each later request (the idle
  time between requests is uvicorn's keep-alive timeout, 5 s).

Only the head is limited here; the body is limited by the app (413 above
`request_max_body_size`).

The head's size and line count are checked when the parser has read the
whole head. Until then the bytes received while a head is unfinished are
counted: the parser never holds more than `max_bytes` plus one read of the
socket before the 431.

The timeout of a later request on a kept-alive connection starts at the end
of the first read that leaves its head unfinished (a head that arrives in one
read needs no timer).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar, Final

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LINGER_SECONDS: Final = 2.0
"""How long a refused connection keeps reading (and discarding) before it closes.

Closing a socket with unread bytes makes the kernel send a reset, which can
destroy the 431 before the client read it; a client that is still sending
its oversized head gets time to finish and read the answer."""


class HeadLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_bytes: int = 16 * 1024
    max_headers: int = 100
    timeout: float = 30.0


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limits."""


_REFUSAL_BODY: Final = json.dumps(
    {"status_code": 431, "detail": "request header fields too large"}
).encode()
_REFUSAL: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n"
    b"connection: close\r\n"
    b"\r\n" + _REFUSAL_BODY
)


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of `limits` on every request head.

    Per request it adds two flag updates and, once the head is parsed, a sum
    over its header lines; a timer only for a connection that opened or a
    head that is still unfinished after a read.
    """

    limits: ClassVar[HeadLimits] = HeadLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a new connection owes its first head
        self._unfinished_bytes = 0  # bytes received while the head stayed unfinished
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    # -- connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: read and drop until the client or the timer closes
        head_was_open = self._in_head
        super().data_received(data)
        if self._refused or not self._in_head:
            return
        self._arm_head_timer()
        if head_was_open:
            # Unfinished before this read and still: all of the read is head.
            self._unfinished_bytes += len(data)
            if self._unfinished_bytes > self.limits.max_bytes:
                self._refused = True
                self._send_refusal()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers any parser error with 400, including our refusal below.
        if self._refused:
            self._send_refusal()
        else:
            super().send_400_response(msg)

    # -- parser callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._unfinished_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        headers = self.headers
        limits = self.limits
        # Request line and "name: value\r\n" lines, as sent (give or take the method).
        size = len(self.url) + 4 * len(headers) + sum(len(n) + len(v) for n, v in headers)
        if len(headers) > limits.max_headers or size > limits.max_bytes:
            self._refused = True
            raise _HeadTooLarge  # stops the parser; uvicorn then calls send_400_response
        super().on_headers_complete()

    # -- limits ------------------------------------------------------------------

    def _send_refusal(self) -> None:
        self._disarm_head_timer()
        if self.transport.is_closing():
            return
        self.transport.write(_REFUSAL)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()


def head_limited_protocol(limits: HeadLimits) -> type[HeadLimitedProtocol]:
    """The protocol class to pass to uvicorn as `http=`, with these limits."""

    class Limited(HeadLimitedProtocol):
        pass

    Limited.limits = limits
    return Limited
