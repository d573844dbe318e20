"""Leaderboard at scale: ingest throughput, approval -> rank.changed, read latency.

    uv run python bench/leaderboard_scale.py [--students 100000] [--events 1000000]
                                             [--samples 200] [--reads 2000]
                                             [--days 60] [--no-gateway] [--keep]
                                             [--ingest-only]

1. History: generates `--events` events for `--students` students on both
   tracks (a goal each, then posts, replies, likes, submissions, approvals,
   completed goals, videos and tasks spread over the last 60 days, oldest
   first, a few students far more active than most) and publishes them into a
   fresh EVENTS stream before the service starts; then sets up the
   leaderboard's history streams and waits for the server to copy the history
   into them (timed apart from both the publishing and the ingest).
2. Ingest: starts the leaderboard service (a subprocess, as deployed) and times
   its durable consumers from ready to caught up: events applied per second.
   Then waits for the outbox relay to publish the `rank.changed` events the
   ingest produced, and reports how many and how fast.
3. Approval -> rank.changed: starts a websocket gateway (which routes events
   published from then on) with one client subscribed to `leaderboard`, then
   publishes `goals.submission.approved` for students in the middle of the
   all-time board, one at a time, and times until that student's
   `rank.changed` on `all:all` arrives on its NATS subject and as a frame on
   the websocket.
4. Reads: p50/p99 of `GET /leaderboard` (first page) and `GET /leaderboard/me`
   for random students, one request at a time over a kept-alive connection.

Everything runs against the Postgres, NATS and Redis at the usual URLs, in a
database, subject prefix and key prefix of its own, removed at the end
(unless `--keep`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import httpx
import msgspec
import nats
import redis.asyncio as aioredis
from _harness import cpu_seconds, free_port, percentile, process, python, wait_ready
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.events import CONSUMED_SUBJECTS
from community_leaderboard.history import ensure_history_streams, history_stream_name
from community_shared.auth import issue_token
from community_shared.events import encode_envelope, make_event
from community_shared.migrations import ensure_database
from community_shared.settings import DEFAULT_JWT_SECRET, Settings
from community_shared.streams import ensure_event_stream

DAY = 86400.0
MIX = [
    ("learning.video.watched", 0.30),
    ("posts.post.liked", 0.20),
    ("posts.post.created", 0.10),
    ("posts.reply.created", 0.10),
    ("learning.task.assigned", 0.10),
    ("learning.task.completed", 0.08),
    ("goals.submission.created", 0.06),
    ("goals.submission.approved", 0.05),
    ("goals.goal.completed", 0.01),
]


@dataclass
class Student:
    id: uuid.UUID
    name: str
    track: str
    total: int = 0
    mrr: int = 0
    tasks: int = 0
    done: int = 0


@dataclass
class History:
    students: list[Student]
    posts: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)


def author(s: Student) -> dict[str, str]:
    return {"id": str(s.id), "name": s.name, "role": "student"}


def generate(
    history: History, count: int, rng: random.Random, days: float = 60
) -> list[tuple[str, dict[str, Any], float]]:
    """(type, data, unix time) of the whole history over the last `days`, oldest first."""
    students = history.students
    n = len(students)
    now = time.time()
    start = now - days * DAY
    out: list[tuple[str, dict[str, Any], float]] = []
    for i, s in enumerate(students):
        out.append(
            (
                "goals.goal.assigned",
                {"student_id": str(s.id), "student_name": s.name, "track": s.track,
                 "goal_slug": "first-1k", "goal_name": "First 1K", "target": "1000.00",
                 "review_id": None, "reviewed_by": None},
                start + i * 0.001,
            )
        )  # fmt: skip
    rest = max(count - n, 0)
    times = sorted(start + 60 + rng.random() * (days * DAY - 120) for _ in range(rest))
    types = [t for t, _ in MIX]
    weights = [w for _, w in MIX]
    for at in times:
        s = students[int(n * rng.random() ** 2)]  # some students are far busier
        kind = rng.choices(types, weights)[0]
        if kind in ("posts.post.liked", "posts.reply.created") and not history.posts:
            kind = "posts.post.created"
        if kind == "learning.task.completed" and s.done >= s.tasks:
            kind = "learning.task.assigned"
        if kind == "posts.post.created":
            post_id = uuid.uuid4()
            history.posts.append((post_id, s.id))
            data: dict[str, Any] = {"id": str(post_id), "author": author(s),
                                    "visibility": rng.choice(["public", "members"])}  # fmt: skip
        elif kind == "posts.post.liked":
            post_id, post_author = history.posts[int(len(history.posts) * rng.random())]
            data = {
                "post_id": str(post_id),
                "user_id": str(s.id),
                "user_name": s.name,
                "likes_count": 1,
                "post_author_id": str(post_author),
                "visibility": "public",
            }
        elif kind == "posts.reply.created":
            post_id, post_author = history.posts[int(len(history.posts) * rng.random())]
            data = {"id": str(uuid.uuid4()), "post_id": str(post_id), "reply_to_id": None,
                    "author": author(s), "visibility": "public",
                    "post_author_id": str(post_author)}  # fmt: skip
        elif kind == "learning.video.watched":
            session = rng.randint(300, 3600)
            data = {"user_id": str(s.id), "video_id": f"v{rng.randint(1, 500)}",
                    "watched_seconds": int(session * rng.uniform(0.2, 0.95)),
                    "session_seconds": session}  # fmt: skip
        elif kind == "learning.task.assigned":
            s.tasks += 1
            data = {"user_id": str(s.id), "task_id": f"t{s.tasks}"}
        elif kind == "learning.task.completed":
            s.done += 1
            data = {"user_id": str(s.id), "task_id": f"t{s.done}"}
        elif kind == "goals.submission.created":
            data = {"review_id": str(uuid.uuid4()), "student_id": str(s.id),
                    "student_name": s.name, "track": s.track, "goal_slug": "first-1k",
                    "amount": f"{rng.randint(100, 3000)}.00"}  # fmt: skip
        elif kind == "goals.submission.approved":
            data = approval(s, rng.randint(100, 3000))
        else:
            data = {"student_id": str(s.id), "student_name": s.name, "track": s.track,
                    "goal_slug": "first-1k", "goal_name": "First 1K"}  # fmt: skip
        out.append((kind, data, at))
    return out


def approval(s: Student, amount: int) -> dict[str, Any]:
    if s.track == "agency":
        s.total += amount
    else:
        s.total += amount
        s.mrr = max(s.mrr, amount)
    return {
        "review_id": str(uuid.uuid4()),
        "student_id": str(s.id),
        "student_name": s.name,
        "track": s.track,
        "goal_slug": "first-1k",
        "amount": f"{amount}.00",
        "total_revenue_earned": f"{s.total}.00",
        "current_mrr": f"{s.mrr}.00",
        "reviewed_by": str(uuid.uuid4()),
        "reviewed_at": dt.datetime.now(dt.UTC).isoformat(),
    }


async def publish_history(
    js: Any, settings: Settings, events: list[tuple[str, dict[str, Any], float]]
) -> float:
    started = time.perf_counter()
    window: list[Any] = []
    for kind, data, at in events:
        envelope = make_event(
            kind, data, source=kind.split(".", 1)[0], actor_id=None,
            occurred_at=dt.datetime.fromtimestamp(at, dt.UTC),
        )  # fmt: skip
        window.append(
            await js.publish_async(
                settings.subject(kind), encode_envelope(envelope),
                headers={"Nats-Msg-Id": str(envelope.id)},
            )
        )  # fmt: skip
        if len(window) >= 2000:
            await asyncio.gather(*window)
            window = []
    await asyncio.gather(*window)
    return time.perf_counter() - started


async def copy_history(js: Any, settings: Settings, by_source: dict[str, int]) -> float:
    """Set up the leaderboard's history streams and wait for the server to copy
    the history into them, as a deployed leaderboard's streams would have at
    publish time (so the copying is timed neither as publishing nor as ingest)."""
    started = time.perf_counter()
    await ensure_history_streams(js, settings, LeaderboardConfig())
    for subject in CONSUMED_SUBJECTS:
        stream = history_stream_name(settings, subject)
        wanted = by_source.get(subject.split(".", 1)[0], 0)
        while (await js.stream_info(stream)).state.messages < wanted:
            await asyncio.sleep(0.5)
    return time.perf_counter() - started


async def consumers_backlog(js: Any, settings: Settings) -> int:
    stream = settings.stream_name("EVENTS")
    backlog = 0
    for source in ("posts", "goals", "learning"):
        try:
            info = await js.consumer_info(stream, settings.stream_name(f"leaderboard_{source}"))
        except Exception:
            return -1
        backlog += info.num_pending + info.num_ack_pending
    return backlog


SERVERS = ("postgres", "redis-server", "nats-server")
"""The local servers whose CPU time the ingest is charged with."""


def line(label: str, values: list[float]) -> str:
    return (
        f"{label}: n={len(values)} p50 {percentile(values, 50):.1f} ms  "
        f"p90 {percentile(values, 90):.1f} ms  p99 {percentile(values, 99):.1f} ms  "
        f"max {max(values):.1f} ms"
    )


def start_gateway(stack: contextlib.ExitStack, env: dict[str, str]) -> str:
    """Start a gateway (it routes only events published from now on) and return its URL."""
    port = free_port()
    stack.enter_context(
        process([python(), "-m", "community_gateway.app"], {**env, "PORT": str(port)})
    )
    wait_ready(f"http://127.0.0.1:{port}/ready", timeout=60)
    return f"ws://127.0.0.1:{port}/ws"


async def time_approvals(
    args: argparse.Namespace,
    rng: random.Random,
    http: httpx.AsyncClient,
    js: Any,
    nc: Any,
    settings: Settings,
    by_id: dict[str, Student],
    total: int,
    ws_url: str | None,
) -> tuple[list[float], list[float], int]:
    """Approve students from the middle of the board one at a time; time their
    all-time `rank.changed` on NATS and (with a gateway) as a websocket frame."""
    from websockets.asyncio.client import connect

    sent: dict[str, float] = {}
    on_nats: dict[str, float] = {}
    on_ws: dict[str, float] = {}

    async def nats_arrival(msg: Any) -> None:
        arrived = time.time()
        data = msgspec.json.decode(msg.data)["data"]
        if data["board"] == "all:all" and data["user_id"] in sent:
            on_nats.setdefault(data["user_id"], arrived)

    async def ws_arrivals(ws: Any) -> None:
        async for message in ws:
            arrived = time.time()
            frame = msgspec.json.decode(message)
            data = frame.get("data") or {}
            if (
                frame.get("type") == "rank.changed"
                and data.get("board") == "all:all"
                and data.get("user_id") in sent
            ):
                on_ws.setdefault(data["user_id"], arrived)

    sub = await nc.subscribe(settings.subject("leaderboard.rank.changed"), cb=nats_arrival)
    ws = reader = None
    if ws_url is not None:
        ws = await connect(ws_url, open_timeout=10, max_size=2**22)
        await ws.recv()  # hello
        await ws.send('{"op": "subscribe", "channel": "leaderboard", "id": "s"}')
        reader = asyncio.create_task(ws_arrivals(ws))
    nats_ms: list[float] = []
    frame_ms: list[float] = []
    missed = 0
    try:
        for i in range(args.samples + 5):  # the first five warm the path up
            offset = rng.randint(total // 4, max(total - 1, total // 4))
            page = (await http.get("/leaderboard", params={"offset": offset, "limit": 1})).json()
            if not page["items"]:
                continue
            user = page["items"][0]["user_id"]
            data = approval(by_id[user], 5000 + rng.randint(0, 5000))
            envelope = make_event("goals.submission.approved", data, source="goals", actor_id=None)
            sent[user] = time.time()
            await js.publish(
                settings.subject(envelope.type),
                encode_envelope(envelope),
                headers={"Nats-Msg-Id": str(envelope.id)},
            )
            deadline = time.perf_counter() + 5
            while time.perf_counter() < deadline and (
                user not in on_nats or (ws is not None and user not in on_ws)
            ):
                await asyncio.sleep(0.001)
            started = sent.pop(user)
            if user not in on_nats or (ws is not None and user not in on_ws):
                missed += 1
            elif i >= 5:
                nats_ms.append((on_nats[user] - started) * 1000)
                if ws is not None:
                    frame_ms.append((on_ws[user] - started) * 1000)
            on_nats.pop(user, None)
            on_ws.pop(user, None)
            await asyncio.sleep(0.05)
    finally:
        await sub.unsubscribe()
        if reader is not None:
            reader.cancel()
        if ws is not None:
            await ws.close()
    return nats_ms, frame_ms, missed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200, help="approvals timed")
    parser.add_argument("--reads", type=int, default=2000, help="requests per read route")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--days", type=float, default=60, help="the history spans this many days up to now"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database, stream and keys")
    parser.add_argument("--no-gateway", action="store_true", help="time rank.changed on NATS only")
    parser.add_argument(
        "--ingest-only", action="store_true", help="stop once the ingest is timed (steps 1-2)"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)

    run_id = uuid.uuid4().hex[:8]
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/community")
    database_url = base.rsplit("/", 1)[0] + f"/bench_lb_{run_id}"
    env = {
        "DATABASE_URL": database_url,
        "NATS_URL": os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "JWT_SECRET": os.environ.get("JWT_SECRET", DEFAULT_JWT_SECRET),
        "NATS_SUBJECT_PREFIX": f"blb{run_id}.",
        "REDIS_KEY_PREFIX": f"blb{run_id}:",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "OUTBOX_POLL_SECONDS": "0.5",
    }
    settings = Settings.from_env(
        "leaderboard",
        8004,
        database_url=database_url,
        nats_url=env["NATS_URL"],
        redis_url=env["REDIS_URL"],
        nats_subject_prefix=env["NATS_SUBJECT_PREFIX"],
        redis_key_prefix=env["REDIS_KEY_PREFIX"],
    )
    await ensure_database(database_url)
    nc = await nats.connect(env["NATS_URL"], pending_size=256 * 1024 * 1024)
    js = nc.jetstream(publish_async_max_pending=4000)
    await ensure_event_stream(js, settings)
    print(f"leaderboard scale bench: {args.students} students, {args.events} events")

    students = [
        Student(id=uuid.uuid4(), name=f"Student {i}", track="agency" if i % 2 else "saas")
        for i in range(args.students)
    ]
    history = History(students)
    t = time.perf_counter()
    events = generate(history, args.events, rng, args.days)
    print(f"generated {len(events)} events in {time.perf_counter() - t:.1f} s")
    took = await publish_history(js, settings, events)
    print(f"published the history in {took:.1f} s ({len(events) / took:,.0f} events/s)")
    by_source: dict[str, int] = {}
    for kind, _, _ in events:
        source = kind.split(".", 1)[0]
        by_source[source] = by_source.get(source, 0) + 1
    del events
    # What is left (the students, their history) lives to the end: out of the
    # collector's sight, so that no full collection pauses the timings below.
    gc.collect()
    gc.freeze()
    took = await copy_history(js, settings, by_source)
    print(f"the server copied it into the leaderboard's history streams in {took:.1f} s")

    port = free_port()
    db = await asyncpg.connect(database_url)
    try:
        with process(
            [python(), "-m", "community_leaderboard.app"], {**env, "PORT": str(port)}
        ) as service:
            wait_ready(f"http://127.0.0.1:{port}/ready", timeout=120)
            started = time.perf_counter()
            cpu_before = cpu_seconds({"leaderboard": service.pid}, SERVERS)
            # ---------------------------------------------------------- ingest
            last_report = started
            while True:
                await asyncio.sleep(0.5)
                backlog = await consumers_backlog(js, settings)
                now = time.perf_counter()
                if now - last_report > 15:
                    done = args.events - max(backlog, 0)
                    print(f"  ingest: {done:,} applied after {now - started:.0f} s")
                    last_report = now
                if backlog == 0:
                    break
            ingest_seconds = time.perf_counter() - started
            applied = await db.fetchval("SELECT count(*) FROM leaderboard.applied_events")
            print(
                f"INGEST: {applied:,} events in {ingest_seconds:.1f} s = "
                f"{applied / ingest_seconds:,.0f} events/s"
            )
            cpu_after = cpu_seconds({"leaderboard": service.pid}, SERVERS)
            if cpu_after:
                # CPU time per event is steadier than events/s on a shared machine.
                per = {k: (cpu_after[k] - cpu_before.get(k, 0.0)) for k in cpu_after}
                print(
                    "  CPU per 1,000 events during the ingest: "
                    + ", ".join(f"{k} {v / applied * 1000:.3f} s" for k, v in per.items())
                    + f"; total {sum(per.values()) / applied * 1000:.3f} s"
                )
            first_pages = await db.fetchval(
                "SELECT count(*) FROM leaderboard.outbox WHERE subject = $1",
                "leaderboard.top.changed",
            )
            print(f"  top.changed published during the ingest: {first_pages:,}")
            if args.ingest_only:
                return
            # The backlog's net rank moves are announced once caught up; then the
            # relay publishes everything the ingest enqueued.
            drain_started = time.perf_counter()
            redis = aioredis.Redis.from_url(env["REDIS_URL"])
            while True:
                kept = await redis.hlen(settings.redis_key("lb:pending_moves"))
                pending = await db.fetchval(
                    "SELECT count(*) FROM leaderboard.outbox WHERE published_at IS NULL"
                )
                if not pending and not kept:
                    break
                await asyncio.sleep(0.5)
            await redis.aclose()
            drain = time.perf_counter() - drain_started
            produced = await db.fetch(
                "SELECT subject, count(*) AS n FROM leaderboard.outbox GROUP BY subject ORDER BY 1"
            )
            print(
                "  events published: "
                + ", ".join(f"{r['subject']} {r['n']:,}" for r in produced)
                + f"; all out {drain:.1f} s after the ingest finished"
            )

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                total = (await http.get("/leaderboard")).json()["total"]
                print(f"  all-time board: {total:,} students")
                # ------------------------------------------------ approval -> rank.changed
                by_id = {str(s.id): s for s in students}
                with contextlib.ExitStack() as stack:
                    ws_url = None
                    if not args.no_gateway:
                        ws_url = start_gateway(stack, env)
                    nats_ms, frame_ms, missed = await time_approvals(
                        args, rng, http, js, nc, settings, by_id, total, ws_url
                    )
                print(line("APPROVAL -> rank.changed on its NATS subject", nats_ms))
                if frame_ms:
                    print(line("APPROVAL -> rank.changed frame through the gateway", frame_ms))
                print(f"  approvals timed: {len(nats_ms)}, missed: {missed}")

                # ------------------------------------------------------------- reads
                board_ms: list[float] = []
                for _ in range(50):
                    await http.get("/leaderboard")
                for _ in range(args.reads):
                    t = time.perf_counter()
                    response = await http.get("/leaderboard")
                    board_ms.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200
                print(line("GET /leaderboard (first page)", board_ms))
                me_ms: list[float] = []
                tokens = [
                    issue_token(sub=s.id, role="student", name=s.name, secret=env["JWT_SECRET"])
                    for s in rng.sample(students, min(len(students), 500))
                ]
                for i in range(args.reads):
                    headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
                    t = time.perf_counter()
                    response = await http.get("/leaderboard/me", headers=headers)
                    me_ms.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200
                print(line("GET /leaderboard/me", me_ms))
    finally:
        await db.close()
        if not args.keep:
            admin = await asyncpg.connect(base.rsplit("/", 1)[0] + "/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "bench_lb_{run_id}" WITH (FORCE)')
            await admin.close()
            for info in await js.streams_info():
                if info.config.name and info.config.name.startswith(f"blb{run_id}"):
                    await js.delete_stream(info.config.name)
            redis = aioredis.Redis.from_url(env["REDIS_URL"])
            async for key in redis.scan_iter(match=f"blb{run_id}:*", count=1000):
                await redis.delete(key)
            await redis.aclose()
        await nc.close()


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
