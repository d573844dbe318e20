"""The leaderboard's durable JetStream consumers.

One durable pull consumer per source (`posts.>`, `goals.>`, `learning.>`) on
the EVENTS stream, explicit acks. A fetcher per source keeps one pull request
open (a batch, expiring after a few seconds) and the server delivers events on
it as they come: a single event goes through at once (low latency), a backlog
streams in whole batches (throughput). The events arrive on a subscription of
the source's own and are routed from its callback, one at a time, in order;
the `num_pending` an event carries says whether a backlog is being worked
through.

Fetched events are routed by student to a few appliers (`LEADERBOARD_APPLIERS`):
all the events of one student go to the same applier, in stream order, so a
student's events are applied in order while appliers work on disjoint
students side by side (one waits for Postgres or Redis while another
computes). An applier takes whatever has been routed to it, up to
`batch_size`, and applies it in one transaction; acks go out after the commit.
Events are idempotent by envelope id, so a redelivery after a crash changes
nothing.

Several instances may run: the one holding the consume lock applies events,
the others stand by and take over when its Postgres connection goes away. A
stopped consumer keeps its place on the server and catches up when started
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
import nats.js.errors
from community_shared.events import Envelope, decode_envelope
from community_shared.metrics import EVENTS_CONSUMED
from community_shared.settings import Settings
from community_shared.streams import EVENTS_STREAM
from community_shared.tasks import stop_tasks, wait_set
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import DEFAULT_PREFIX, AckPolicy, ConsumerConfig, DeliverPolicy, Header

from community_leaderboard import store, tally
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.events import CONSUMED_SUBJECTS
from community_leaderboard.rows import ItemKey
from community_leaderboard.service import LeaderboardService

log = logging.getLogger(__name__)

WAIT_SECONDS = 5.0
"""How long one pull request stays open on the server before it is asked again."""
HEARTBEAT_STATUS = "100"
FILL_SECONDS = 0.05
"""While a backlog is worked through, how long an applier waits for a full batch."""
STANDBY_POLL_SECONDS = 2.0
CONSUME_LOCK = "leaderboard:consume"
OWNERS_REMEMBERED = 100_000


def durable_name(settings: Settings, subject: str) -> str:
    """`leaderboard_posts` etc., prefixed per deployment."""
    source = subject.split(".", 1)[0]
    return settings.stream_name(f"leaderboard_{source}")


@dataclass(slots=True)
class Routed:
    """A fetched event on its way to an applier."""

    msg: Msg
    envelope: Envelope | None  # None: not an event envelope at all
    parsed: tally.Parsed | tally.InvalidEvent | None
    behind: bool
    source: Source


def _pending_after(msg: Msg) -> int:
    """How many events the consumer still holds after `msg`: the last token of
    the ack subject `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
    seq>.<time>.<pending>` (other forms are read by nats-py's full parser)."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[1] == "ACK":
        return int(tokens[8])
    return msg.metadata.num_pending


class Source:
    """One source's durable consumer, its open pull request and how far behind it is."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        settings: Settings,
        config: LeaderboardConfig,
        subject: str,
    ) -> None:
        self._nc = nc
        self._js = js
        self._settings = settings
        self._config = config
        self.subject = subject
        self.durable = durable_name(settings, subject)
        self.stream = settings.stream_name(EVENTS_STREAM)
        self.sub: Subscription | None = None
        self.catching_up = False
        self.in_flight = 0
        self.room = asyncio.Event()
        self.room.set()
        self._inbox = ""
        self._open = 0  # events the open pull request may still deliver
        self._ended = asyncio.Event()

    async def subscribe(self, deliver: Callable[[Msg, Source], Awaitable[None]]) -> None:
        """Create the durable consumer if it is new, and take its events on an
        inbox of our own, handing each to `deliver` in order."""
        if self.sub is not None:
            return
        try:
            await self._js.consumer_info(self.stream, self.durable)
        except nats.js.errors.NotFoundError:
            await self._js.add_consumer(
                self.stream,
                config=ConsumerConfig(
                    durable_name=self.durable,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self._config.ack_wait_seconds,
                    max_ack_pending=self._config.max_ack_pending,
                    filter_subject=self._settings.subject(self.subject),
                ),
            )

        async def receive(msg: Msg) -> None:
            headers = msg.headers
            status = headers.get(Header.STATUS) if headers else None
            if status is not None and not msg.data:
                if status != HEARTBEAT_STATUS:
                    self._ended.set()  # 404/408/409: the pull request is over
                return
            self._open -= 1
            if self._open <= 0:
                self._ended.set()
            await deliver(msg, self)

        self._inbox = self._nc.new_inbox()
        self.sub = await self._nc.subscribe(self._inbox, cb=receive)

    async def unsubscribe(self) -> None:
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
            self.sub = None

    async def pull(self, batch: int, expires: float) -> None:
        """Ask for up to `batch` events and wait until they came or the request
        expired (the server delivers each event as soon as it is there)."""
        self._open = batch
        self._ended.clear()
        request = {"batch": batch, "expires": int(expires * 1_000_000_000)}
        await self._nc.publish(
            f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}",
            json.dumps(request).encode(),
            reply=self._inbox,
        )
        # A request lost on the way (a reconnect) is simply asked again.
        await wait_set(self._ended, expires + 1.0)

    def behind(self, waiting: int) -> bool:
        """A source falls behind when more than `catch_up_threshold` events wait,
        and stays behind until none is left, so a backlog is announced as one."""
        self.catching_up = waiting > self._config.catch_up_threshold or (
            self.catching_up and waiting > 0
        )
        return self.catching_up

    def done(self, count: int) -> None:
        self.in_flight -= count
        if self.in_flight < 2 * self._config.batch_size:
            self.room.set()


class Applier:
    """Applies the events routed to it, in order, a batch per transaction."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.queue: asyncio.Queue[Routed] = asyncio.Queue()
        self.applying = asyncio.Lock()
        self.full = asyncio.Event()  # a whole batch is waiting
        self.holding: Routed | None = None  # taken from the queue, batch not started


class EventConsumers:
    """The three sources, the router and the appliers, started and stopped together."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        service: LeaderboardService,
        settings: Settings,
        config: LeaderboardConfig,
    ) -> None:
        self._service = service
        self._config = config
        self.sources = [Source(nc, js, settings, config, subject) for subject in CONSUMED_SUBJECTS]
        self.appliers = [Applier(i) for i in range(max(config.appliers, 1))]
        self._owners: OrderedDict[ItemKey, uuid.UUID] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._fetchers: list[asyncio.Task[None]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._owed = False  # some rank moves were kept for after a backlog
        self._accepting = False  # events that arrive while stopped are parked
        self._parked: list[tuple[Msg, Source]] = []

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._task is not None:
            return
        for source in self.sources:
            await source.subscribe(self._deliver)
        self._task = asyncio.create_task(self._run(), name="leaderboard-consumers")

    async def stop(self) -> None:
        """Stop applying events. Batches under way finish first; events routed but
        not applied go back to the server; events that arrive meanwhile wait (in
        the subscriptions or on the server) for `start`."""
        if self._task is None:
            return
        self._accepting = False
        for task in self._fetchers:
            task.cancel()
        for applier, task in zip(self.appliers, self._workers, strict=False):
            async with applier.applying:  # between batches
                task.cancel()
        task, self._task = self._task, None
        await stop_tasks(task)
        for applier in self.appliers:
            left = [applier.holding] if applier.holding is not None else []
            applier.holding = None
            while not applier.queue.empty():
                left.append(applier.queue.get_nowait())
            for routed in left:
                routed.source.done(1)
                with contextlib.suppress(Exception):
                    await routed.msg.nak()

    async def close(self) -> None:
        await self.stop()
        for source in self.sources:
            await source.unsubscribe()
        parked, self._parked = self._parked, []
        for msg, _ in parked:
            with contextlib.suppress(Exception):
                await msg.nak()

    async def _run(self) -> None:
        async with self._service.pool.acquire() as conn:
            while True:
                if await store.try_lock(conn, CONSUME_LOCK):
                    break
                await asyncio.sleep(STANDBY_POLL_SECONDS)
            self._accepting = True
            parked, self._parked = self._parked, []
            for msg, source in parked:
                await self._deliver(msg, source)
            self._fetchers = [
                asyncio.create_task(self._fetch(source), name=source.durable)
                for source in self.sources
            ]
            self._workers = [
                asyncio.create_task(self._apply(applier), name=f"applier-{applier.index}")
                for applier in self.appliers
            ]
            tasks = [*self._fetchers, *self._workers]
            try:
                await asyncio.gather(*tasks)
            finally:
                await stop_tasks(*tasks)
                self._fetchers, self._workers = [], []
                with contextlib.suppress(Exception):
                    await store.unlock(conn, CONSUME_LOCK)

    # ----------------------------------------------------------------- fetching and routing

    async def _fetch(self, source: Source) -> None:
        while True:
            await source.room.wait()
            try:
                await source.pull(self._config.batch_size, WAIT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s: pull request failed; retrying", source.durable, exc_info=True)
                await asyncio.sleep(1.0)

    async def _deliver(self, msg: Msg, source: Source) -> None:
        if not self._accepting:
            # Stopped: the pull request still open for a moment may deliver an
            # event. It waits here for `start` (naked, it would come straight
            # back on that same request, again and again until it expires).
            self._parked.append((msg, source))
            return
        behind = source.behind(_pending_after(msg))
        self._service.jobs.note_backlog(source.durable, behind)
        source.in_flight += 1
        if source.in_flight >= 2 * self._config.batch_size:
            source.room.clear()
        await self._route(msg, source, behind)

    async def _route(self, msg: Msg, source: Source, behind: bool) -> None:
        envelope: Envelope | None = None
        parsed: tally.Parsed | tally.InvalidEvent | None = None
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            envelope = decode_envelope(msg.data)
        if envelope is not None:
            try:
                parsed = tally.parse(envelope)
            except tally.InvalidEvent as exc:
                parsed = exc
        user = await self._student_of(parsed) if isinstance(parsed, tally.Parsed) else None
        applier = self.appliers[user.int % len(self.appliers) if user is not None else 0]
        applier.queue.put_nowait(Routed(msg, envelope, parsed, behind, source))
        if applier.queue.qsize() >= self._config.batch_size - 1:
            applier.full.set()

    async def _student_of(self, parsed: tally.Parsed) -> uuid.UUID | None:
        """The student whose statistics the event changes (deletions without an
        author are resolved through the counted item's owner)."""
        user = tally.user_of(parsed)
        key = parsed.item
        if user.int != 0:
            if key is not None and parsed.type in tally.CREATIONS:
                self._owners[key] = user
                if len(self._owners) > OWNERS_REMEMBERED:
                    self._owners.popitem(last=False)
            return user
        if key is None:
            return None
        owner = self._owners.get(key)
        if owner is None:
            async with self._service.pool.acquire() as conn:
                owner = await store.item_owner(conn, key)
        return owner

    # ----------------------------------------------------------------- applying

    async def _apply(self, applier: Applier) -> None:
        while True:
            applier.holding = await applier.queue.get()
            if applier.holding.behind and applier.queue.qsize() < self._config.batch_size - 1:
                # Events stream in a few at a time: in a backlog, a fuller batch
                # is worth a few milliseconds.
                applier.full.clear()
                await wait_set(applier.full, FILL_SECONDS)
            async with applier.applying:
                batch = [applier.holding]
                applier.holding = None
                while len(batch) < self._config.batch_size and not applier.queue.empty():
                    batch.append(applier.queue.get_nowait())
                await self._apply_batch(batch)
            if self._owed and not self._service.jobs.catching_up and self._all_applied():
                self._owed = False
                await self._announce_backlog()

    def _all_applied(self) -> bool:
        """No event waits in a queue, in an applier's hand (for a fuller batch) or
        in a transaction: a backlog's moves may be announced."""
        return all(
            a.queue.empty() and a.holding is None and not a.applying.locked() for a in self.appliers
        )

    async def _apply_batch(self, batch: list[Routed]) -> None:
        behind = any(r.behind for r in batch)
        good = [r for r in batch if r.envelope is not None]
        for r in batch:
            if r.envelope is None:
                log.warning("dropping a message that is not an event envelope on %s", r.msg.subject)
                EVENTS_CONSUMED.labels(consumer=r.source.durable, outcome="undecodable").inc()
                with contextlib.suppress(Exception):
                    await r.msg.term()
        try:
            if good:
                await self._apply_with_retries(good, behind)
        finally:
            for r in batch:
                r.source.done(1)

    async def _apply_with_retries(self, batch: list[Routed], behind: bool) -> None:
        envelopes = [r.envelope for r in batch if r.envelope is not None]
        parsed = {r.envelope.id: r.parsed for r in batch if r.envelope is not None}
        delay = 0.2
        for attempt in range(8):
            try:
                result = await self._service.apply_events(envelopes, behind=behind, parsed=parsed)
                break
            except asyncio.CancelledError:
                raise
            except store.StaleStudents as exc:
                # Rare (another transaction changed a student meanwhile): again, now.
                log.info("applying %d events again: %s", len(envelopes), exc)
                continue
            except Exception:
                log.warning(
                    "applying %d events failed (attempt %d)",
                    len(envelopes),
                    attempt + 1,
                    exc_info=True,
                )
                EVENTS_CONSUMED.labels(consumer="leaderboard", outcome="retry").inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        else:
            for r in batch:
                with contextlib.suppress(Exception):
                    await r.msg.nak(delay=5)
            return
        for r in batch:
            with contextlib.suppress(Exception):
                await r.msg.ack()
        if result.deferred:
            self._owed = True
        by_source: dict[str, int] = {}
        for r in batch:
            by_source[r.source.durable] = by_source.get(r.source.durable, 0) + 1
        for durable, count in by_source.items():
            EVENTS_CONSUMED.labels(consumer=durable, outcome="received").inc(count)
        if result.duplicates:
            EVENTS_CONSUMED.labels(consumer="leaderboard", outcome="duplicate").inc(
                result.duplicates
            )
        if result.invalid:
            EVENTS_CONSUMED.labels(consumer="leaderboard", outcome="invalid").inc(result.invalid)

    async def _announce_backlog(self) -> None:
        """Caught up and nothing left to apply: announce the backlog's net moves."""
        try:
            await self._service.announce_pending_moves()
        except Exception:
            log.warning("announcing the moves of a backlog failed; retried later", exc_info=True)
