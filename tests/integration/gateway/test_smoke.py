from __future__ import annotations

from typing import Any

from tests.conftest import make_user
from tests.integration.gateway.conftest import post_data


async def test_smoke(gateway: Any, ws_connect: Any, publish_event: Any) -> None:
    async with ws_connect(gateway) as ws:
        assert ws.hello["role"] == "guest"
        sub = await ws.subscribe("feed")
        assert sub["op"] == "subscribed", sub
        data = post_data()
        await publish_event("posts.post.created", data)
        [event] = await ws.events("feed", 1)
        assert event["data"]["id"] == data["id"]
    user = make_user()
    async with ws_connect(gateway, user.token) as ws:
        assert ws.hello["channels"] == [f"user:{user.id}"]
