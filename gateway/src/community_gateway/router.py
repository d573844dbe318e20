"""The router: domain events (stream `EVENTS`) into channel histories (`CHANNELS`, `INBOX`).

One durable pull consumer on `EVENTS`, shared by every gateway instance,
explicit acks. For each envelope, `channels.route` gives the channel events;
each is published to its channel's subject with `Nats-Msg-Id` =
`<event id>:<channel>:<type>`, so that a redelivered envelope (a crash between
publish and ack) is dropped by the channel stream instead of appearing twice.
The envelope is acknowledged only after its publishes are acknowledged.

Only one instance routes at a time: the holder of the router lease (lease.py).
Two instances pulling from the same consumer at once would publish
concurrently and could reorder two updates of one post (likes_count 5 then 6
arriving as 6 then 5), and the per-resource coalescing would be split between
instances. The others stand by; when the holder dies, one of them takes the
lease within `ttl + ttl / 5` of the holder's last renewal (1.44 s with the
default 1.2 s lease), at once if the holder stops cleanly. On taking over, the
new holder asks JetStream to redeliver at once, in order, the envelopes the
previous holder took and never acknowledged (instead of after the consumer's
10 s ack wait): they are routed before anything newer. A paused holder that
lost its lease may publish a little longer than it should; duplicates are
still dropped by `Nats-Msg-Id`.

Nothing JetStream holds for the router is assumed to exist because it existed
at start-up: the lease stream, the channel streams, `EVENTS` and the durable
consumer are created again whenever an operation finds them missing (a NATS
server that lost its store, a stream deleted by hand).

`resource.stats` is coalesced per resource: at most one event per interval
(300 ms by default), the newest one always published; the envelopes it stands
for are acknowledged after that publish.

Longer than most modules (~580 lines) on purpose: the lease-driven loop, the
batch publisher and the re-creation of missing streams share one consumer's
state and its exactly-once argument; split, that argument would be spread
over several files.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass

from community_shared.channelstreams import (
    ChannelEvent,
    channel_subject,
    encode_channel_message,
    format_ts,
)
from community_shared.events import decode_envelope
from community_shared.settings import Settings
from community_shared.streams import ensure_event_stream
from community_shared.tasks import stop_tasks, wait_set
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

from community_gateway import metrics
from community_gateway.channels import MalformedEvent, route
from community_gateway.coalesce import Coalescer
from community_gateway.config import GatewayConfig
from community_gateway.lease import STREAM_NOT_FOUND, Lease
from community_gateway.pull import Puller
from community_gateway.store import ChannelStore

log = logging.getLogger(__name__)

ROUTER_DURABLE = "gateway_router"
ACK_WAIT_SECONDS = 10.0
CONSUMER_CHECK_SECONDS = 5.0
"""While no envelope arrives, how often the router checks that its consumer still exists
(a pull from a consumer that is gone looks exactly like a pull with nothing to deliver)."""
WARN_EVERY_SECONDS = 5.0
RECLAIM_LIMIT = 100_000
PUBLISH_TIMEOUT_SECONDS = 5.0
"""How long the router waits for JetStream to confirm the publishes of a batch."""
YIELD_EVERY = 100
"""Within a batch, the router gives the event loop a turn after this many envelopes."""
NO_RESPONDERS_STATUS = "503"
NO_STREAM = "no stream holds the subject"


@dataclass(frozen=True, slots=True)
class _Pending:
    """A channel event ready to publish, and where it came from."""

    event: ChannelEvent
    event_id: uuid.UUID
    ts: str


def _label(channel: str) -> str:
    """The metrics label of a channel: every user's inbox counts as `user`."""
    return "user" if channel.startswith("user:") else channel


class _Batch:
    """The publishes of one routed batch and their confirmations by JetStream."""

    __slots__ = ("confirmed", "done", "failure", "reply", "sent")

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.sent = 0
        self.confirmed = 0
        self.failure: str | None = None
        self.done = asyncio.Event()

    def settle(self) -> None:
        if self.confirmed >= self.sent or self.failure is not None:
            self.done.set()


class BatchPublisher:
    """Publishes to JetStream without waiting for each confirmation, and counts them per batch.

    Every publish of a batch carries the batch's own reply subject; JetStream
    answers each on it (a `PubAck`, an error, or a 503 status when no stream
    holds the subject). The batch is confirmed once as many answers as
    publishes arrived and none was a failure. This costs one core NATS
    publish per message and one small reply, instead of a request per message
    with its own inbox, future and timer.
    """

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._prefix = f"{nc.new_inbox()}."
        self._batches: dict[str, _Batch] = {}
        self._subscription: Subscription | None = None
        self._count = 0

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(f"{self._prefix}*", cb=self._on_reply)

    async def stop(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    def batch(self) -> _Batch:
        self._count += 1
        token = str(self._count)
        batch = _Batch(f"{self._prefix}{token}")
        self._batches[token] = batch
        return batch

    async def publish(self, batch: _Batch, subject: str, payload: bytes, msg_id: str) -> None:
        batch.sent += 1
        await self.nc.publish(subject, payload, reply=batch.reply, headers={"Nats-Msg-Id": msg_id})

    async def confirm(self, batch: _Batch) -> str | None:
        """None once JetStream confirmed every publish of `batch`; else what went wrong.

        Waits at most `PUBLISH_TIMEOUT_SECONDS`.
        """
        try:
            batch.settle()
            if not batch.done.is_set():
                await asyncio.wait_for(batch.done.wait(), PUBLISH_TIMEOUT_SECONDS)
        except TimeoutError:
            missing = batch.sent - batch.confirmed
            batch.failure = f"{missing} publishes unconfirmed after {PUBLISH_TIMEOUT_SECONDS} s"
        finally:
            self.forget(batch)
        return batch.failure

    def forget(self, batch: _Batch) -> None:
        """Stop counting the answers for `batch` (it is given up)."""
        self._batches.pop(batch.reply[len(self._prefix) :], None)

    async def _on_reply(self, msg: Msg) -> None:
        batch = self._batches.get(msg.subject[len(self._prefix) :])
        if batch is None:
            return
        headers = msg.headers
        if headers and headers.get("Status") == NO_RESPONDERS_STATUS:
            batch.failure = NO_STREAM
        elif b'"error"' in msg.data:
            batch.failure = msg.data.decode(errors="replace")
        else:
            batch.confirmed += 1
        batch.settle()


class Router:
    """Routes domain events while holding the lease; stands by otherwise."""

    def __init__(
        self,
        js: JetStreamContext,
        settings: Settings,
        config: GatewayConfig,
        lease_js: JetStreamContext | None = None,
    ) -> None:
        """`lease_js`: a JetStream context on a NATS connection of its own for the lease,
        so that a renewal never waits behind the routing's publishes (defaults to `js`)."""
        self.js = js
        self.settings = settings
        self.config = config
        self.instance_id = uuid.uuid4().hex
        self.events_stream = settings.stream_name("EVENTS")
        self.durable = settings.stream_name(ROUTER_DURABLE)
        self.lease = Lease(lease_js or js, settings, config.router_lease_seconds, self.instance_id)
        self._channel_streams = ChannelStore(js, settings, config)
        self._lease_task: asyncio.Task[None] | None = None
        self._route_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._routing = False
        self._stopping = False
        self._coalescer: Coalescer[_Pending, Msg] = Coalescer(config.coalesce_seconds)
        self._held = asyncio.Event()
        self._publisher: BatchPublisher | None = None
        self._consumer_seen_at: dt.datetime | None = None
        self._warned_at: dict[str, float] = {}

    @property
    def is_leader(self) -> bool:
        """Whether this instance routes (holds the lease) now."""
        return self._route_task is not None

    async def setup(self) -> None:
        """Create the lease stream, the EVENTS stream if missing, and the durable consumer.

        An existing consumer is kept as it is: JetStream refuses to change the
        delivery policy of a consumer, and one created again after a loss
        (`_consumer_info`) starts at a time instead of at new messages.
        """
        await self.lease.ensure_stream()
        await ensure_event_stream(self.js, self.settings)
        try:
            await self.js.consumer_info(self.events_stream, self.durable)
            self._consumer_seen_at = dt.datetime.now(dt.UTC)
        except NotFoundError:
            await self._add_consumer(DeliverPolicy.NEW)

    def _consumer_config(self, deliver: DeliverPolicy, since: dt.datetime | None) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_SECONDS,
            deliver_policy=deliver,
            opt_start_time=since,
            max_ack_pending=20_000,
            max_deliver=-1,
        )

    async def _add_consumer(self, deliver: DeliverPolicy, since: dt.datetime | None = None) -> None:
        try:
            await self.js.add_consumer(self.events_stream, self._consumer_config(deliver, since))
        except BadRequestError:  # exists with another config (e.g. a different start)
            log.info("router consumer %s already exists", self.durable)
        self._consumer_seen_at = dt.datetime.now(dt.UTC)

    async def _consumer_info(self) -> ConsumerInfo:
        """The durable consumer's state; the consumer (and `EVENTS`) created again if missing.

        A consumer created again starts from the last time this instance saw
        the old one (less a second), so nothing published meanwhile is
        skipped; envelopes routed before are dropped by the channel streams'
        duplicate window (10 minutes).
        """
        info: ConsumerInfo
        try:
            info = await self.js.consumer_info(self.events_stream, self.durable)
        except NotFoundError as exc:
            log.warning("router consumer missing (%s); creating it", exc.description)
            if exc.err_code == STREAM_NOT_FOUND:
                metrics.RECREATED.labels("events_stream").inc()
                await ensure_event_stream(self.js, self.settings)
            metrics.RECREATED.labels("router_consumer").inc()
            seen = self._consumer_seen_at
            if seen is None:
                await self._add_consumer(DeliverPolicy.NEW)
            else:
                since = seen - dt.timedelta(seconds=1)
                await self._add_consumer(DeliverPolicy.BY_START_TIME, since)
            info = await self.js.consumer_info(self.events_stream, self.durable)
        self._consumer_seen_at = dt.datetime.now(dt.UTC)
        return info

    async def start(self) -> None:
        """Try for the lease once (a lone instance routes as soon as it is up), then hold on."""
        await self._tend_lease()
        self._lease_task = asyncio.create_task(self._hold_lease(), name="gateway-router-lease")

    async def stop(self) -> None:
        """Stop routing, flush what is held, release the lease (another instance takes over)."""
        self._stopping = True
        lease_task, self._lease_task = self._lease_task, None
        await stop_tasks(lease_task)
        await self._stop_routing()
        with contextlib.suppress(Exception):
            await self.lease.release()

    # -- the lease ------------------------------------------------------------

    async def _hold_lease(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.lease.renew_every)
            try:
                # Bounded, and never the end of the loop: a lease loop that
                # stopped would leave this instance routing on a lease that
                # another instance has taken (the route loop fences itself
                # too, see `_route_until_stopped`).
                async with asyncio.timeout(max(2 * self.lease.ttl, 5.0)):
                    await self._tend_lease()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # TimeoutError included
                log.warning("router lease: tending failed (%r); trying again", exc)

    async def _tend_lease(self) -> None:
        """Acquire or renew the lease; start or stop routing accordingly. Never raises."""
        try:
            held = await self.lease.try_hold()
        except Exception as exc:
            self._warn("router lease", exc)
            # NATS does not answer: route on while our last renewal surely holds,
            # but never start routing on a renewal we cannot confirm.
            held = self._route_task is not None and self.lease.fresh(time.monotonic())
            if not held and self._route_task is not None:
                log.warning("router lease not renewed in time; standing by")
                await self._stop_routing()
                return
        if held and self._route_task is None:
            log.info("this instance now routes events (lease %s)", self.lease.seq)
            self._start_routing()
        elif not held and self._route_task is not None:
            log.warning("router lease lost; standing by")
            await self._stop_routing()

    def _warn(self, what: str, exc: Exception) -> None:
        """Log a recurring failure at most once per `WARN_EVERY_SECONDS` (then at debug level)."""
        key = f"{what}: {type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._warned_at.get(key, -WARN_EVERY_SECONDS) >= WARN_EVERY_SECONDS:
            self._warned_at[key] = now
            log.warning("%s: %s", what, exc or type(exc).__name__)
        else:
            log.debug("%s: %s", what, exc or type(exc).__name__)

    # -- routing --------------------------------------------------------------

    def _start_routing(self) -> None:
        self._routing = True
        metrics.ROUTING.inc()
        metrics.TAKEOVERS.inc()
        self._route_task = asyncio.create_task(self._route_loop(), name="gateway-router")
        self._flush_task = asyncio.create_task(self._flush_loop(), name="gateway-router-flush")

    async def _stop_routing(self) -> None:
        self._routing = False
        if self._route_task is not None:
            metrics.ROUTING.dec()
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
        try:
            await self._route_until_stopped()
        finally:
            publisher, self._publisher = self._publisher, None
            if publisher is not None:
                await publisher.stop()

    async def _route_until_stopped(self) -> None:
        puller: Puller | None = None
        reclaimed = False
        quiet_since = time.monotonic()
        while self._routing:
            try:
                if not self.lease.fresh(time.monotonic()):
                    # The lease is not surely ours (renewals failed or are
                    # late): fetch nothing until it is confirmed again, or the
                    # lease loop stops routing here. Two routers at once could
                    # reorder updates and leave envelopes to the ack wait.
                    self._warn("router", RuntimeError("lease not confirmed; routing paused"))
                    await asyncio.sleep(self.lease.renew_every)
                    continue
                if not reclaimed:
                    await self._reclaim_abandoned()
                    reclaimed = True
                if self._publisher is None:
                    publisher = BatchPublisher(self.js._nc)
                    await publisher.start()
                    self._publisher = publisher
                if puller is None:
                    puller = Puller(self.js._nc, self.js._prefix, self.events_stream, self.durable)
                    await puller.start()
                try:
                    batch = await puller.pull(self.config.router_batch, wait=1.0)
                except TimeoutError:
                    if time.monotonic() - quiet_since >= CONSUMER_CHECK_SECONDS:
                        quiet_since = time.monotonic()
                        await self._consumer_info()
                    continue
                quiet_since = time.monotonic()
                self._consumer_seen_at = dt.datetime.now(dt.UTC)
                await self._route_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._warn("router", exc)
                await asyncio.sleep(0.5)
        if puller is not None:
            await puller.stop()

    async def _reclaim_abandoned(self) -> None:
        """Have what the previous holder took and never acknowledged redelivered now, in order.

        JetStream would redeliver those envelopes only after the ack wait
        (10 s), and after newer ones. A negative acknowledgement for each, in
        stream order, puts them at the head of the consumer at once. It is
        sent to the subject JetStream acknowledges a delivery on,
        `$JS.ACK.<stream>.<consumer>.<delivery count>.<stream seq>.<consumer
        seq>.<timestamp>.<pending>`: JetStream requires the stream sequence to
        be pending and the consumer sequence to lie in the delivered,
        unacknowledged range, which the consumer's latest delivered sequence
        does for each. Sequences acknowledged meanwhile are ignored.
        """
        info = await self._consumer_info()
        if not info.num_ack_pending or info.delivered is None:
            return
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        first, last = floor + 1, info.delivered.stream_seq
        if last - first >= RECLAIM_LIMIT:  # leave such a backlog to the ack wait
            log.warning("%d envelopes pending on takeover; left to the ack wait", last - first + 1)
            return
        nc = self.js._nc  # the JetStream context's connection (nats-py keeps it there)
        prefix = f"$JS.ACK.{self.events_stream}.{self.durable}.1"
        for sseq in range(first, last + 1):
            await nc.publish(f"{prefix}.{sseq}.{info.delivered.consumer_seq}.0.0", b"-NAK")
        await nc.flush()
        metrics.RECLAIMED.inc(info.num_ack_pending)
        log.info(
            "asked for %d envelopes left unacknowledged by the previous router",
            info.num_ack_pending,
        )

    async def _route_batch(self, batch: list[Msg]) -> None:
        """Route a fetched batch: every publish sent at once, then every acknowledgement.

        Each envelope is decoded and routed once, in order; its channel events
        are published without waiting for each confirmation (they leave on
        the one connection in this order, and each stream stores them in that
        order). Once JetStream has confirmed every publish of the batch, the
        envelopes are acknowledged. If any publish fails (a stream missing,
        an error, no confirmation in `PUBLISH_TIMEOUT_SECONDS`), every
        envelope of the batch comes back (negative acknowledgement), in
        order; the publishes that did land are dropped as duplicates when they
        come again, so only the failed ones are stored anew, after the others.
        """
        publisher = self._publisher
        if publisher is None:
            raise RuntimeError("the router is not routing")
        sent = publisher.batch()
        acks: list[Msg] = []
        counts: dict[str, int] = {}
        published: dict[str, int] = {}
        failure: str | None = None
        for index, message in enumerate(batch):
            if index and not index % YIELD_EVERY:
                # Let the loop breathe: the publishes so far leave, clients get their frames.
                await asyncio.sleep(0)
            try:
                envelope = decode_envelope(message.data)
                events = route(envelope)
            except (ValueError, MalformedEvent) as exc:
                log.warning("dropping malformed event on %s: %s", message.subject, exc)
                counts["malformed"] = counts.get("malformed", 0) + 1
                await message.term()
                continue
            if not events:
                counts["ignored"] = counts.get("ignored", 0) + 1
                acks.append(message)
                continue
            ts = format_ts(envelope.occurred_at)
            held = False
            event_id = str(envelope.id)
            for event in events:
                if event.type == "resource.stats" and event.coalesce_key is not None:
                    pending = _Pending(event, envelope.id, ts)
                    if not self._coalescer.offer(
                        event.coalesce_key, pending, message, time.monotonic()
                    ):
                        held = True
                        self._held.set()
                        continue
                try:
                    await publisher.publish(sent, *self._message(event, event_id, ts))
                except Exception as exc:
                    failure = str(exc) or type(exc).__name__
                    break
                label = _label(event.channel)
                published[label] = published.get(label, 0) + 1
            if failure is not None:
                break
            if held:
                counts["held"] = counts.get("held", 0) + 1
            else:
                counts["routed"] = counts.get("routed", 0) + 1
                acks.append(message)
        if failure is None:
            failure = await publisher.confirm(sent)
        else:
            publisher.forget(sent)
        if failure is not None:
            # Keep the order: the whole batch comes back.
            log.warning("router: publishing failed (%s); redelivering", failure)
            metrics.ROUTED.labels("retried").inc()
            if failure == NO_STREAM:
                await self._ensure_channel_streams()
            for message in batch:
                with contextlib.suppress(Exception):
                    await message.nak(delay=0.5)
            await asyncio.sleep(0.5)
            return
        for message in acks:
            await message.ack()
        for outcome, count in counts.items():
            metrics.ROUTED.labels(outcome).inc(count)
        for label, count in published.items():
            metrics.CHANNEL_PUBLISHED.labels(label).inc(count)

    def _message(self, event: ChannelEvent, event_id: object, ts: str) -> tuple[str, bytes, str]:
        """A channel event's subject, payload and `Nats-Msg-Id` (the same id for a redelivery)."""
        return (
            self.settings.subject(channel_subject(event.channel)),
            encode_channel_message(event, ts),
            f"{event_id}:{event.channel}:{event.type}",
        )

    async def _publish(self, pending: _Pending) -> None:
        event = pending.event
        subject, payload, msg_id = self._message(event, pending.event_id, pending.ts)
        await self.js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        metrics.CHANNEL_PUBLISHED.labels(_label(event.channel)).inc()

    async def _ensure_channel_streams(self) -> None:
        """A channel stream answered nobody: create the channel streams again."""
        log.warning("a channel stream is missing; creating the channel streams")
        metrics.RECREATED.labels("channel_streams").inc()
        try:
            await self._channel_streams.ensure_streams()
        except Exception as exc:
            log.warning("cannot create the channel streams yet: %s", exc)

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
