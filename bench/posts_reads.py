"""Posts reads on a large table: p50/p99 of the feed's first page, a deep page and a search.

    uv run python bench/posts_reads.py [--posts 100000] [--likes-per-post 10] [--requests 500]

Seeds a throwaway database (`<DATABASE_URL server>/community_bench_posts`,
recreated each run, dropped at the end unless `--keep`) with `--posts` posts by
2,000 authors over a year (2% by instructors, 20% members-only, a few pinned)
and about `--likes-per-post` likes per post (1M by default), written with
`generate_series` in a few statements. Then runs the posts app in this process
(its real lifespan: pool, migrations, NATS, Redis; requests through
`httpx.ASGITransport`, so no socket in the measurement), with a goals responder
answering taglines, and times `--requests` sequential requests of each kind:

- first page: `GET /posts` as a member (pinned first, `liked_by_me` for 20 posts);
- first page as a guest (public posts only);
- deep page: `GET /posts?cursor=…` starting half-way down the feed;
- search: `GET /posts?q=<word>` for a common word, and for two words of
  middling frequency;
- filter=instructors and filter=mine;
- the floor: `GET /health` through the same client (the app and the transport,
  no database), measured in the same run.

Prints p50/p99 per kind (milliseconds) and the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import httpx
import msgspec
import nats
from _harness import Callgrind
from community_posts.app import create_app
from community_shared.auth import issue_token
from community_shared.pagination import encode_cursor
from community_shared.settings import DEFAULT_DATABASE_URL, Settings

# The community's own words come first (the most frequent); then 1,920 filler words. Word
# ranks are drawn with a Zipf-like skew, so a few words are in half the posts and most
# are rare, as in real text.
_DOMAIN_TEXT = (
    "client clients agency pricing retainer proposal outreach cold email emails landing page "
    "saas churn mrr onboarding trial launch feature roadmap design figma react python backend "
    "deploy invoice contract scope upwork linkedin referral niche portfolio case study webinar "
    "funnel copy headline offer guarantee discount annual monthly revenue profit goal milestone "
    "week month first thousand dollars stuck question help win celebrate finally closed deal"
)
DOMAIN_WORDS = _DOMAIN_TEXT.split()
VOCABULARY_SIZE = 2000
SKEW = 2.2


CALLGRIND = Callgrind()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def recreate_database(admin_dsn: str, name: str) -> str:
    admin = await asyncpg.connect(f"{admin_dsn}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{admin_dsn}/{name}"


async def drop_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(f"{admin_dsn}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def author_uuid_sql(expr: str) -> str:
    """A deterministic UUID per author number, in SQL."""
    return f"('00000000-0000-4000-8000-' || lpad(({expr})::text, 12, '0'))::uuid"


def liker_uuid_sql(expr: str) -> str:
    return f"('00000000-0000-4000-9000-' || lpad(({expr})::text, 12, '0'))::uuid"


async def seed(dsn: str, posts: int, likes_per_post: int) -> dict[str, float]:
    """Fill posts and likes in the server; return the seconds each step took."""
    domain = "ARRAY[" + ",".join(f"'{w}'" for w in DOMAIN_WORDS) + "]::text[]"
    filler = VOCABULARY_SIZE - len(DOMAIN_WORDS)
    vocabulary = (
        f"{domain} || ARRAY(SELECT translate(substr(md5(i::text), 1, 8),"
        f" '0123456789', 'ghijklmnop') FROM generate_series(1, {filler}) i)"
    )
    # A pseudo-random draw in [0, 1) per (post, word position), skewed toward rank 0.
    draw = "((hashtext(n || ':' || w) & 2147483647) % 1000003) / 1000003.0"
    conn = await asyncpg.connect(dsn)
    timings: dict[str, float] = {}
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        started = time.perf_counter()
        # Each post: one of 2000 authors (authors 1..40 are instructors), 20% for members,
        # 8..40 words, a time within the last year, likes_count as seeded below.
        await conn.execute(
            f"""
            WITH vocabulary AS (SELECT {vocabulary} AS words)
            INSERT INTO posts.posts
                (id, author_id, author_name, author_role, content, visibility, is_pinned,
                 likes_count, created_at, updated_at)
            SELECT
                gen_random_uuid(),
                {author_uuid_sql("a")},
                'Author ' || a,
                CASE WHEN a <= 40 THEN 'instructor' ELSE 'student' END,
                (SELECT string_agg(
                            v.words[1 + floor({VOCABULARY_SIZE} * power({draw}, {SKEW}))::int],
                            ' ')
                   FROM generate_series(1, 8 + n % 33) w),
                CASE WHEN n % 5 = 0 THEN 'members' ELSE 'public' END,
                n % 20000 = 0,
                1 + (n * 31) % (2 * {likes_per_post} - 1),
                t, t
            FROM generate_series(1, $1) n
                 CROSS JOIN vocabulary v,
                 LATERAL (SELECT 1 + (n * 37) % 2000 AS a,
                                 now() - (n::float / $1) * interval '365 days'
                                 - ((n * 13) % 1000) * interval '1 millisecond' AS t) s
            """,
            posts,
        )
        timings["posts"] = time.perf_counter() - started
        started = time.perf_counter()
        # likes_count distinct likers per post: liker numbers (n*7 + g*131) mod 20000 are
        # distinct for g < 20000/gcd(131, 20000); liker 0 is the benchmark's viewer.
        await conn.execute(
            f"""
            INSERT INTO posts.likes (post_id, user_id, created_at)
            SELECT p.id, {liker_uuid_sql("(p.rn * 7 + g * 131) % 20000")}, p.created_at
            FROM (SELECT id, likes_count, created_at,
                         row_number() OVER (ORDER BY id) AS rn
                    FROM posts.posts) p,
                 generate_series(1, p.likes_count) g
            """
        )
        timings["likes"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE posts.posts")
        await conn.execute("VACUUM ANALYZE posts.likes")
        timings["analyze"] = time.perf_counter() - started
    finally:
        await conn.close()
    return timings


async def goals_responder(nc: Any, settings: Settings) -> Any:
    """Answer taglines as the goals service would (students only get asked)."""

    async def answer(msg: Any) -> None:
        user_id = msgspec.json.decode(msg.data)["user_id"]
        await msg.respond(
            msgspec.json.encode(
                {
                    "user_id": user_id,
                    "track": "agency",
                    "goal_slug": "agency-3k",
                    "goal_name": "Agency $3K",
                    "total_revenue_earned": "1200.00",
                    "current_mrr": "0.00",
                }
            )
        )

    return await nc.subscribe(settings.subject("rpc.goals.profile"), cb=answer)


async def measure(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None, requests: int
) -> tuple[list[float], int, int]:
    """Durations (ms), items on the page, instructions per request (under callgrind)."""
    durations: list[float] = []
    items = 0
    for _ in range(min(20, requests)):  # warm-up: plans, caches, pool
        await client.get(url, headers=headers)
    with CALLGRIND.count() as counted:
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.get(url, headers=headers)
            durations.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text}")
            items = len(response.json().get("items", []))
    return durations, items, counted[0] // requests


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--likes-per-post", type=int, default=10)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    args = parser.parse_args()

    admin_dsn = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL).rsplit("/", 1)[0]
    db_name = "community_bench_posts"
    run = uuid.uuid4().hex[:8]
    dsn = await recreate_database(admin_dsn, db_name)
    settings = Settings.from_env(
        "posts",
        8001,
        database_url=dsn,
        nats_subject_prefix=f"bench{run}.",
        redis_key_prefix=f"bench{run}:",
        log_level="WARNING",
    )
    app = create_app(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    nc = await nats.connect(settings.nats_url)
    try:
        async with app.lifespan():  # migrates the fresh database
            print(f"seeding {args.posts} posts, ~{args.posts * args.likes_per_post} likes ...")
            timings = await seed(dsn, args.posts, args.likes_per_post)
            conn = await asyncpg.connect(dsn)
            try:
                counts = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM posts.posts) AS posts,"
                    " (SELECT count(*) FROM posts.likes) AS likes"
                )
                middle = await conn.fetchrow(
                    """SELECT is_pinned, created_at, id FROM posts.posts
                       WHERE deleted_at IS NULL
                       ORDER BY is_pinned DESC, created_at DESC, id DESC
                       OFFSET $1 LIMIT 1""",
                    args.posts // 2,
                )
                size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size($1))", db_name)
                # Search words by how many live posts contain them.
                frequencies = await conn.fetch(
                    """SELECT word, ndoc FROM ts_stat(
                           'SELECT search FROM posts.posts WHERE deleted_at IS NULL')
                       ORDER BY ndoc DESC"""
                )
                sample = await conn.fetchval(
                    "SELECT content FROM posts.posts ORDER BY created_at DESC OFFSET $1 LIMIT 1",
                    args.posts // 3,
                )
            finally:
                await conn.close()
            print(
                f"seeded {counts['posts']} posts and {counts['likes']} likes ({size}) in"
                f" {timings['posts']:.1f} s + {timings['likes']:.1f} s"
                f" (+ {timings['analyze']:.1f} s analyze)"
            )
            await goals_responder(nc, settings)
            await nc.flush()
            deep = encode_cursor([middle["is_pinned"], middle["created_at"], middle["id"]])
            viewer = issue_token(
                sub="00000000-0000-4000-9000-000000000000",
                role="student",
                name="Viewer",
                secret=settings.jwt_secret,
            )
            author = issue_token(
                sub="00000000-0000-4000-8000-000000000077",
                role="student",
                name="Author 77",
                secret=settings.jwt_secret,
            )
            member = {"Authorization": f"Bearer {viewer}"}
            total = counts["posts"]

            def word_in(share: float) -> tuple[str, int]:
                row = min(frequencies, key=lambda r: abs(r["ndoc"] - share * total))
                return row["word"], row["ndoc"]

            common, common_n = frequencies[0]["word"], frequencies[0]["ndoc"]
            second = frequencies[1]["word"]
            middling, middling_n = word_in(0.01)
            rare, rare_n = word_in(0.0005)
            phrase = " ".join(sample.split()[:2])
            cases: list[tuple[str, str, dict[str, str] | None]] = [
                ("first page (member)", "/posts", member),
                ("first page (guest)", "/posts", None),
                ("deep cursor page (member)", f"/posts?cursor={deep}", member),
                (f"q={common} (in {common_n} posts)", f"/posts?q={common}", member),
                (f"q={middling} (in {middling_n} posts)", f"/posts?q={middling}", member),
                (f"q={rare} (in {rare_n} posts)", f"/posts?q={rare}", member),
                (f"q={common} {second} (both)", f"/posts?q={common}%20{second}", member),
                (f'q="{phrase}" (phrase)', f'/posts?q="{phrase}"', None),
                ("filter=instructors", "/posts?filter=instructors", member),
                ("filter=mine", "/posts?filter=mine", {"Authorization": f"Bearer {author}"}),
                ("floor: GET /health (no database)", "/health", None),
            ]
            transport = httpx.ASGITransport(app=cast(Any, app))  # ASGI typing differs
            results: list[tuple[str, float, float, float, int, int]] = []
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for label, url, headers in cases:
                    durations, items, instructions = await measure(
                        client, url, headers, args.requests
                    )
                    results.append(
                        (
                            label,
                            percentile(durations, 50),
                            percentile(durations, 99),
                            statistics.fmean(durations),
                            items,
                            instructions,
                        )
                    )
    finally:
        await nc.close()
        if not args.keep:
            await drop_database(admin_dsn, db_name)

    print()
    print(f"command: uv run python bench/{os.path.basename(__file__)} {' '.join(sys.argv[1:])}")
    print(f"{args.requests} sequential requests per row, in-process ASGI, times in ms")
    if CALLGRIND.active:  # under callgrind the times are its, not the machine's
        print("| request | instructions per request (this process) | items |")
        print("|---|---|---|")
        for label, *_, items, instructions in results:
            print(f"| {label} | {instructions:,} | {items} |")
        return
    print(f"| {'request':<44} | {'p50':>6} | {'p99':>6} | {'mean':>6} | items |")
    print(f"|{'-' * 46}|{'-' * 8}|{'-' * 8}|{'-' * 8}|-------|")
    for label, p50, p99, mean, items, _ in results:
        print(f"| {label:<44} | {p50:6.2f} | {p99:6.2f} | {mean:6.2f} | {items:5d} |")


if __name__ == "__main__":
    asyncio.run(main())
