"""The batch router: order, acknowledgements, and a lease that routing cannot hold up.

Each test runs a gateway on a deployment prefix of its own against the real
NATS server.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from community_gateway.config import GatewayConfig
from community_gateway.router import ROUTER_DURABLE
from community_gateway.session import Session
from community_shared.channelstreams import CHANNELS_STREAM
from community_shared.events import encode_envelope, make_event

from tests.conftest import eventually
from tests.integration.gateway.conftest import OwnDeployment, is_event, post_data

CONFIG = GatewayConfig(router_lease_seconds=1.0)  # batches of up to 500 (the default)


async def publish_posts(js: Any, prefix: str, count: int) -> list[str]:
    """`count` post.created envelopes into EVENTS, pipelined; their post ids in order."""
    ids: list[str] = []
    acks = []
    for _ in range(count):
        post = post_data()
        envelope = make_event("posts.post.created", post, source="posts", actor_id=None)
        acks.append(
            await js.publish_async(
                f"{prefix}posts.post.created",
                encode_envelope(envelope),
                headers={"Nats-Msg-Id": str(envelope.id)},
            )
        )
        ids.append(str(post["id"]))
    await asyncio.gather(*acks)
    return ids


async def test_a_burst_is_routed_in_order_and_every_envelope_acknowledged(
    own_deployment: OwnDeployment,
) -> None:
    await own_deployment.gateway(CONFIG)
    js = own_deployment.js
    ids = await publish_posts(js, own_deployment.prefix, 1200)  # several pulled batches
    channels = own_deployment.stream(CHANNELS_STREAM)

    async def all_routed() -> bool:
        info = await js.stream_info(channels)
        return info.state.messages >= len(ids)

    await eventually(all_routed, timeout=20)
    info = await js.stream_info(channels)
    assert info.state.messages == len(ids)  # each once
    stored = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(channels, seq)
        stored.append(json.loads(message.data or b"{}")["data"]["id"])
    assert stored == ids  # in the order they were published

    async def all_acknowledged() -> bool:
        consumer = await js.consumer_info(
            own_deployment.stream("EVENTS"), own_deployment.stream(ROUTER_DURABLE)
        )
        return consumer.num_ack_pending == 0 and consumer.num_pending == 0

    await eventually(all_acknowledged, timeout=10)


async def test_a_client_gets_a_routed_burst_once_in_order_with_consecutive_seqs(
    own_deployment: OwnDeployment, ws_connect: Any
) -> None:
    """A routed batch reaches the fan-out as a burst; each client gets it in one
    write per loop turn, and each event is still its own frame with its own seq."""
    server = await own_deployment.gateway(CONFIG)
    js, prefix = own_deployment.js, own_deployment.prefix
    async with ws_connect(server) as ws:
        await ws.subscribe("feed")
        ids = await publish_posts(js, prefix, 1200)
        frames = await ws.events("feed", len(ids), timeout=20)
        assert [frame["data"]["id"] for frame in frames] == ids
        seqs = [frame["seq"] for frame in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(ids)))
        assert [f for f in await ws.drain() if f.get("op") == "event"] == []  # none twice


async def test_the_lease_is_renewed_while_the_routing_connection_is_stuck(
    own_deployment: OwnDeployment, ws_connect: Any
) -> None:
    """Renewals go on a NATS connection of their own: a routing connection that
    gets no answers (a burst of publishes ahead, a slow network) for several
    lease times costs the lease nothing, so no other instance takes over."""
    server = await own_deployment.gateway(CONFIG)
    router = server.router
    assert router.lease.js._nc is not router.js._nc
    js, prefix = own_deployment.js, own_deployment.prefix
    async with ws_connect(server) as ws:
        await ws.subscribe("feed")
        [first] = await publish_posts(js, prefix, 1)
        await ws.recv_until(is_event("feed", "post.created", {first}), timeout=10)
        held_seq = router.lease.seq
        routing = router.js._nc._transport._io_writer.transport  # the asyncio transport
        routing.pause_reading()  # nothing reaches the routing connection any more
        try:
            [second] = await publish_posts(js, prefix, 1)
            samples = []
            until = time.monotonic() + 3 * CONFIG.router_lease_seconds
            while time.monotonic() < until:
                samples.append(router.lease.fresh(time.monotonic()))
                await asyncio.sleep(0.1)
            assert router.lease.seq is not None and held_seq is not None
            # A renewal every 0.2 s: ~15 in 3 s (none at all on the routing connection).
            assert router.lease.seq - held_seq >= 5
            # Fresh throughout but for a renewal late on a busy machine now and then.
            assert sum(samples) >= 0.8 * len(samples), samples
        finally:
            routing.resume_reading()
        await ws.recv_until(is_event("feed", "post.created", {second}), timeout=10)


async def test_a_client_whose_fan_out_fails_is_closed_and_the_others_get_the_event(
    own_deployment: OwnDeployment, ws_connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await own_deployment.gateway(CONFIG)
    js, prefix = own_deployment.js, own_deployment.prefix
    async with ws_connect(server) as first, ws_connect(server) as second:
        await first.subscribe("feed")
        await second.subscribe("feed")
        broken = next(iter(server._by_channel["feed"])).session
        offer = Session.offer

        def offer_or_fail(session: Session, event: Any) -> Any:
            if session is broken:
                raise RuntimeError("a defect in one session")
            return offer(session, event)

        monkeypatch.setattr(Session, "offer", offer_or_fail)
        [post_id] = await publish_posts(js, prefix, 1)
        outcomes = []
        for ws in (first, second):
            try:
                await ws.recv_until(is_event("feed", "post.created", {post_id}), timeout=10)
                outcomes.append("event")
            except Exception:  # the connection closed under the read
                outcomes.append(ws.connection.protocol.close_rcvd.code)
        assert sorted(outcomes, key=str) == sorted([1011, "event"], key=str)
