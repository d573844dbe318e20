"""Hostile clients of a real gateway (SPEC §3, §9).

A seeded fuzzer sends random text and binary frames, deeply nested JSON,
every op with each field of the wrong type, unknown ops, floods and frames
over 16 KiB. Every answer must be an `error` frame (one per frame sent), the
connection must stay open, and a bystander subscribed to `feed` on the same
instance must keep receiving every event published meanwhile. Frames over
64 KiB and invalid UTF-8 end the connection with their documented close codes
(1009, 1007). The request head limits of the gateway's HTTP side are checked
over raw sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

from community_gateway.config import GatewayConfig

from tests.conftest import JWT_SECRET, WsClient, make_user
from tests.hostile import DEEP_BODIES, malformed_claim_tokens
from tests.integration.gateway.conftest import is_event, post_data

SEED = 20261202

WRONG: list[Any] = [None, True, 1.5, -1, 2**64, "", "x" * 300, [], [1], {}, {"a": 1}]
"""Values of the wrong type or out of range for some field of every op."""

OPS: dict[str, dict[str, Any]] = {
    "subscribe": {"channel": "feed", "since": 0},
    "unsubscribe": {"channel": "feed"},
    "refresh": {"token": "x"},
    "read": {"channel": "user:00000000-0000-0000-0000-000000000000", "seq": 1},
    "mode": {"mode": "background"},
    "visibility": {"visible": True},
    "ping": {},
}


def wrong_typed_frames() -> Iterator[dict[str, Any]]:
    """Each op with one field (its own, `op` or `id`) replaced by a wrong value."""
    for op, fields in OPS.items():
        for name in [*fields, "id"]:
            for value in WRONG:
                if (name, value) in (("since", None), ("id", None), ("id", -1), ("id", "")):
                    continue  # an absent `since` or `id`, integer and string ids are valid
                yield {"op": op, **fields, name: value}
    for value in [*WRONG, "PING", "subscribe ", "nope", "__proto__"]:
        yield {"op": value}
    yield {"channel": "feed"}  # no op at all
    for token in malformed_claim_tokens(JWT_SECRET).values():
        yield {"op": "refresh", "token": token}  # signed, with malformed claims


def random_frames(rng: random.Random, count: int) -> Iterator[str | bytes]:
    alphabet = '{}[]":,0123456789abcdefnulltrue \\\u00e9\u2028\ud7ff'
    for _ in range(count):
        kind = rng.randrange(4)
        size = rng.randrange(0, 300)
        if kind == 0:
            yield bytes(rng.randrange(256) for _ in range(size))
        elif kind == 1:
            yield "".join(rng.choice(alphabet) for _ in range(size))
        elif kind == 2:
            depth = rng.randrange(30, 3000)
            yield rng.choice("[{") * depth
        else:
            yield json.dumps([rng.random(), {"op": rng.choice(list(OPS))}] * rng.randrange(5))


class Attacker:
    """Sends frames and counts the answers by kind (`error` frames by code)."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws
        self.sent = 0
        self.answers: dict[str, int] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws.connection:
                frame = json.loads(message)
                kind = frame["code"] if frame.get("op") == "error" else frame.get("op")
                self.answers[kind] = self.answers.get(kind, 0) + 1

    async def send(self, message: str | bytes) -> None:
        await self.ws.send_raw(message)
        self.sent += 1

    async def all_answered(self, timeout: float = 15.0) -> dict[str, int]:
        """Waits for one answer per frame sent (the connection must stay open)."""
        deadline = time.monotonic() + timeout
        while sum(self.answers.values()) < self.sent:
            assert not self.reader.done(), f"closed with {self.ws.connection.close_code}"
            assert time.monotonic() < deadline, (self.sent, self.answers)
            await asyncio.sleep(0.02)
        return self.answers


async def test_a_fuzzing_client_gets_errors_and_bystanders_keep_their_feed(
    gateway: Any, gateway_factory: Any, ws_connect: Any, publish_event: Any
) -> None:
    rng = random.Random(SEED)
    # No op budget to speak of here, so that every frame gets the decoder's
    # answer rather than `rate_limited`; the flood goes to `gateway` (defaults).
    unlimited = await gateway_factory(config=GatewayConfig(op_rate=1e9, op_burst=10**9))
    published: list[str] = []
    stop = asyncio.Event()

    async def publish_posts() -> None:
        while not stop.is_set():
            data = post_data(content=f"still live {len(published)}")
            await publish_event("posts.post.created", data)
            published.append(data["id"])
            await asyncio.sleep(0.05)

    async with (
        ws_connect(unlimited) as bystander,
        ws_connect(gateway) as other_bystander,
        ws_connect(unlimited, make_user().token) as fuzz_target,
        ws_connect(gateway, make_user().token) as flood_target,
    ):
        for ws in (bystander, other_bystander):
            assert (await ws.subscribe("feed"))["op"] == "subscribed"
        publisher = asyncio.create_task(publish_posts())
        fuzzer, flooder = Attacker(fuzz_target), Attacker(flood_target)
        try:
            # Rounds of fuzzing for about two seconds, so that events keep
            # arriving while it goes on.
            started, rounds = time.monotonic(), 0
            while rounds < 20:
                rounds += 1
                for frame in wrong_typed_frames():
                    await fuzzer.send(json.dumps(frame))
                for body in DEEP_BODIES.values():
                    await fuzzer.send(body.decode())
                    await fuzzer.send(body)  # the same as a binary frame
                for message in random_frames(rng, 300):
                    await fuzzer.send(message)
                await fuzzer.send('{"op": "ping", "pad": "' + "x" * 20_000 + '"}')
                await fuzzer.send("[" * 30_000 + "]" * 30_000)  # 60 KB and deep
                answers = await fuzzer.all_answered()
                assert set(answers) == {"bad_request", "too_large"}, answers
                assert answers["too_large"] == 2 * rounds
                if time.monotonic() - started > 2.0:
                    break
            await fuzzer.send('{"op": "ping"}')  # still open and served
            assert (await fuzzer.all_answered()).get("pong") == 1

            for n in range(500):
                await flooder.send(json.dumps({"op": "ping", "id": n}))
            answers = await flooder.all_answered()
            assert set(answers) == {"pong", "rate_limited"}, answers
            assert answers["rate_limited"] >= 100, answers
        finally:
            stop.set()
            await publisher
            fuzzer.reader.cancel()
            flooder.reader.cancel()
        assert fuzzer.sent > 1000, fuzzer.sent
        print(f"{fuzzer.sent} fuzz frames, {flooder.sent} flood frames, {len(published)} events")
        assert len(published) >= 3, published
        # Both bystanders got every event published while the attack went on.
        for ws in (bystander, other_bystander):
            wanted = set(published)
            while wanted:
                frame = await ws.recv_until(is_event("feed", "post.created", wanted))
                wanted.discard(frame["data"]["id"])


async def test_frames_over_64_kib_close_with_1009(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        await ws.send_raw("[" * (65 * 1024))
        assert await ws.wait_closed() == 1009


async def test_invalid_utf8_text_closes_with_1007(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        await ws.connection.send(b'{"op": "ping", "x": "\xff\xfe"}', text=True)
        assert await ws.wait_closed() == 1007


# --------------------------------------------------------------------------- the HTTP side


def _exchange(port: int, head: bytes) -> bytes:
    """Send a request head (stopping early if answered); everything the server sends back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        view = memoryview(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while view:
                view = view[sock.send(view[:65536]) :]
                if select.select([sock], [], [], 0)[0]:
                    break
        answer = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


async def test_request_heads_over_the_limits_are_431(gateway: Any) -> None:
    heads = {
        "an 8 MB header": b"X-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n",
        "2,000 headers": b"".join(b"X-H%d: v\r\n" % i for i in range(2000)),
        "17 KiB over short lines": b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(17)),
    }
    for what, lines in heads.items():
        head = b"GET /ws HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n"
        answer = await asyncio.to_thread(_exchange, gateway.port, head)
        assert answer.startswith(b"HTTP/1.1 431 "), (what, answer[:200])
    fine = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"
    assert (await asyncio.to_thread(_exchange, gateway.port, fine)).startswith(b"HTTP/1.1 200")


async def test_a_handshake_sent_slowly_is_closed(gateway_factory: Any) -> None:
    instance = await gateway_factory(http_header_timeout_seconds=2.0)

    def trickle() -> float:
        with socket.create_connection(("127.0.0.1", instance.port), timeout=5) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\n")
            started = time.monotonic()
            while time.monotonic() - started < 15:
                try:
                    if select.select([sock], [], [], 0.2)[0] and sock.recv(65536) == b"":
                        return time.monotonic() - started
                    sock.send(b"X-a: b\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - started
        raise AssertionError("still open after 15 s")

    took = await asyncio.to_thread(trickle)
    assert 1.5 <= took <= 10, took
