"""Request-head limits of a really running service process (SPEC §3).

The posts service is started as its own process through its real entry point
(`main()` → `community_shared.web.run`, uvicorn with httptools), and spoken
to over raw sockets: a head over 16 KiB or with too many lines is answered
431; a connection that does not finish its request head in time is closed.
The head timeout is a setting (`HTTP_HEADER_TIMEOUT_SECONDS`, default 30 s);
this process runs with 2 s so the test stays short.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from community_shared.headlimits import HeadLimits
from community_shared.settings import Settings

HEAD_TIMEOUT = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str = "/health", extra: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            + extra
            + b"\r\n"
        )
        return _read_all(sock)


def _read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def posts_process(
    settings_for: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """The posts service as a process of its own; yields its port."""
    settings = settings_for("posts")
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DB_POOL_MAX_SIZE": "2",
        "HTTP_HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
    }
    log: Path = tmp_path_factory.mktemp("posts") / "posts.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from community_posts.app import main; main()"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if _get(port).startswith(b"HTTP/1.1 200"):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"posts did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _send_until_answered(port: int, head: bytes) -> bytes:
    """Send `head` in pieces, stopping as soon as the server answers; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        view = memoryview(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while view:
                sent = sock.send(view[:65536])
                view = view[sent:]
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
        return _read_all(sock)


def _read_response(sock: socket.socket) -> bytes:
    """One response (head and Content-Length body) from a kept-alive connection."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _status_line(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


def test_an_8_mb_header_is_431(posts_process: int) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n"
    answer = _send_until_answered(posts_process, head)
    assert _status_line(answer) == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]
    assert answer.endswith(b'{"status_code": 431, "detail": "request header fields too large"}')


def test_two_thousand_headers_are_431(posts_process: int) -> None:
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(2000))
    answer = _send_until_answered(
        posts_process, b"GET /health HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n"
    )
    assert _status_line(answer) == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]


def test_more_than_a_hundred_short_headers_are_431(posts_process: int) -> None:
    lines = b"".join(b"a%d: b\r\n" % i for i in range(101))
    assert len(lines) < 2000
    assert _status_line(_get(posts_process, extra=lines)).startswith(b"HTTP/1.1 431")


def test_a_head_over_16_kib_in_short_lines_is_431(posts_process: int) -> None:
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(17))
    assert _status_line(_get(posts_process, extra=lines)).startswith(b"HTTP/1.1 431")


def test_a_head_sent_in_pieces_within_the_timeout_is_served(posts_process: int) -> None:
    with socket.create_connection(("127.0.0.1", posts_process), timeout=5) as sock:
        for piece in (b"GET /health HT", b"TP/1.1\r\nHost: t\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.2)
        assert _status_line(_read_all(sock)) == b"HTTP/1.1 200 OK"


def test_heads_within_the_limits_are_served(posts_process: int) -> None:
    big_but_allowed = b"X-Big: " + b"a" * (15 * 1024) + b"\r\n"
    assert _status_line(_get(posts_process, extra=big_but_allowed)) == b"HTTP/1.1 200 OK"
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(90))
    assert _status_line(_get(posts_process, extra=lines)) == b"HTTP/1.1 200 OK"
    # Keep-alive: two requests on one connection.
    with socket.create_connection(("127.0.0.1", posts_process), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        first = _read_response(sock)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        second = _read_all(sock)
    assert _status_line(first) == _status_line(second) == b"HTTP/1.1 200 OK"


def _seconds_until_closed(sock: socket.socket, trickle: bytes | None, limit: float) -> float:
    """Send `trickle` every 0.2 s (or nothing) until the server closes; seconds it took."""
    started = time.monotonic()
    sock.setblocking(False)
    while time.monotonic() - started < limit:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic() - started
            except ConnectionResetError:
                return time.monotonic() - started
        if trickle is not None:
            try:
                sock.send(trickle)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
    raise AssertionError(f"connection still open after {limit}s")


def test_a_head_sent_slowly_is_closed(posts_process: int) -> None:
    with socket.create_connection(("127.0.0.1", posts_process), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        took = _seconds_until_closed(sock, b"X-a: b\r\n", limit=HEAD_TIMEOUT + 8)
    assert HEAD_TIMEOUT - 0.5 <= took <= HEAD_TIMEOUT + 8


def test_a_silent_connection_is_closed(posts_process: int) -> None:
    with socket.create_connection(("127.0.0.1", posts_process), timeout=5) as sock:
        took = _seconds_until_closed(sock, None, limit=HEAD_TIMEOUT + 8)
    assert HEAD_TIMEOUT - 0.5 <= took <= HEAD_TIMEOUT + 8


def test_a_slow_second_head_on_a_kept_alive_connection_is_closed(posts_process: int) -> None:
    with socket.create_connection(("127.0.0.1", posts_process), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert _status_line(_read_response(sock)) == b"HTTP/1.1 200 OK"
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        took = _seconds_until_closed(sock, b"X-a: b\r\n", limit=HEAD_TIMEOUT + 8)
    assert HEAD_TIMEOUT - 0.5 <= took <= HEAD_TIMEOUT + 8


def test_the_defaults_are_those_of_the_spec() -> None:
    settings = Settings.from_env("posts", 8001)
    assert settings.http_header_timeout_seconds == HeadLimits().timeout == 30.0
    assert settings.http_max_header_bytes == HeadLimits().max_bytes == 16 * 1024
    assert settings.http_max_headers == HeadLimits().max_headers == 100
