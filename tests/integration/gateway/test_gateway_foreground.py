"""Who is looking at a page right now, across gateway instances: the foreground
connections the notifications service asks before it pushes (SPEC §11, §12)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from community_gateway.config import GatewayConfig
from community_shared.presencekeys import foreground_connections

from tests.conftest import RUN_ID, make_user, open_ws


async def _becomes(redis: Any, gateway: Any, user_id: str, count: int, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while True:
        now = (await foreground_connections(redis, gateway.settings, [user_id]))[user_id]
        if now == count:
            return
        assert time.monotonic() < deadline, f"foreground connections {now}, expected {count}"
        await asyncio.sleep(0.05)


async def test_foreground_connections_follow_mode_and_closes_on_every_instance(
    gateway_factory: Any, infra: Any
) -> None:
    prefix = f"{RUN_ID}:f{uuid.uuid4().hex[:8]}:"
    config = GatewayConfig(presence_heartbeat_seconds=2.0)
    a = await gateway_factory(config=config, redis_key_prefix=prefix)
    b = await gateway_factory(config=config, redis_key_prefix=prefix)
    redis = aioredis.Redis.from_url(infra.redis_url)
    user = make_user("instructor")
    uid = str(user.id)
    try:
        await _becomes(redis, a, uid, 0)
        async with open_ws(a.url, user.token) as tab, open_ws(b.url, user.token) as phone:
            await _becomes(redis, a, uid, 2)
            assert (await tab.request({"op": "mode", "mode": "background"}))["op"] == "ok"
            await _becomes(redis, a, uid, 1)
            # The same mode again changes nothing.
            assert (await tab.request({"op": "mode", "mode": "background"}))["op"] == "ok"
            assert (await phone.request({"op": "mode", "mode": "background"}))["op"] == "ok"
            await _becomes(redis, a, uid, 0)
            assert (await phone.request({"op": "mode", "mode": "foreground"}))["op"] == "ok"
            await _becomes(redis, a, uid, 1)
        # Closed (a background one and a foreground one): nobody is looking.
        await _becomes(redis, a, uid, 0)

        async with open_ws(b.url, user.token):
            await _becomes(redis, a, uid, 1)
            # An instance that stops takes its connections' foreground with it.
            await b.stop()
            await _becomes(redis, a, uid, 0)
    finally:
        await redis.aclose()
