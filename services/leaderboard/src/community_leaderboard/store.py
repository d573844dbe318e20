"""SQL of the leaderboard schema, and nothing but SQL.

Batch statements take arrays (`unnest`) so an ingest transaction costs a
constant number of round trips however many events it applies. Tables are
schema-qualified: service connections do not set a search path. The
statements generated from the row structs' fields (students, day rows,
profiles) are written out in `rowsql`; the rest are here.

Longer than most modules (about 650 lines) on purpose: every statement the
service runs, with the index it relies on, is found in this one file (and
`rowsql`), grouped by table.
"""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import msgspec

from community_leaderboard import rowsql
from community_leaderboard.rows import (
    ActivityRow,
    DayKey,
    DayState,
    ItemKey,
    ItemState,
    PrivacyRow,
    Profile,
    StudentState,
)
from community_leaderboard.rows import WindowFigures as WindowFigures

SCHEMA = rowsql.SCHEMA
S = SCHEMA

# Ingest, privacy changes and the roll-over hold this lock shared; a rebuild or a
# full board resync holds it exclusively, so they see (and leave) a quiet schema.
INGEST_LOCK = "leaderboard:ingest"
ROLLOVER_LOCK = "leaderboard:rollover"
"""Held (session-level) by the instance rolling the windows over to a new day."""
ROLLED_DAY = "rolled_day"
"""The `meta` key of the last day the windows were rolled over to."""


uuid_order = operator.attrgetter("int")
"""Sort key giving Postgres's uuid order, cheaper than comparing UUID objects."""


# With them, the transaction plans with `random_page_cost` 1.1 (the default 4
# models spinning disks; the leaderboard's tables are cached): with 4, the
# planner read all the students in sequence to find the 1,500 of a batch
# (`user_id = ANY($1)`), a third of the time of the profile and student reads.
# Set per transaction, not per connection: the posts service's searches plan
# better with the default.
_PLANNING = "set_config('random_page_cost', '1.1', true)"


async def lock_ingest_shared(conn: asyncpg.Connection) -> None:
    await conn.execute(
        f"SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0)), {_PLANNING}", INGEST_LOCK
    )


async def lock_ingest_exclusive(conn: asyncpg.Connection) -> None:
    await conn.execute(
        f"SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), {_PLANNING}", INGEST_LOCK
    )


async def try_lock(conn: asyncpg.Connection, name: str) -> bool:
    """Take the session-level advisory lock `name` if nobody holds it (held until
    `unlock` or the connection ends)."""
    held: bool = await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name)
    return held


async def unlock(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", name)


# --------------------------------------------------------------------------- idempotency


async def record_applied(conn: asyncpg.Connection, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Record event ids; return those not applied before (the ones to apply now)."""
    rows = await conn.fetch(
        f"INSERT INTO {S}.applied_events (id) SELECT DISTINCT unnest($1::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING id",
        list(ids),
    )
    return {r["id"] for r in rows}


async def prune_applied(conn: asyncpg.Connection, older_than_days: int) -> int:
    result: str = await conn.execute(
        f"DELETE FROM {S}.applied_events WHERE applied_at < now() - make_interval(days => $1)",
        older_than_days,
    )
    return int(result.split()[-1])


# --------------------------------------------------------------------------- students

_students_decoder = msgspec.json.Decoder(list[StudentState])
_days_decoder = msgspec.json.Decoder(list[DayState])


class StaleStudents(Exception):
    """A student's row changed between reading and writing it back (the batch
    is applied again, from fresh rows)."""


async def read_students(
    conn: asyncpg.Connection, user_ids: Iterable[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, StudentState]:
    """Every student's row (creating missing ones), each with the version it was
    read at.

    The ingest reads without locking: `write_students` writes a row back only
    at the version it was read at, and all the changes a batch makes to a
    student (their days and counted items included) go with a write of the
    student's row, so a batch that raced another on one student is applied
    again. `lock` takes the rows' locks instead, in id order so that
    concurrent callers never deadlock."""
    ids = sorted(set(user_ids), key=uuid_order)
    if not ids:
        return {}
    select = rowsql.READ_STUDENTS_LOCKED if lock else rowsql.READ_STUDENTS
    found = {st.user_id: st for st in _students_decoder.decode(await conn.fetchval(select, ids))}
    missing = [i for i in ids if i not in found]
    if missing:
        # A row another transaction created meanwhile is skipped here and read
        # by the second SELECT.
        created = await conn.fetchval(rowsql.CREATE_STUDENTS, missing)
        found.update((st.user_id, st) for st in _students_decoder.decode(created))
        raced = [i for i in missing if i not in found]
        if raced:
            again = await conn.fetchval(select, raced)
            found.update((st.user_id, st) for st in _students_decoder.decode(again))
    return found


async def lock_students(
    conn: asyncpg.Connection, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, StudentState]:
    """`read_students`, holding the rows' locks to the end of the transaction."""
    return await read_students(conn, user_ids, lock=True)


async def write_students(conn: asyncpg.Connection, students: Sequence[StudentState]) -> None:
    """Write the students back; `StaleStudents` if a row changed since it was read."""
    if not students:
        return
    status: str = await conn.execute(rowsql.WRITE_STUDENTS, msgspec.json.encode(students).decode())
    written = int(status.split()[-1])
    if written != len(students):
        raise StaleStudents(f"{len(students) - written} rows changed meanwhile")


async def ensure_student(conn: asyncpg.Connection, user_id: uuid.UUID) -> StudentState:
    return (await lock_students(conn, [user_id]))[user_id]


async def set_streaks(
    conn: asyncpg.Connection, streaks: dict[uuid.UUID, tuple[dt.date, dt.date] | None]
) -> None:
    if not streaks:
        return
    ids = list(streaks)
    await conn.execute(
        f"""UPDATE {S}.students s SET streak_start = u.s, streak_end = u.e
            FROM unnest($1::uuid[], $2::date[], $3::date[]) AS u(user_id, s, e)
            WHERE s.user_id = u.user_id""",
        ids,
        [streaks[i][0] if streaks[i] else None for i in ids],  # type: ignore[index]
        [streaks[i][1] if streaks[i] else None for i in ids],  # type: ignore[index]
    )


async def latest_runs(
    conn: asyncpg.Connection, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[dt.date, dt.date] | None]:
    """Each student's latest run of consecutive active days (gaps and islands)."""
    rows = await conn.fetch(
        f"""SELECT DISTINCT ON (user_id) user_id, min(day) AS first, max(day) AS last
            FROM (SELECT user_id, day,
                         day - (row_number() OVER (PARTITION BY user_id ORDER BY day))::int AS grp
                  FROM {S}.daily_stats WHERE user_id = ANY($1::uuid[]) AND active) runs
            GROUP BY user_id, grp
            ORDER BY user_id, max(day) DESC""",
        list(user_ids),
    )
    found: dict[uuid.UUID, tuple[dt.date, dt.date] | None] = dict.fromkeys(user_ids)
    for r in rows:
        found[r["user_id"]] = (r["first"], r["last"])
    return found


# --------------------------------------------------------------------------- days and items


async def fetch_days(conn: asyncpg.Connection, keys: Iterable[DayKey]) -> dict[DayKey, DayState]:
    keys = list(keys)
    if not keys:
        return {}
    document = await conn.fetchval(
        rowsql.READ_DAYS,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(d.user_id, d.day): d for d in _days_decoder.decode(document)}


async def write_days(conn: asyncpg.Connection, days: Sequence[DayState]) -> None:
    if not days:
        return
    days = sorted(days, key=lambda d: (d.user_id.int, d.day))
    await conn.execute(rowsql.WRITE_DAYS, msgspec.json.encode(days).decode())


async def fetch_items(
    conn: asyncpg.Connection, keys: Iterable[ItemKey]
) -> dict[ItemKey, ItemState]:
    keys = list(keys)
    if not keys:
        return {}
    rows = await conn.fetch(
        f"""SELECT c.kind, c.item_id, c.user_id, c.day
            FROM unnest($1::text[], $2::text[]) AS k(kind, item_id)
            JOIN {S}.counted_items c ON c.kind = k.kind AND c.item_id = k.item_id""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["kind"], r["item_id"]): ItemState(user_id=r["user_id"], day=r["day"]) for r in rows}


async def item_owner(conn: asyncpg.Connection, key: ItemKey) -> uuid.UUID | None:
    owner: uuid.UUID | None = await conn.fetchval(
        f"SELECT user_id FROM {S}.counted_items WHERE kind = $1 AND item_id = $2", *key
    )
    return owner


async def write_items(
    conn: asyncpg.Connection, added: dict[ItemKey, ItemState], removed: set[ItemKey]
) -> None:
    if removed:
        gone = sorted(removed)
        await conn.execute(
            f"""DELETE FROM {S}.counted_items c
                USING unnest($1::text[], $2::text[]) AS k(kind, item_id)
                WHERE c.kind = k.kind AND c.item_id = k.item_id""",
            [k[0] for k in gone],
            [k[1] for k in gone],
        )
    if added:
        keys = sorted(added)
        await conn.execute(
            f"""INSERT INTO {S}.counted_items (kind, item_id, user_id, day)
                SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::date[])
                ON CONFLICT (kind, item_id) DO UPDATE SET user_id = EXCLUDED.user_id,
                                                          day = EXCLUDED.day""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [added[k].user_id for k in keys],
            [added[k].day for k in keys],
        )


# --------------------------------------------------------------------------- profiles


_profiles_decoder = msgspec.json.Decoder(list[Profile])
_profile_decoder = msgspec.json.Decoder(Profile)


async def load_profiles(
    conn: asyncpg.Connection, user_ids: Iterable[uuid.UUID], today: dt.date
) -> dict[uuid.UUID, Profile]:
    ids = list(set(user_ids))
    if not ids:
        return {}
    document = await conn.fetchval(
        rowsql.PROFILES_BY_ID,
        ids,
        today - dt.timedelta(days=29),
        today - dt.timedelta(days=6),
    )
    return {p.user_id: p for p in _profiles_decoder.decode(document)}


async def iter_rankable_profiles(
    conn: asyncpg.Connection, today: dt.date, *, chunk: int = 5000
) -> AsyncIterator[list[Profile]]:
    """Every student who may be ranked (any visibility), in chunks; needs a transaction."""
    cursor = conn.cursor(
        rowsql.ALL_RANKABLE_PROFILES,
        None,
        today - dt.timedelta(days=29),
        today - dt.timedelta(days=6),
        prefetch=chunk,
    )
    batch: list[Profile] = []
    async for r in cursor:
        batch.append(_profile_decoder.decode(r[0]))
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch


async def users_with_days(conn: asyncpg.Connection, days: Sequence[dt.date]) -> list[uuid.UUID]:
    rows = await conn.fetch(
        f"SELECT DISTINCT user_id FROM {S}.daily_stats WHERE day = ANY($1::date[])", list(days)
    )
    return [r["user_id"] for r in rows]


async def holders_with_broken_streak(
    conn: asyncpg.Connection, badge: str, before: dt.date
) -> list[uuid.UUID]:
    rows = await conn.fetch(
        f"""SELECT b.user_id FROM {S}.badges b JOIN {S}.students s ON s.user_id = b.user_id
            WHERE b.badge = $1 AND (s.streak_end IS NULL OR s.streak_end < $2)""",
        badge,
        before,
    )
    return [r["user_id"] for r in rows]


async def board_by_name(
    conn: asyncpg.Connection,
    *,
    since: dt.date | None,
    track: str | None,
    limit: int,
    offset: int,
) -> list[uuid.UUID]:
    """A board's members ordered by name (the same membership as the Redis board)."""
    rows = await conn.fetch(
        f"""SELECT s.user_id FROM {S}.students s
            WHERE s.role = 'student' AND s.first_event_day IS NOT NULL
              AND ($1::date IS NULL OR s.last_event_day >= $1)
              AND ($2::text IS NULL OR s.track = $2)
              AND NOT EXISTS (SELECT 1 FROM {S}.privacy p
                              WHERE p.user_id = s.user_id AND NOT p.show_on_leaderboard)
            ORDER BY lower(coalesce(s.name, 'Student')), s.user_id
            LIMIT $3 OFFSET $4""",
        since,
        track,
        limit,
        offset,
    )
    return [r["user_id"] for r in rows]


# --------------------------------------------------------------------------- badges


async def badges_of(
    conn: asyncpg.Connection, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, set[str]]:
    ids = list(set(user_ids))
    found: dict[uuid.UUID, set[str]] = {i: set() for i in ids}
    if not ids:
        return found
    rows = await conn.fetch(
        f"SELECT user_id, badge FROM {S}.badges WHERE user_id = ANY($1::uuid[])", ids
    )
    for r in rows:
        found[r["user_id"]].add(r["badge"])
    return found


async def top_earners(conn: asyncpg.Connection, track: str, limit: int) -> list[uuid.UUID]:
    """The visible students of `track` with the most earned (first to reach it first)."""
    rows = await conn.fetch(
        f"""SELECT s.user_id FROM {S}.students s
            WHERE s.track = $1 AND s.role = 'student' AND s.earned > 0
              AND NOT EXISTS (SELECT 1 FROM {S}.privacy p
                              WHERE p.user_id = s.user_id AND NOT p.show_on_leaderboard)
            ORDER BY s.earned DESC, s.earned_at NULLS LAST, s.user_id
            LIMIT $2""",
        track,
        limit,
    )
    return [r["user_id"] for r in rows]


async def badge_holders(conn: asyncpg.Connection, badge: str) -> set[uuid.UUID]:
    rows = await conn.fetch(f"SELECT user_id FROM {S}.badges WHERE badge = $1", badge)
    return {r["user_id"] for r in rows}


async def clear_badges(conn: asyncpg.Connection) -> None:
    """Every badge gone (the rebuild decides them all again)."""
    await conn.execute(f"DELETE FROM {S}.badges")


async def award_badges(
    conn: asyncpg.Connection, awards: Sequence[tuple[uuid.UUID, str]], at: dt.datetime
) -> list[tuple[uuid.UUID, str]]:
    """Insert badges; return those that were new (a concurrent batch may have won)."""
    if not awards:
        return []
    rows = await conn.fetch(
        f"""INSERT INTO {S}.badges (user_id, badge, awarded_at)
            SELECT u, b, $3 FROM unnest($1::uuid[], $2::text[]) AS x(u, b)
            ON CONFLICT DO NOTHING RETURNING user_id, badge""",
        [a[0] for a in awards],
        [a[1] for a in awards],
        at,
    )
    return [(r["user_id"], r["badge"]) for r in rows]


async def revoke_badges(
    conn: asyncpg.Connection, revokes: Sequence[tuple[uuid.UUID, str]]
) -> list[tuple[uuid.UUID, str]]:
    """Delete badges; return those that were there."""
    if not revokes:
        return []
    rows = await conn.fetch(
        f"""DELETE FROM {S}.badges b USING unnest($1::uuid[], $2::text[]) AS x(u, g)
            WHERE b.user_id = x.u AND b.badge = x.g RETURNING b.user_id, b.badge""",
        [r[0] for r in revokes],
        [r[1] for r in revokes],
    )
    return [(r["user_id"], r["badge"]) for r in rows]


# --------------------------------------------------------------------------- privacy


async def name_if_unnamed(conn: asyncpg.Connection, user_id: uuid.UUID, name: str) -> None:
    """A student no event has named yet shows under the name of their token."""
    await conn.execute(
        f"UPDATE {S}.students SET name = $2 WHERE user_id = $1 AND name IS NULL", user_id, name
    )


async def names_from_tokens(conn: asyncpg.Connection) -> None:
    """After a rebuild: token names for the students no event names."""
    await conn.execute(
        f"""UPDATE {S}.students s SET name = p.token_name FROM {S}.privacy p
            WHERE s.user_id = p.user_id AND s.name IS NULL AND p.token_name IS NOT NULL"""
    )


async def get_privacy(conn: asyncpg.Connection, user_id: uuid.UUID) -> PrivacyRow:
    row = await conn.fetchrow(
        f"SELECT show_on_leaderboard, show_earnings FROM {S}.privacy WHERE user_id = $1", user_id
    )
    if row is None:
        return PrivacyRow(True, True)
    return PrivacyRow(row["show_on_leaderboard"], row["show_earnings"])


async def put_privacy(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    *,
    show_on_leaderboard: bool,
    show_earnings: bool,
    token_name: str | None,
) -> None:
    await conn.execute(
        f"""INSERT INTO {S}.privacy (user_id, show_on_leaderboard, show_earnings, token_name)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (user_id) DO UPDATE SET show_on_leaderboard = EXCLUDED.show_on_leaderboard,
                show_earnings = EXCLUDED.show_earnings,
                token_name = coalesce(EXCLUDED.token_name, {S}.privacy.token_name),
                updated_at = now()""",
        user_id,
        show_on_leaderboard,
        show_earnings,
        token_name,
    )


async def visibility_of(
    conn: asyncpg.Connection, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, PrivacyRow]:
    ids = list(set(user_ids))
    found = {i: PrivacyRow(True, True) for i in ids}
    if ids:
        rows = await conn.fetch(
            f"SELECT user_id, show_on_leaderboard, show_earnings FROM {S}.privacy"
            " WHERE user_id = ANY($1::uuid[])",
            ids,
        )
        for r in rows:
            found[r["user_id"]] = PrivacyRow(r["show_on_leaderboard"], r["show_earnings"])
    return found


# --------------------------------------------------------------------------- activity


async def insert_activities(
    conn: asyncpg.Connection, rows: Sequence[ActivityRow]
) -> list[uuid.UUID]:
    """Insert new activity items; return the ids that were new."""
    if not rows:
        return []
    inserted = await conn.fetch(
        f"""INSERT INTO {S}.activity
                (id, kind, user_id, occurred_at, subject_id, amount, detail, ref)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[],
                                 $5::text[], $6::numeric[], $7::text[], $8::jsonb[])
            ON CONFLICT (id) DO NOTHING RETURNING id""",
        [r.id for r in rows],
        [r.kind for r in rows],
        [r.user_id for r in rows],
        [r.occurred_at for r in rows],
        [r.subject_id for r in rows],
        [r.amount for r in rows],
        [r.detail for r in rows],
        [msgspec.json.encode(r.ref).decode() for r in rows],
    )
    return [r["id"] for r in inserted]


async def delete_post_activity(conn: asyncpg.Connection, post_ids: Iterable[str]) -> None:
    ids = list(post_ids)
    if ids:
        await conn.execute(
            f"DELETE FROM {S}.activity"
            " WHERE subject_id = ANY($1::text[]) AND kind = 'post.created'",
            ids,
        )


@dataclass(frozen=True)
class ActivityView:
    id: uuid.UUID
    kind: str
    user_id: uuid.UUID
    name: str | None
    occurred_at: dt.datetime
    amount: Decimal | None
    detail: str | None
    ref: dict[str, str]
    show_earnings: bool


async def recent_activity(
    conn: asyncpg.Connection, *, limit: int, before: tuple[dt.datetime, uuid.UUID] | None
) -> list[ActivityView]:
    """Newest first; items of opted-out students and of non-students are left out."""
    rows = await conn.fetch(
        f"""SELECT a.id, a.kind, a.user_id, s.name, a.occurred_at,
                   a.amount, a.detail, a.ref, coalesce(p.show_earnings, true) AS show_earnings
            FROM {S}.activity a
            JOIN {S}.students s ON s.user_id = a.user_id
            LEFT JOIN {S}.privacy p ON p.user_id = a.user_id
            WHERE s.role = 'student' AND coalesce(p.show_on_leaderboard, true)
              AND ($2::timestamptz IS NULL OR (a.occurred_at, a.id) < ($2, $3::uuid))
            ORDER BY a.occurred_at DESC, a.id DESC
            LIMIT $1""",
        limit,
        before[0] if before else None,
        before[1] if before else None,
    )
    return [
        ActivityView(
            id=r["id"],
            kind=r["kind"],
            user_id=r["user_id"],
            name=r["name"],
            occurred_at=r["occurred_at"],
            amount=r["amount"],
            detail=r["detail"],
            ref=msgspec.json.decode(r["ref"]) if isinstance(r["ref"], str | bytes) else r["ref"],
            show_earnings=r["show_earnings"],
        )
        for r in rows
    ]


# --------------------------------------------------------------------------- stats


@dataclass(frozen=True)
class CommunityFigures:
    total_students: int
    active_this_week: int
    total_earnings: Decimal
    average_learn_rate: float | None
    agency: int
    saas: int


async def community_figures(conn: asyncpg.Connection, week_start: dt.date) -> CommunityFigures:
    """Totals over every student (opted-out ones included; staff never)."""
    r = await conn.fetchrow(
        f"""SELECT count(*) AS total,
                   count(*) FILTER (WHERE last_active_day >= $1) AS active,
                   coalesce(sum(earned), 0) AS earnings,
                   avg(60.0 * watched_seconds / session_seconds)
                       FILTER (WHERE session_seconds > 0) AS learn_rate,
                   count(*) FILTER (WHERE track = 'agency') AS agency,
                   count(*) FILTER (WHERE track = 'saas') AS saas
            FROM {S}.students
            WHERE role = 'student' AND first_event_day IS NOT NULL""",
        week_start,
    )
    assert r is not None
    return CommunityFigures(
        total_students=r["total"],
        active_this_week=r["active"],
        total_earnings=r["earnings"],
        average_learn_rate=float(r["learn_rate"]) if r["learn_rate"] is not None else None,
        agency=r["agency"],
        saas=r["saas"],
    )


# --------------------------------------------------------------------------- meta


async def get_meta(conn: asyncpg.Connection, key: str) -> str | None:
    value: str | None = await conn.fetchval(f"SELECT value FROM {S}.meta WHERE key = $1", key)
    return value


async def set_meta(conn: asyncpg.Connection, key: str, value: str) -> None:
    await conn.execute(
        f"""INSERT INTO {S}.meta (key, value) VALUES ($1, $2)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
        key,
        value,
    )


async def reset_derived(conn: asyncpg.Connection) -> None:
    """Empty everything derived from events (privacy and badge history stay)."""
    await conn.execute(
        f"""TRUNCATE {S}.students, {S}.daily_stats, {S}.counted_items, {S}.applied_events,
                     {S}.badges;
            DELETE FROM {S}.activity WHERE kind <> 'badge.awarded';"""
    )
