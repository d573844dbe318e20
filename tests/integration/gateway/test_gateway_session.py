"""Token expiry and refresh, stopping an instance, router failover."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from community_gateway.config import GatewayConfig
from community_shared.auth import issue_token
from community_shared.events import encode_envelope, make_event

from tests.conftest import JWT_SECRET, RUN_ID, eventually, make_user
from tests.integration.gateway.conftest import post_data


async def test_token_expiry_closes_with_4401(gateway: Any, ws_connect: Any) -> None:
    user = make_user(ttl=2)
    async with ws_connect(gateway, user.token) as ws:
        assert await ws.wait_closed(timeout=6) == 4401


async def test_refresh_extends_the_session(gateway: Any, ws_connect: Any) -> None:
    user = make_user(ttl=2)
    async with ws_connect(gateway, user.token) as ws:
        fresh = make_user(ttl=3600)  # another user's token is refused
        answer = await ws.request({"op": "refresh", "token": fresh.token})
        assert (answer["op"], answer["code"]) == ("error", "forbidden")
        answer = await ws.request({"op": "refresh", "token": "not-a-token"})
        assert (answer["op"], answer["code"]) == ("error", "bad_request")
        token = issue_token(
            sub=user.id, role="student", name=user.name, secret=JWT_SECRET, ttl_seconds=3600
        )
        assert (await ws.request({"op": "refresh", "token": token}))["op"] == "ok"
        await asyncio.sleep(2.5)
        assert (await ws.request({"op": "ping"}))["op"] == "pong"


async def test_refresh_to_fewer_rights_drops_channels(gateway: Any, ws_connect: Any) -> None:
    instructor = make_user("instructor")
    async with ws_connect(gateway, instructor.token) as ws:
        await ws.subscribe("reviews")
        await ws.subscribe("feed")
        demoted = issue_token(sub=instructor.id, role="student", name="x", secret=JWT_SECRET)
        answer = await ws.request({"op": "refresh", "token": demoted})
        assert answer["op"] == "ok"
        assert await ws.recv() == {"op": "unsubscribed", "channel": "reviews"}


async def test_guest_cannot_refresh_into_a_user(gateway: Any, ws_connect: Any) -> None:
    async with ws_connect(gateway) as ws:
        answer = await ws.request({"op": "refresh", "token": make_user().token})
        assert answer["code"] == "forbidden"


async def test_stopping_an_instance_closes_its_clients_with_1012(
    gateway_factory: Any, ws_connect: Any
) -> None:
    server = await gateway_factory()
    async with ws_connect(server) as guest, ws_connect(server, make_user().token) as user:
        await guest.subscribe("feed")
        stopping = asyncio.create_task(server.stop())
        assert await guest.wait_closed() == 1012
        assert await user.wait_closed() == 1012
        await stopping


async def test_stopping_spreads_the_closes_over_the_drain_window(
    gateway_factory: Any, ws_connect: Any, nats_client: Any, settings_for: Any
) -> None:
    """SPEC §9: no reconnect storm. Clients still open keep getting events meanwhile."""
    server = await gateway_factory(config=GatewayConfig(drain_seconds=1.0, drain_min_rate=0))
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ws_connect(server)) for _ in range(5)]
        for ws in clients:
            await ws.subscribe("feed")
        began = asyncio.get_running_loop().time()
        stopping = asyncio.create_task(server.stop())

        async def closed(ws: Any) -> float:
            assert await ws.wait_closed(timeout=5) == 1012
            return float(asyncio.get_running_loop().time() - began)

        closed_at = sorted(await asyncio.gather(*(closed(ws) for ws in clients)))
        await stopping
    # Five closes 0.2 s apart: the last one 0.8 s after the first.
    assert closed_at[-1] - closed_at[0] >= 0.6, closed_at
    assert closed_at[-1] < 3.0, closed_at


async def test_router_fails_over_to_the_next_instance(
    settings_for: Any, gateway_factory: Any, ws_connect: Any, nats_client: Any
) -> None:
    """Two instances on a deployment of their own: stop the router, the other takes over."""
    prefix = f"{RUN_ID}.fo{uuid.uuid4().hex[:6]}."
    config = GatewayConfig(router_lease_seconds=1.0)
    first = await gateway_factory(config=config, nats_subject_prefix=prefix)
    second = await gateway_factory(config=config, nats_subject_prefix=prefix)
    assert first.router.is_leader and not second.router.is_leader
    js = nats_client.jetstream()

    async def publish(post: dict[str, Any]) -> None:
        envelope = make_event("posts.post.created", post, source="posts", actor_id=None)
        await js.publish(
            f"{prefix}posts.post.created",
            encode_envelope(envelope),
            headers={"Nats-Msg-Id": str(envelope.id)},
        )

    async with ws_connect(second) as ws:
        await ws.subscribe("feed")
        before = post_data(content="before")
        await publish(before)
        frame = await ws.recv_until(lambda f: f.get("op") == "event")
        assert frame["data"]["id"] == before["id"]
        await first.stop()

        async def second_routes() -> bool:
            return bool(second.router.is_leader)

        await eventually(second_routes, timeout=5)
        after = post_data(content="after")
        await publish(after)
        frame = await ws.recv_until(lambda f: f.get("op") == "event")
        assert frame["data"]["id"] == after["id"]


async def test_a_client_that_answers_no_ping_is_closed(gateway_factory: Any) -> None:
    """A peer that completes the handshake and then goes silent (no pongs) is dropped."""
    server = await gateway_factory(config=GatewayConfig(ping_interval=0.2, ping_timeout=0.4))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await writer.drain()
    status = await reader.readline()
    assert b"101" in status

    async def connected() -> bool:
        return server.connection_count == 1

    async def dropped() -> bool:
        return server.connection_count == 0

    await eventually(connected)
    await eventually(dropped, timeout=5)
    writer.close()


async def test_a_client_that_answers_pings_stays_and_no_connection_has_a_keepalive_task(
    gateway_factory: Any, ws_connect: Any
) -> None:
    """Keepalive pings come from the gateway's one watch loop: connections that answer
    stay open over many ping intervals, and none has a keepalive task of its own."""
    server = await gateway_factory(config=GatewayConfig(ping_interval=0.1, ping_timeout=0.3))
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ws_connect(server)) for _ in range(10)]
        await asyncio.sleep(1.5)  # ~15 ping intervals, several timeouts
        assert server.connection_count == 10
        for ws in clients:
            assert (await ws.request({"op": "ping"}))["op"] == "pong"
        # websockets would start one per connection (`ping_interval` given to it).
        assert [c.ws.keepalive_task for c in server._clients] == [None] * 10
