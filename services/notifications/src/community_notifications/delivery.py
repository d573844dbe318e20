"""Delivery: from the gateway's channel streams to the push services, at most once.

Two parts, joined by the `deliveries` table:

- **intake** — durable JetStream consumers on the gateway's own channel streams:
  `ch.reviews` in `CHANNELS` and `inbox.>` in `INBOX`. What reaches a channel is
  decided once, by the gateway's router; reading its output (in the format of
  `community_shared.channelstreams`) keeps one routing table and gives each
  push the event's channel `seq`. For each channel event worth a push
  (`rules.recipients_of`), the recipients' subscriptions are looked up,
  narrowed by preference, by the event's audience (a members-only event to
  members) and by presence (no foreground connection on any gateway
  instance), and one `pending` row per (event id, subscription) is inserted
  — `ON CONFLICT DO NOTHING`, then the message is acknowledged. A redelivered
  event (a crash before the ack, two instances) adds nothing.
- **sender** — claims due rows (`FOR UPDATE SKIP LOCKED`, so instances share
  the work and never send a row twice), POSTs each (webpush.py) and records the
  answer: sent; 404/410 delete the subscription; 429/5xx/no answer back to
  `pending` after `rules.retry_delay` (honouring `Retry-After`, for up to an
  hour); any other 4xx failed. A claim whose instance died before recording the
  answer is never sent again (`unknown`): the push may have gone out, and a
  push is at most once. Stopping gracefully first lets the pushes in flight
  finish and record their answers, so a restart sends each push exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
import redis.asyncio as aioredis
from community_shared.auth import Identity
from community_shared.channelstreams import (
    CHANNELS_STREAM,
    INBOX_STREAM,
    INBOX_SUBJECT_PREFIX,
    REVIEWS,
    channel_of_subject,
    channel_subject,
    decode_channel_message,
    may_receive,
)
from community_shared.presencekeys import foreground_connections
from community_shared.tasks import stop_tasks, wait_set
from community_shared.web import Runtime
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from community_notifications import metrics, rules, store
from community_notifications.config import NotificationsConfig
from community_notifications.webpush import PushSender, Subscription

log = logging.getLogger(__name__)

FETCH_BATCH = 20
FETCH_SECONDS = 1.0
CONSUMER_CHECK_SECONDS = 10.0
ACK_WAIT_SECONDS = 10.0
"""An event taken by an instance that died is handed out again after this long."""
UPKEEP_SECONDS = 2.0
KEEP_FINISHED = dt.timedelta(days=31)
"""Finished rows are kept longer than the inbox's history (30 days): the window in which a
consumer recreated from scratch could see an event again."""

SOURCES = (
    # (stream, unprefixed filter subject, durable name)
    (CHANNELS_STREAM, channel_subject(REVIEWS), "notifications_reviews"),
    (INBOX_STREAM, f"{INBOX_SUBJECT_PREFIX}>", "notifications_inbox"),
)


class PushPayload(msgspec.Struct):
    """What the service worker receives (SPEC §12): the channel event as the gateway sends it."""

    type: str
    channel: str
    seq: int
    data: msgspec.Raw
    ts: str


_encode = msgspec.json.Encoder().encode


class Delivery:
    """`start()` once NATS answers; `stop()` drains the pushes in flight."""

    def __init__(
        self,
        runtime: Runtime,
        config: NotificationsConfig,
        sender: PushSender,
        redis: aioredis.Redis,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.config = config
        self.sender = sender
        self.redis = redis
        self.wake = asyncio.Event()
        self._intake: list[asyncio.Task[None]] = []
        self._loops: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._subscriptions: list[Any] = []
        self._stopping = False

    def start_sending(self) -> None:
        self._sending = asyncio.create_task(self._send_loop(), name="push-sender")
        self._loops.append(asyncio.create_task(self._upkeep_loop(), name="push-upkeep"))

    def start_intake(self) -> None:
        for stream, subject, durable in SOURCES:
            self._intake.append(
                asyncio.create_task(self._consume(stream, subject, durable), name=durable)
            )

    async def stop(self) -> None:
        """Stop taking events and claiming pushes; let the pushes in flight record their answer."""
        await stop_tasks(*self._intake, *self._loops)
        self._intake.clear()
        self._loops.clear()
        # The sender ends on its own between two claims: cancelled inside `claim_due`, it
        # could leave rows claimed by nobody (sent never, `unknown` once the lease ends).
        self._stopping = True
        self.wake.set()
        await asyncio.wait([self._sending], timeout=5.0)
        await stop_tasks(self._sending)
        # An open pull subscription would hold up the connection's drain.
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self.config.push_timeout_seconds + 2)
        await stop_tasks(*self._in_flight)
        await self.sender.aclose()

    # ----------------------------------------------------------------------- intake

    async def _consume(self, stream: str, subject: str, durable: str) -> None:
        """Follow one channel stream for good: (re)create the consumer whenever it is gone."""
        stream_name = self.settings.stream_name(stream)
        durable_name = self.settings.stream_name(durable)
        while True:
            try:
                subscription = await self._bind(stream_name, durable_name, subject)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The gateway creates its streams: until one runs, there is nothing to read.
                log.info("waiting for the gateway's %s stream (%s)", stream_name, exc)
                await asyncio.sleep(1.0)
                continue
            self._subscriptions.append(subscription)
            try:
                await self._take_all(subscription, stream_name, durable_name)
            finally:
                self._subscriptions.remove(subscription)
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _bind(self, stream_name: str, durable_name: str, subject: str) -> Any:
        js = self.runtime.jetstream()
        with contextlib.suppress(nats.js.errors.BadRequestError):  # it exists already
            await js.add_consumer(
                stream_name,
                config=ConsumerConfig(
                    durable_name=durable_name,
                    # A new deployment pushes what happens from now on, not the
                    # inbox's 30 days of history.
                    deliver_policy=DeliverPolicy.NEW,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=ACK_WAIT_SECONDS,
                    max_ack_pending=10_000,
                    filter_subject=self.settings.subject(subject),
                ),
            )
        return await js.pull_subscribe_bind(durable_name, stream=stream_name)

    async def _take_all(self, subscription: Any, stream_name: str, durable_name: str) -> None:
        """Record what the consumer hands out; return when the consumer is gone (a stream
        recreated) so that it is made again."""
        js = self.runtime.jetstream()
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while True:
            try:
                messages = await subscription.fetch(FETCH_BATCH, timeout=FETCH_SECONDS)
            except (nats.errors.TimeoutError, TimeoutError):
                # Nothing new. A consumer deleted with its stream would look the same
                # forever: make sure, now and then, that it is still there.
                if loop.time() - checked > CONSUMER_CHECK_SECONDS:
                    checked = loop.time()
                    try:
                        await js.consumer_info(stream_name, durable_name)
                    except nats.js.errors.NotFoundError:
                        log.warning("consumer %s is gone; making it again", durable_name)
                        return
                    except Exception:
                        pass  # NATS unreachable: the fetch says so next time round
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("cannot fetch from %s; retrying", durable_name, exc_info=True)
                await asyncio.sleep(1.0)
                return
            for index, msg in enumerate(messages):
                try:
                    await self._take(msg)
                except asyncio.CancelledError:
                    # Stopping: what this instance fetched but did not record goes back at
                    # once (not after ACK_WAIT_SECONDS) to the next instance or restart.
                    for untaken in messages[index:]:
                        with contextlib.suppress(Exception):
                            await untaken.nak()
                    raise
                except Exception:
                    # Not acknowledged: JetStream hands it out again after ACK_WAIT_SECONDS.
                    log.warning(
                        "cannot record pushes for %s; will retry", msg.subject, exc_info=True
                    )
                    metrics.EVENTS.labels(outcome="error").inc()
                    continue
                await msg.ack()

    async def _take(self, msg: Msg) -> None:
        """Record the pushes one channel event calls for (idempotent), then wake the sender."""
        channel = channel_of_subject(self.settings.unprefix(msg.subject))
        try:
            event = decode_channel_message(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            event = None
        audience = (
            None if channel is None or event is None else rules.recipients_of(channel, event.type)
        )
        if channel is None or event is None or audience is None:
            metrics.EVENTS.labels(outcome="not_pushed").inc()
            return
        async with self.runtime.db.acquire() as conn:
            if audience.moderators:
                rows = await store.recipients_moderators(conn)
            else:
                assert audience.user_id is not None
                rows = await store.recipients_of_user(conn, audience.user_id)
        wanted = [r for r in rows if self._wants(r, event.type, event.audience)]
        users = {str(r["user_id"]) for r in wanted}
        looking = await self._foreground(users)
        targets = [r["id"] for r in wanted if rules.wants_push(looking.get(str(r["user_id"]), 0))]
        if not targets:
            metrics.EVENTS.labels(outcome="no_recipient").inc()
            return
        seq = msg.metadata.sequence.stream
        payload = _encode(
            PushPayload(type=event.type, channel=channel, seq=seq, data=event.data, ts=event.ts)
        )
        headers = msg.headers or {}
        event_key = headers.get("Nats-Msg-Id") or f"{channel}:{seq}"
        async with self.runtime.db.acquire() as conn:
            added = await store.record_deliveries(
                conn, event_key, event.type, payload, rules.urgency_of(event.type), targets
            )
        metrics.EVENTS.labels(outcome="pushed").inc()
        if added:
            self.wake.set()

    @staticmethod
    def _wants(row: Any, event_type: str, audience: str) -> bool:
        stored = {} if row["push"] is None else msgspec.json.decode(row["push"])
        if not rules.wants_event(event_type, stored):
            return False
        who = Identity(user_id=row["user_id"], role=row["role"], name="", member=row["member"])
        return may_receive(who, audience)

    async def _foreground(self, users: set[str]) -> dict[str, int]:
        """Foreground connections per user; on a Redis error, nobody (better pushed twice
        than not at all: a user with the page open sees the event there as well)."""
        try:
            return await foreground_connections(self.redis, self.settings, users)
        except Exception:
            log.warning("presence unavailable; pushing without it", exc_info=True)
            return {}

    # ----------------------------------------------------------------------- sender

    async def _send_loop(self) -> None:
        while not self._stopping:
            await wait_set(self.wake, self.config.poll_seconds)
            self.wake.clear()
            try:
                while (room := self.config.senders - len(self._in_flight)) > 0:
                    if self._stopping:
                        return
                    async with self.runtime.db.acquire() as conn:
                        claimed = await store.claim_due(conn, room, self.config.lease_seconds)
                    for row in claimed:
                        task = asyncio.create_task(self._push(row))
                        self._in_flight.add(task)
                        task.add_done_callback(self._pushed)
                    if len(claimed) < room:
                        break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("cannot claim pushes; retrying", exc_info=True)
                await asyncio.sleep(1.0)

    def _pushed(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.wake.set()  # room for another

    async def _push(self, row: Any) -> None:
        event_key: str = row["event_key"]
        subscription_id: uuid.UUID = row["subscription_id"]
        subscription = Subscription(row["endpoint"], row["p256dh"], row["auth"])
        answer = await self.sender.send(
            subscription, bytes(row["payload"]), ttl=rules.TTL_SECONDS, urgency=row["urgency"]
        )
        outcome = rules.outcome_of(answer.status)
        async with self.runtime.db.acquire() as conn:
            if outcome is rules.Outcome.DELIVERED:
                await store.mark_sent(conn, event_key, subscription_id)
                metrics.SENT.inc()
            elif outcome is rules.Outcome.GONE:
                if await store.delete_subscription(conn, subscription_id):
                    metrics.REMOVED.inc()
                metrics.FAILED.labels(reason="gone").inc()
            elif outcome is rules.Outcome.REJECTED:
                log.warning("push service refused a push with %s", answer.status)
                await store.mark_failed(conn, event_key, subscription_id)
                metrics.FAILED.labels(reason="refused").inc()
            else:
                delay = rules.retry_delay(
                    row["attempts"],
                    rules.parse_retry_after(answer.retry_after),
                    float(row["elapsed"] or 0.0),
                )
                if delay is None:
                    await store.mark_failed(conn, event_key, subscription_id)
                    metrics.FAILED.labels(reason="gave_up").inc()
                else:
                    await store.schedule_retry(conn, event_key, subscription_id, delay)
                    metrics.RETRIED.inc()

    async def _upkeep_loop(self) -> None:
        pruned_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(UPKEEP_SECONDS)
            try:
                async with self.runtime.db.acquire() as conn:
                    lost = await store.abandon_expired_claims(conn)
                    if lost:
                        log.warning("%d pushes were in flight when their sender stopped", lost)
                        metrics.FAILED.labels(reason="unknown").inc(lost)
                    if loop.time() - pruned_at > 3600:
                        await store.prune_deliveries(conn, KEEP_FINISHED)
                        pruned_at = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("delivery upkeep failed; retrying", exc_info=True)
