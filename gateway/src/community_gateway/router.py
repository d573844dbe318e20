"""The router: domain events (stream `EVENTS`) into channel histories (`CHANNELS`, `INBOX`).

One durable pull consumer on `EVENTS`, shared by every gateway instance,
explicit acks. For each envelope, `channels.route` gives the channel events;
each is published to its channel's subject with `Nats-Msg-Id` =
`<event id>:<channel>:<type>`, so that a redelivered envelope (a crash between
publish and ack) is dropped by the channel stream instead of appearing twice.
The envelope is acknowledged only after its publishes are acknowledged.

Only one instance routes at a time: the holder of a lease (a message on
`gw.router.lease` written with `Nats-Expected-Last-Subject-Sequence`, in a
small memory stream whose age limit is the lease time). Two instances pulling
from the same consumer at once would publish concurrently and could reorder
two updates of one post (likes_count 5 then 6 arriving as 6 then 5), and the
per-resource coalescing would be split between instances. The others stand
by and take over within one lease time if the holder dies, at once if it stops
cleanly. A paused holder that lost its lease may publish a little longer than
it should; duplicates are still dropped by `Nats-Msg-Id`.

`resource.stats` is coalesced per resource: at most one event per interval
(300 ms by default), the newest one always published; the envelopes it stands
for are acknowledged after that publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from community_shared.events import decode_envelope
from community_shared.settings import Settings
from community_shared.streams import ensure_event_stream, ensure_stream
from community_shared.tasks import stop_tasks, wait_set
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from community_gateway import metrics
from community_gateway.channels import (
    ChannelEvent,
    MalformedEvent,
    channel_subject,
    encode_channel_message,
    format_ts,
    route,
)
from community_gateway.coalesce import Coalescer
from community_gateway.config import GatewayConfig

log = logging.getLogger(__name__)

LEASE_STREAM = "GATEWAY"
ROUTER_DURABLE = "gateway_router"
WRONG_LAST_SEQUENCE = 10071


@dataclass(frozen=True, slots=True)
class _Pending:
    """A channel event ready to publish, and where it came from."""

    event: ChannelEvent
    event_id: uuid.UUID
    ts: str


class Router:
    """Routes domain events while holding the lease; stands by otherwise."""

    def __init__(self, js: JetStreamContext, settings: Settings, config: GatewayConfig) -> None:
        self.js = js
        self.settings = settings
        self.config = config
        self.instance_id = uuid.uuid4().hex
        self.events_stream = settings.stream_name("EVENTS")
        self.durable = settings.stream_name(ROUTER_DURABLE)
        self.lease_stream = settings.stream_name(LEASE_STREAM)
        self.lease_subject = settings.subject("gw.router.lease")
        self._lease_seq: int | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._route_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._routing = False
        self._stopping = False
        self._coalescer: Coalescer[_Pending, Msg] = Coalescer(config.coalesce_seconds)
        self._held = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._lease_seq is not None

    async def setup(self) -> None:
        """Create the lease stream, the EVENTS stream if missing, and the durable consumer."""
        await ensure_stream(
            self.js,
            StreamConfig(
                name=self.lease_stream,
                subjects=[self.settings.subject("gw.>")],
                storage=StorageType.MEMORY,
                max_age=self.config.router_lease_seconds,
                max_msgs_per_subject=1,
            ),
        )
        await ensure_event_stream(self.js, self.settings)
        consumer = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=10.0,
            deliver_policy=DeliverPolicy.NEW,
            max_ack_pending=20_000,
            max_deliver=-1,
        )
        try:
            await self.js.add_consumer(self.events_stream, consumer)
        except BadRequestError:  # exists with another config (e.g. a different start)
            log.info("router consumer %s already exists", self.durable)

    async def start(self) -> None:
        """Try for the lease once (a lone instance routes as soon as it is up), then hold on."""
        await self._renew_lease()
        self._lease_task = asyncio.create_task(self._hold_lease(), name="gateway-router-lease")

    async def stop(self) -> None:
        """Stop routing, flush what is held, release the lease (another instance takes over)."""
        self._stopping = True
        lease_task, self._lease_task = self._lease_task, None
        await stop_tasks(lease_task)
        await self._stop_routing()
        if self._lease_seq is not None:
            with contextlib.suppress(Exception):
                await self.js.delete_msg(self.lease_stream, self._lease_seq)
            self._lease_seq = None

    # -- the lease ------------------------------------------------------------

    async def _hold_lease(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._renew_every)
            await self._renew_lease()

    @property
    def _renew_every(self) -> float:
        return max(0.05, self.config.router_lease_seconds / 4)

    async def _renew_lease(self) -> None:
        """Acquire or renew the lease; start or stop routing accordingly. Never raises."""
        try:
            expected = str(self._lease_seq or 0)
            ack = await self.js.publish(
                self.lease_subject,
                self.instance_id.encode(),
                headers={"Nats-Expected-Last-Subject-Sequence": expected},
                timeout=self._renew_every,
            )
            if self._lease_seq is None:
                log.info("this instance now routes events (lease %s)", ack.seq)
            self._lease_seq = ack.seq
            if self._route_task is None:
                self._start_routing()
        except BadRequestError as exc:
            if exc.err_code != WRONG_LAST_SEQUENCE:
                log.warning("router lease: %s", exc)
            if self._lease_seq is not None:
                log.warning("router lease lost; standing by")
                self._lease_seq = None
                await self._stop_routing()
        except Exception as exc:
            log.warning("router lease: %s", exc)

    # -- routing --------------------------------------------------------------

    def _start_routing(self) -> None:
        self._routing = True
        self._route_task = asyncio.create_task(self._route_loop(), name="gateway-router")
        self._flush_task = asyncio.create_task(self._flush_loop(), name="gateway-router-flush")

    async def _stop_routing(self) -> None:
        self._routing = False
        if self._route_task is not None:
            # The loop checks the flag between short fetches: let it finish what it took.
            done, _ = await asyncio.wait({self._route_task}, timeout=3)
            if not done:
                await stop_tasks(self._route_task)
            self._route_task = None
        flush_task, self._flush_task = self._flush_task, None
        await stop_tasks(flush_task)
        for flush in self._coalescer.drain():
            await self._publish_and_ack(flush.item, flush.handles)

    async def _route_loop(self) -> None:
        subscription = None
        while self._routing:
            try:
                if subscription is None:
                    subscription = await self.js.pull_subscribe_bind(
                        durable=self.durable, stream=self.events_stream
                    )
                try:
                    batch = await subscription.fetch(batch=self.config.router_batch, timeout=1.0)
                except TimeoutError:
                    continue
                await self._route_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("router: %s; retrying", exc)
                await asyncio.sleep(0.5)
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _route_batch(self, batch: list[Msg]) -> None:
        for index, message in enumerate(batch):
            try:
                await self._route_one(message)
            except Exception as exc:
                # Keep the order: this one and everything after it come back.
                log.warning("router: publishing failed (%s); redelivering", exc)
                metrics.ROUTED.labels("retried").inc()
                for later in batch[index:]:
                    with contextlib.suppress(Exception):
                        await later.nak(delay=0.5)
                await asyncio.sleep(0.5)
                return

    async def _route_one(self, message: Msg) -> None:
        try:
            envelope = decode_envelope(message.data)
            events = route(envelope)
        except (ValueError, MalformedEvent) as exc:
            log.warning("dropping malformed event on %s: %s", message.subject, exc)
            metrics.ROUTED.labels("malformed").inc()
            await message.term()
            return
        if not events:
            metrics.ROUTED.labels("ignored").inc()
            await message.ack()
            return
        ts = format_ts(envelope.occurred_at)
        held = False
        for event in events:
            pending = _Pending(event, envelope.id, ts)
            if event.type == "resource.stats" and event.coalesce_key is not None:
                now = time.monotonic()
                if not self._coalescer.offer(event.coalesce_key, pending, message, now):
                    held = True
                    self._held.set()
                    continue
            await self._publish(pending)
        metrics.ROUTED.labels("held" if held else "routed").inc()
        if not held:
            await message.ack()

    async def _publish(self, pending: _Pending) -> None:
        event = pending.event
        await self.js.publish(
            self.settings.subject(channel_subject(event.channel)),
            encode_channel_message(event, pending.ts),
            headers={"Nats-Msg-Id": f"{pending.event_id}:{event.channel}:{event.type}"},
        )
        label = "user" if event.channel.startswith("user:") else event.channel
        metrics.CHANNEL_PUBLISHED.labels(label).inc()

    async def _publish_and_ack(self, pending: _Pending, handles: list[Msg]) -> None:
        try:
            await self._publish(pending)
        except Exception as exc:
            log.warning("router: flushing %s failed (%s); redelivering", pending.event.type, exc)
            for handle in handles:
                with contextlib.suppress(Exception):
                    await handle.nak(delay=0.5)
            return
        for handle in handles:
            with contextlib.suppress(Exception):
                await handle.ack()

    async def _flush_loop(self) -> None:
        while True:
            self._held.clear()
            due_at = self._coalescer.next_due()
            if due_at is None:
                await self._held.wait()
                continue
            delay = due_at - time.monotonic()
            if delay > 0:
                # A new hold may fall due earlier: wake up for it too.
                await wait_set(self._held, delay)
                continue
            for flush in self._coalescer.due(time.monotonic()):
                await self._publish_and_ack(flush.item, flush.handles)
