"""Handshake, hello, HTTP probes."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from community_shared.auth import issue_token
from websockets.exceptions import InvalidStatus

from tests.conftest import JWT_SECRET, make_user


def http_url(server: Any, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_guest_hello(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        assert ws.hello == {
            "op": "hello",
            "user_id": None,
            "role": "guest",
            "channels": [],
            "unread": 0,
        }


async def test_user_hello_with_query_token_and_header(gateway: Any, ws_connect: Any) -> None:
    user = make_user("student")
    expected = {
        "op": "hello",
        "user_id": str(user.id),
        "role": "student",
        "channels": [f"user:{user.id}"],
        "unread": 0,
    }
    async with ws_connect(gateway, user.token) as ws:
        assert ws.hello == expected
    async with ws_connect(gateway, headers=user.headers) as ws:
        assert ws.hello == expected
    instructor = make_user("instructor")
    async with ws_connect(gateway, instructor.token) as ws:
        assert ws.hello["role"] == "instructor"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        issue_token(
            sub=uuid.uuid4(), role="student", name="x", secret=JWT_SECRET, now=time.time() - 7200
        ),  # expired
        issue_token(sub=uuid.uuid4(), role="student", name="x", secret="another-secret-entirely!!"),
        issue_token(sub=uuid.uuid4(), role="superuser", name="x", secret=JWT_SECRET),
    ],
    ids=["garbage", "expired", "forged", "bad-role"],
)
async def test_invalid_token_is_refused_with_401(gateway: Any, ws_connect: Any, token: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(gateway, token):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(gateway, headers={"Authorization": f"Bearer {token}"}):
            pass
    assert refused.value.response.status_code == 401


async def test_malformed_authorization_header_is_401(gateway: Any, ws_connect: Any) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(gateway, headers={"Authorization": "Basic abc"}):
            pass
    assert refused.value.response.status_code == 401


async def test_health_ready_metrics(gateway: Any, ws_connect: Any) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        health = await http.get(http_url(gateway, "/health"))
        assert health.status_code == 200
        ready = await http.get(http_url(gateway, "/ready"))
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready"}
        async with ws_connect(gateway) as ws:
            await ws.request({"op": "ping"})
            metrics = await http.get(http_url(gateway, "/metrics"))
        assert metrics.status_code == 200
        text = metrics.text
        for name in (
            "gateway_connections",
            "gateway_frames_sent_total",
            "gateway_frames_dropped_total",
            "gateway_closes_total",
        ):
            assert name in text
        assert 'gateway_ops_total{op="ping",outcome="ok"}' in text
        assert (await http.get(http_url(gateway, "/nope"))).status_code == 404


async def test_ready_names_the_failing_dependency(gateway_factory: Any) -> None:
    server = await gateway_factory(redis_url="redis://127.0.0.1:1/0")
    async with httpx.AsyncClient(timeout=5) as http:
        ready = await http.get(http_url(server, "/ready"))
    assert ready.status_code == 503
    body = ready.json()
    assert set(body["failing"]) == {"redis"}
    assert "redis" in body["detail"]


async def test_http_answers_close_the_connection_so_keep_alive_clients_never_see_a_drop(
    gateway: Any,
) -> None:
    """The server closes the connection after a plain HTTP answer, and says so.

    A keep-alive client (httpx, a load balancer's health checker) that was not
    told would send its next request on the closing connection and see it
    dropped without an answer, as a readiness probe once did.
    """

    def probe_in_a_row(rounds: int) -> list[str]:
        failures: list[str] = []
        with httpx.Client(timeout=5) as http:
            for _ in range(rounds):
                for path in ("/health", "/ready", "/metrics", "/nope"):
                    try:
                        answer = http.get(http_url(gateway, path))
                    except httpx.HTTPError as exc:
                        failures.append(f"{path}: {exc!r}")
                        continue
                    if answer.headers.get("connection") != "close":
                        failures.append(f"{path}: no Connection: close")
        return failures

    assert await asyncio.to_thread(probe_in_a_row, 40) == []
