"""The leaderboard's durable JetStream consumers and its periodic chores.

One durable pull consumer per source (`posts.>`, `goals.>`, `learning.>`) on
the EVENTS stream, explicit acks. Several instances may run; one at a time
applies a source's events (per-student order matters), the others stand by. A
consumer waits for the next event with a single long pull, so one
event goes through at once (low latency); the `num_pending` that event
carries says how many more are waiting, and those are fetched and applied in
batches of up to `batch_size`, one transaction each (throughput). Acks are
sent only after the transaction committed; events are idempotent by envelope
id, so a redelivery after a crash changes nothing. A stopped consumer keeps
its place on the server and catches up when started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import msgspec
import nats.errors
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

WAIT_SECONDS = 5.0
"""How long one long pull waits for the next event before asking again."""
BATCH_FETCH_SECONDS = 1.0
STANDBY_POLL_SECONDS = 2.0


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
        self._sub: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()
        self._catching_up = False

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._sub is None:
            self._sub = await self._js.pull_subscribe(
                self._settings.subject(self.subject),
                durable=self.durable,
                stream=self._settings.stream_name(EVENTS_STREAM),
                config=ConsumerConfig(
                    durable_name=self.durable,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self._config.ack_wait_seconds,
                    max_ack_pending=self._config.max_ack_pending,
                    filter_subject=self._settings.subject(self.subject),
                ),
            )
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.durable}")

    async def stop(self) -> None:
        """Stop applying events; a batch under way finishes first. Events that
        arrive meanwhile wait in the subscription (or on the server) for `start`."""
        if self._task is not None:
            async with self._busy:
                self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    async def close(self) -> None:
        await self.stop()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _run(self) -> None:
        """Consume while holding this source's consumer lock.

        Events of one student must be applied in stream order (an unlike after
        its like, approvals in order), so one instance at a time applies a
        source's events; other instances wait as hot standbys and take over
        when the holder's connection goes away.
        """
        lock = f"leaderboard:consume:{self.subject}"
        async with self._service.pool.acquire() as conn:
            while True:
                held = await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lock
                )
                if held:
                    break
                await asyncio.sleep(STANDBY_POLL_SECONDS)
            try:
                await self._consume()
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", lock)

    async def _consume(self) -> None:
        assert self._sub is not None
        sub = self._sub
        waiting = 0  # events the server still holds for us, as of the last one received
        while True:
            try:
                if waiting > 0:
                    async with self._busy:
                        batch = await sub.fetch(
                            min(waiting, self._config.batch_size), timeout=BATCH_FETCH_SECONDS
                        )
                        waiting = batch[-1].metadata.num_pending
                        await self._handle(batch, behind=self._behind(waiting))
                else:
                    batch = await sub.fetch(1, timeout=WAIT_SECONDS)
                    waiting = batch[-1].metadata.num_pending
                    async with self._busy:
                        await self._handle(batch, behind=self._behind(waiting))
            except (TimeoutError, nats.errors.TimeoutError):
                waiting = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s: fetch failed; retrying", self.durable, exc_info=True)
                waiting = 0
                await asyncio.sleep(1.0)

    def _behind(self, waiting: int) -> bool:
        """A consumer falls behind when more than `catch_up_threshold` events wait,
        and stays behind until none is left, so a backlog is announced as one."""
        self._catching_up = waiting > self._config.catch_up_threshold or (
            self._catching_up and waiting > 0
        )
        return self._catching_up

    async def _handle(self, batch: list[Msg], *, behind: bool) -> None:
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
                result = await self._service.apply_events(envelopes, behind=behind)
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
        self._service.note_backlog(self.durable, behind)
        if result.deferred and not self._service.catching_up:
            # Caught up: announce each student's net move over the backlog.
            try:
                await self._service.announce_pending_moves()
            except Exception:
                log.warning(
                    "announcing the moves of a backlog failed; retried later", exc_info=True
                )
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
        """Pause (see `SourceConsumer.stop`); `start` resumes."""
        for consumer in self.consumers:
            await consumer.stop()

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.close()


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
            asyncio.create_task(
                self._every(15, self._service.announce_stale_moves), name="stale-moves"
            ),
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
