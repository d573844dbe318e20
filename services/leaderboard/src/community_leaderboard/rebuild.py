"""Recompute every statistic, badge and board from the event history.

    python -m community_leaderboard.rebuild

Replays `posts.>`, `goals.>` and `learning.>` from the start of the
leaderboard's history streams (history.py), then whatever `EVENTS` holds that
was not copied yet, through the same fold the live consumers use, in one
transaction that holds the ingest lock exclusively: live consumers (and
privacy changes) wait, then continue with the events that arrive meanwhile,
which the rebuild's recorded event ids make idempotent. Students' privacy choices are kept. The
rebuild publishes nothing: it restores what the live consumers would have
built, it does not happen again.

The history streams keep every event for good by default
(`LEADERBOARD_HISTORY_MAX_AGE_DAYS`), where `EVENTS` keeps eight days; events
published before the history streams were first set up are replayed only if
`EVENTS` still held them at that moment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from community_shared.collector import tune_collector
from community_shared.connections import connect_nats, create_pool, create_redis
from community_shared.events import Envelope, decode_envelope
from community_shared.logs import configure_logging
from community_shared.migrations import migrate, migrations_for
from community_shared.settings import Settings
from community_shared.streams import EVENTS_STREAM, ensure_event_stream
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from community_leaderboard import store
from community_leaderboard.app import MIGRATIONS
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.context import utc_today
from community_leaderboard.events import CONSUMED_SUBJECTS
from community_leaderboard.history import (
    ensure_history_streams,
    history_stream_name,
    origin_sequence,
)
from community_leaderboard.service import LeaderboardService

log = logging.getLogger(__name__)

REPLAY_BATCH = 1000


@dataclass(frozen=True)
class RebuildReport:
    events: int
    applied: int
    invalid: int
    students_ranked: int
    seconds: float


async def replay(
    js: JetStreamContext,
    stream: str,
    subject: str,
    apply: Callable[[list[Envelope]], Awaitable[object]],
    *,
    after: int = 0,
) -> tuple[int, int | None]:
    """Feed every stored event of `subject` in `stream` after sequence `after`,
    oldest first, to `apply` in batches.

    Returns how many messages were read and, for a history stream, the `EVENTS`
    sequence the last of them was copied from (None if nothing was read or the
    messages carry no `Nats-Stream-Source`)."""
    last = (await js.stream_info(stream)).state.last_seq
    if last <= after:
        return 0, None
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            inactive_threshold=60,
            max_ack_pending=-1,
        ),
    )
    seen = 0
    origin: int | None = None
    try:
        if (await sub.consumer_info()).num_pending == 0:
            return 0, None
        while True:
            try:
                messages = await sub.fetch(REPLAY_BATCH, timeout=2)
            except TimeoutError:
                break
            envelopes: list[Envelope] = []
            for msg in messages:
                try:
                    envelopes.append(decode_envelope(msg.data))
                except (msgspec.DecodeError, msgspec.ValidationError):
                    log.warning("skipping a message that is not an event envelope")
            seen += len(messages)
            if envelopes:
                await apply(envelopes)
            meta = messages[-1].metadata
            origin = origin_sequence(messages[-1])
            if meta.num_pending == 0 or meta.sequence.stream >= last:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(NotFoundError, Exception):
            info = await sub.consumer_info()
            await js.delete_consumer(stream, info.name)
    return seen, origin


async def replay_history(
    js: JetStreamContext,
    settings: Settings,
    subject: str,
    apply: Callable[[list[Envelope]], Awaitable[object]],
) -> int:
    """Every event of a source: its history stream, then what `EVENTS` holds
    after the last event copied (the copy runs a moment behind; an event in
    both is applied once, by id)."""
    copied, origin = await replay(
        js, history_stream_name(settings, subject), settings.subject(subject), apply
    )
    recent, _ = await replay(
        js, settings.stream_name(EVENTS_STREAM), settings.subject(subject), apply, after=origin or 0
    )
    return copied + recent


async def rebuild(
    settings: Settings, config: LeaderboardConfig | None = None, *, today: dt.date | None = None
) -> RebuildReport:
    config = config or LeaderboardConfig.from_env()
    started = time.monotonic()
    pool = await create_pool(settings, min_size=1, max_size=4)
    redis = create_redis(settings)
    nc = await connect_nats(settings, name=f"{settings.service}-rebuild")
    try:
        async with pool.acquire() as conn:
            await migrate(conn, store.SCHEMA, migrations_for(MIGRATIONS))
        js = nc.jetstream()
        await ensure_event_stream(js, settings)
        await ensure_history_streams(js, settings, config)
        service = LeaderboardService(pool, redis, settings, config)
        day = today or utc_today()
        events = applied = invalid = 0
        async with pool.acquire() as conn, conn.transaction():
            await store.lock_ingest_exclusive(conn)
            await store.reset_derived(conn)

            async def apply(batch: list[Envelope]) -> None:
                nonlocal applied, invalid
                result = await service.ingest.ingest_silently(conn, batch, day)
                applied += result.applied
                invalid += result.invalid

            for subject in CONSUMED_SUBJECTS:
                events += await replay_history(js, settings, subject, apply)
            await service.boards.clear_pending()
            await store.names_from_tokens(conn)
            await service.placement.settle_all_badges(conn, day)
            ranked = await service.placement.resync_boards(conn, day)
        return RebuildReport(
            events=events,
            applied=applied,
            invalid=invalid,
            students_ranked=ranked,
            seconds=time.monotonic() - started,
        )
    finally:
        with contextlib.suppress(Exception):
            await nc.drain()
        await redis.aclose()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m community_leaderboard.rebuild",
        description="Recompute the leaderboard's statistics and boards from the EVENTS stream.",
    )
    parser.parse_args()
    settings = Settings.from_env("leaderboard", 8004)
    configure_logging("leaderboard-rebuild", settings.log_level)
    tune_collector()
    report = asyncio.run(rebuild(settings))
    print(
        f"replayed {report.events} events ({report.applied} applied, {report.invalid} invalid);"
        f" {report.students_ranked} students ranked; {report.seconds:.1f}s"
    )


if __name__ == "__main__":
    main()
