"""The leaderboard's durable JetStream consumers and its periodic chores.

One durable push consumer per source (`posts.>`, `goals.>`, `learning.>`) on
the EVENTS stream, explicit acks, a deliver group named like the durable so
several instances share the work. Messages are queued as they arrive; the
consumer takes whatever has arrived (up to `batch_size`) and applies it in one
transaction, so a single event goes through at once (low latency) and a
backlog goes through in large batches (throughput). Acks are sent only after
the transaction committed; events are idempotent by envelope id, so a
redelivery after a crash changes nothing. A stopped consumer keeps its place
on the server and catches up when started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import msgspec
from community_shared.events import Envelope, decode_envelope
from community_shared.metrics import EVENTS_CONSUMED
from community_shared.settings import Settings
from community_shared.streams import EVENTS_STREAM
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.events import CONSUMED_SUBJECTS
from community_leaderboard.service import LeaderboardService

log = logging.getLogger(__name__)


def durable_name(settings: Settings, subject: str) -> str:
    """`leaderboard_posts` etc., prefixed per deployment."""
    source = subject.split(".", 1)[0]
    return settings.stream_name(f"leaderboard_{source}")


class SourceConsumer:
    """Applies the events of one source, in stream order, in batches."""

    def __init__(
        self,
        js: JetStreamContext,
        service: LeaderboardService,
        settings: Settings,
        config: LeaderboardConfig,
        subject: str,
    ) -> None:
        self._js = js
        self._service = service
        self._settings = settings
        self._config = config
        self.subject = subject
        self.durable = durable_name(settings, subject)
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._sub: JetStreamContext.PushSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()

    async def start(self) -> None:
        if self._task is not None:
            return
        config = ConsumerConfig(
            durable_name=self.durable,
            deliver_group=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._config.ack_wait_seconds,
            max_ack_pending=self._config.max_ack_pending,
            filter_subject=self._settings.subject(self.subject),
        )
        self._sub = await self._js.subscribe(
            self._settings.subject(self.subject),
            queue=self.durable,
            durable=self.durable,
            stream=self._settings.stream_name(EVENTS_STREAM),
            cb=self._received,
            manual_ack=True,
            config=config,
        )
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.durable}")

    async def stop(self) -> None:
        """Stop taking events; the current batch finishes, queued ones go back."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self._task is not None:
            async with self._busy:
                self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            with contextlib.suppress(Exception):
                await msg.nak()

    async def _received(self, msg: Msg) -> None:
        self._queue.put_nowait(msg)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._config.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            async with self._busy:
                await self._handle(batch)

    async def _handle(self, batch: list[Msg]) -> None:
        envelopes: list[Envelope] = []
        messages: list[Msg] = []
        for msg in batch:
            try:
                envelopes.append(decode_envelope(msg.data))
                messages.append(msg)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("dropping a message that is not an event envelope on %s", msg.subject)
                EVENTS_CONSUMED.labels(consumer=self.durable, outcome="undecodable").inc()
                with contextlib.suppress(Exception):
                    await msg.term()
        if not envelopes:
            return
        delay = 0.2
        for attempt in range(8):
            try:
                result = await self._service.apply_events(envelopes)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "applying %d events failed (attempt %d)",
                    len(envelopes),
                    attempt + 1,
                    exc_info=True,
                )
                EVENTS_CONSUMED.labels(consumer=self.durable, outcome="retry").inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        else:
            for msg in messages:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=5)
            return
        for msg in messages:
            with contextlib.suppress(Exception):
                await msg.ack()
        consumed = EVENTS_CONSUMED.labels
        consumed(consumer=self.durable, outcome="applied").inc(result.applied)
        if result.duplicates:
            consumed(consumer=self.durable, outcome="duplicate").inc(result.duplicates)
        if result.invalid:
            consumed(consumer=self.durable, outcome="invalid").inc(result.invalid)


class EventConsumers:
    """The three source consumers, started and stopped together."""

    def __init__(
        self,
        js: JetStreamContext,
        service: LeaderboardService,
        settings: Settings,
        config: LeaderboardConfig,
    ) -> None:
        self.consumers = [
            SourceConsumer(js, service, settings, config, subject) for subject in CONSUMED_SUBJECTS
        ]

    async def start(self) -> None:
        for consumer in self.consumers:
            await consumer.start()

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()


class Chores:
    """Periodic work: coalesced community stats, the daily window roll-over,
    and forgetting applied event ids older than the stream can redeliver."""

    def __init__(self, service: LeaderboardService, config: LeaderboardConfig) -> None:
        self._service = service
        self._config = config
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every(0.2, self._service.publish_stats_if_due), name="stats"),
            asyncio.create_task(
                self._every(self._config.rollover_check_seconds, self._service.roll_windows),
                name="rollover",
            ),
            asyncio.create_task(self._every(3600, self._service.prune_applied), name="prune"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []

    @staticmethod
    async def _every(seconds: float, chore: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await chore()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("chore %s failed", getattr(chore, "__name__", chore), exc_info=True)
            await asyncio.sleep(seconds)
