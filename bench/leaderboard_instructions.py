"""The leaderboard's own work per event, counted in instructions (callgrind).

    CALLGRIND_OUT=/tmp/lb valgrind --tool=callgrind --instr-atstart=no \\
        --callgrind-out-file=/tmp/lb .venv/bin/python bench/leaderboard_instructions.py
    # another build: the same with
    # PYTHONPATH=<checkout>/services/leaderboard/src:<checkout>/shared/src

Seconds on a shared machine move with whatever else runs (`leaderboard_scale.py`
saw the same build's CPU per event change by half between two runs); the
number of instructions the service's own process executes for the same
events does not. This script applies the same events, generated from a fixed
seed with fixed ids, through `LeaderboardService.apply_events` (what the
durable consumers call, batches of `--batch`, as a backlog: `behind=True`)
against real Postgres and Redis in a database and key prefix of its own.
The first `--warmup` events are applied before counting starts (imports,
caches, prepared statements); counting is switched on for the rest with
`callgrind_control` and off again after, so the figure is the instructions
executed by the ingest of `--events - --warmup` events: Python, msgspec,
asyncpg and redis-py in this process, not Postgres's or Redis's.

Without valgrind it runs as a plain script and prints the wall time only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import leaderboard_scale as scale
from _harness import Callgrind
from community_leaderboard.app import MIGRATIONS
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.service import LeaderboardService
from community_leaderboard.store import SCHEMA
from community_shared.connections import create_pool, create_redis
from community_shared.events import decode_envelope, encode_envelope, make_event
from community_shared.migrations import ensure_database, migrate, migrations_for
from community_shared.settings import Settings


def envelopes(students: int, count: int, seed: int) -> list[bytes]:
    """The bench's event mix, with every id drawn from `seed` (the same bytes every run)."""
    rng = random.Random(seed)
    ids = random.Random(seed + 1)

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=ids.getrandbits(128), version=4)

    scale.uuid = SimpleNamespace(uuid4=uuid4, UUID=uuid.UUID)  # type: ignore[attr-defined]
    # the history ends at the last midnight (UTC): the same days on every run of a day
    midnight = time.time() // 86400 * 86400
    scale.time = SimpleNamespace(time=lambda: midnight, perf_counter=time.perf_counter)  # type: ignore[attr-defined]
    people = [
        scale.Student(id=uuid4(), name=f"Student {i}", track="agency" if i % 2 else "saas")
        for i in range(students)
    ]
    history = scale.History(people)
    out = []
    for kind, data, at in scale.generate(history, count, rng):
        envelope = make_event(
            kind,
            data,
            source=kind.split(".", 1)[0],
            actor_id=None,
            event_id=uuid4(),
            occurred_at=dt.datetime.fromtimestamp(at, dt.UTC),
        )
        out.append(encode_envelope(envelope))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--events", type=int, default=8000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/community")
    database_url = base.rsplit("/", 1)[0] + f"/bench_lbi_{run_id}"
    settings = Settings.from_env(
        "leaderboard",
        8004,
        database_url=database_url,
        redis_key_prefix=f"blbi{run_id}:",
        nats_subject_prefix=f"blbi{run_id}.",
    )
    await ensure_database(database_url)
    pool = await create_pool(settings, min_size=1, max_size=4)
    redis = create_redis(settings)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA, migrations_for(MIGRATIONS))
        service = LeaderboardService(pool, redis, settings, LeaderboardConfig())
        await service.resync()
        raw = envelopes(args.students, args.events, args.seed)
        batches = [raw[i : i + args.batch] for i in range(0, len(raw), args.batch)]
        warm = args.warmup // args.batch
        for batch in batches[:warm]:
            await service.apply_events([decode_envelope(b) for b in batch], behind=True)
        measured = sum(len(b) for b in batches[warm:])
        started = time.perf_counter()
        with Callgrind().count() as counted:
            for batch in batches[warm:]:
                await service.apply_events([decode_envelope(b) for b in batch], behind=True)
        took = time.perf_counter() - started
        print(f"applied {measured} events (after {warm * args.batch} unmeasured) in {took:.2f} s")
        if counted[0]:
            print(f"instructions: {counted[0]:,} in all, {counted[0] // measured:,} per event")
    finally:
        await redis.aclose()
        await pool.close()
        conn = await asyncpg.connect(base.rsplit("/", 1)[0] + "/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "bench_lbi_{run_id}" WITH (FORCE)')
        finally:
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
