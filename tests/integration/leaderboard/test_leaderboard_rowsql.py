"""The generated statements (`rowsql`) against the migrated tables: each
prepares, the row arrays carry every column of their table with its type,
and a student and a day row come back as they were written."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from community_leaderboard import rowsql, store
from community_leaderboard.counters import COUNTER_NAMES, Counters
from community_leaderboard.rows import DayState, StudentState

SQL_TYPES = {
    "integer": "int",
    "bigint": "bigint",
    "numeric": "numeric",
    "text": "text",
    "date": "date",
    "timestamp with time zone": "timestamptz",
    "boolean": "boolean",
    "uuid": "uuid",
}


async def test_every_generated_statement_prepares(
    leaderboard_client: Any, db: asyncpg.Pool
) -> None:
    async with db.acquire() as conn, conn.transaction():
        for name, statement in rowsql.STATEMENTS.items():
            try:
                await conn.prepare(statement)
            except asyncpg.PostgresError as exc:
                raise AssertionError(f"{name} does not prepare: {exc}") from exc


async def columns(db: asyncpg.Pool, table: str) -> dict[str, str]:
    rows = await db.fetch(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = $1 AND table_name = $2 AND is_generated = 'NEVER'""",
        rowsql.SCHEMA,
        table,
    )
    return {r["column_name"]: SQL_TYPES[r["data_type"]] for r in rows}


async def test_the_row_arrays_carry_every_column_with_its_type(
    leaderboard_client: Any, db: asyncpg.Pool
) -> None:
    for table, fields in (
        ("students", rowsql.STUDENT_FIELDS),
        ("daily_stats", rowsql.DAY_FIELDS),
    ):
        carried = {
            column: expression.rsplit("::", 1)[1]
            for column, expression in rowsql.row_values(fields, "j").items()
            if column != "version"
        }
        assert carried == await columns(db, table), table


async def test_a_student_and_a_day_row_come_back_as_written(
    leaderboard_client: Any, db: asyncpg.Pool
) -> None:
    user_id = uuid.uuid4()
    day = dt.date(2026, 11, 20)
    at = dt.datetime(2026, 11, 20, 12, 30, tzinfo=dt.UTC)
    counters = Counters(**{c: 10 + i for i, c in enumerate(COUNTER_NAMES)})
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            created = (await store.read_students(conn, [user_id]))[user_id]
            student = StudentState(
                user_id=user_id,
                name="Ada",
                name_at=at,
                role="student",
                track="saas",
                goal_slug="first-1k",
                goal_name="First 1k",
                total_revenue=Decimal("1234.56"),
                current_mrr=Decimal("78.90"),
                earned_at=at,
                counters=counters,
                days_active=3,
                first_event_day=day - dt.timedelta(days=5),
                last_event_day=day,
                last_active_day=day - dt.timedelta(days=1),
                streak_start=day - dt.timedelta(days=2),
                streak_end=day - dt.timedelta(days=1),
                reached_at=at,
                version=created.version,
            )
            await store.write_students(conn, [student])
            again = (await store.read_students(conn, [user_id]))[user_id]
            assert again == StudentState(**{**_fields(student), "version": again.version})

            row = DayState(
                user_id=user_id,
                day=day,
                counters=Counters(**{c: 100 + i for i, c in enumerate(COUNTER_NAMES)}),
                revenue_delta=Decimal("12.34"),
                mrr_delta=Decimal("-5.00"),
                active=True,
            )
            await store.write_days(conn, [row])
            assert await store.fetch_days(conn, [(user_id, day)]) == {(user_id, day): row}
            profile = (await store.load_profiles(conn, [user_id], day))[user_id]
            assert profile.windows["all"].tally.posts == counters.posts
            assert profile.windows["7d"].tally.session_seconds == row.counters.session_seconds
        finally:
            await tx.rollback()


def _fields(s: StudentState) -> dict[str, Any]:
    return {f: getattr(s, f) for f in StudentState.__struct_fields__}
