"""What the router needs in JetStream is created again when it goes missing (not only at start).

Each test runs a gateway on a deployment prefix of its own, deletes part of
its JetStream state behind its back, and checks that events are routed again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from community_gateway.config import GatewayConfig
from community_gateway.lease import LEASE_STREAM
from community_gateway.router import ROUTER_DURABLE
from community_shared.channelstreams import CHANNELS_STREAM
from community_shared.events import encode_envelope, make_event
from nats.js.api import StorageType, StreamConfig

from tests.conftest import eventually
from tests.integration.gateway.conftest import is_event, own_prefix, post_data, stream

CONFIG = GatewayConfig(router_lease_seconds=1.0)


async def publish_post(js: Any, prefix: str) -> str:
    post = post_data()
    envelope = make_event("posts.post.created", post, source="posts", actor_id=None)
    await js.publish(
        f"{prefix}posts.post.created",
        encode_envelope(envelope),
        headers={"Nats-Msg-Id": str(envelope.id)},
    )
    return str(post["id"])


async def test_routing_goes_on_after_the_lease_stream_and_consumer_are_deleted(
    gateway_factory: Any, ws_connect: Any, nats_client: Any
) -> None:
    prefix = own_prefix()
    server = await gateway_factory(config=CONFIG, nats_subject_prefix=prefix)
    js = nats_client.jetstream()
    async with ws_connect(server) as ws:
        await ws.subscribe("feed")
        await js.delete_stream(stream(prefix, LEASE_STREAM))
        await js.delete_consumer(stream(prefix, "EVENTS"), stream(prefix, ROUTER_DURABLE))
        post_id = await publish_post(js, prefix)
        # The lease is written again at the next renewal, the consumer at the next check.
        await ws.recv_until(is_event("feed", "post.created", {post_id}), timeout=15)
        info = await js.stream_info(stream(prefix, LEASE_STREAM))
        assert info.config.storage == StorageType.FILE
        assert server.router.is_leader


async def test_a_deleted_channel_stream_is_created_again(
    gateway_factory: Any, nats_client: Any
) -> None:
    prefix = own_prefix()
    await gateway_factory(config=CONFIG, nats_subject_prefix=prefix)
    js = nats_client.jetstream()
    channels = stream(prefix, CHANNELS_STREAM)
    await js.delete_stream(channels)
    post_id = await publish_post(js, prefix)

    async def in_history() -> bool:
        try:
            message = await js.get_last_msg(channels, f"{prefix}ch.feed")
        except Exception:
            return False
        return post_id.encode() in (message.data or b"")

    await eventually(in_history, timeout=10)


async def test_a_memory_lease_stream_of_an_earlier_version_is_replaced(
    gateway_factory: Any, nats_client: Any
) -> None:
    prefix = own_prefix()
    js = nats_client.jetstream()
    await js.add_stream(
        StreamConfig(
            name=stream(prefix, LEASE_STREAM),
            subjects=[f"{prefix}gw.>"],
            storage=StorageType.MEMORY,
            max_age=5.0,
            max_msgs_per_subject=1,
        )
    )
    server = await asyncio.wait_for(
        gateway_factory(config=CONFIG, nats_subject_prefix=prefix), timeout=30
    )
    info = await js.stream_info(stream(prefix, LEASE_STREAM))
    assert info.config.storage == StorageType.FILE
    assert info.config.max_age == CONFIG.router_lease_seconds
    assert server.router.is_leader


async def test_a_gateway_starts_on_a_router_consumer_that_was_created_again(
    gateway_factory: Any, ws_connect: Any, nats_client: Any
) -> None:
    """A consumer created again starts at a time; JetStream refuses to change that
    delivery policy, so an instance starting later must keep the consumer as it is."""
    prefix = own_prefix()
    first = await gateway_factory(config=CONFIG, nats_subject_prefix=prefix)
    js = nats_client.jetstream()
    await js.delete_consumer(stream(prefix, "EVENTS"), stream(prefix, ROUTER_DURABLE))
    async with ws_connect(first) as ws:
        await ws.subscribe("feed")
        post_id = await publish_post(js, prefix)
        await ws.recv_until(is_event("feed", "post.created", {post_id}), timeout=15)
    await first.stop()
    second = await asyncio.wait_for(
        gateway_factory(config=CONFIG, nats_subject_prefix=prefix), timeout=15
    )
    async with ws_connect(second) as ws:
        await ws.subscribe("feed")
        post_id = await publish_post(js, prefix)
        await ws.recv_until(is_event("feed", "post.created", {post_id}), timeout=15)


async def test_a_router_whose_lease_is_not_renewed_routes_nothing_until_it_is(
    gateway_factory: Any, ws_connect: Any, nats_client: Any
) -> None:
    """A stuck lease loop (a busy process, a lost task) must not leave a router routing
    on a lease another instance may have taken meanwhile: it fences itself."""
    from community_shared.tasks import stop_tasks

    prefix = own_prefix()
    server = await gateway_factory(config=CONFIG, nats_subject_prefix=prefix)
    router = server.router
    js = nats_client.jetstream()
    async with ws_connect(server) as ws:
        await ws.subscribe("feed")
        first = await publish_post(js, prefix)
        await ws.recv_until(is_event("feed", "post.created", {first}), timeout=10)
        lease_task, router._lease_task = router._lease_task, None
        await stop_tasks(lease_task)  # renewals stop; the route task does not know
        await asyncio.sleep(CONFIG.router_lease_seconds)
        unrouted = await publish_post(js, prefix)
        try:
            frame = await ws.recv_until(is_event("feed", "post.created", {unrouted}), timeout=2)
        except (AssertionError, TimeoutError):
            pass  # nothing routed: as it should be
        else:
            raise AssertionError(f"routed on a lease it no longer renews: {frame}")
        router._lease_task = asyncio.create_task(router._hold_lease())
        await ws.recv_until(is_event("feed", "post.created", {unrouted}), timeout=10)
