"""The migrations runner against a real Postgres."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
from community_shared.migrations import MigrationError, load_migrations, migrate


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


@pytest.fixture
def schema() -> str:
    return f"mig_{uuid.uuid4().hex[:12]}"


async def test_running_twice_is_a_no_op(db: asyncpg.Pool, tmp_path: Path, schema: str) -> None:
    _write(tmp_path, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    _write(tmp_path, "0002_more.sql", "ALTER TABLE things ADD COLUMN name text;")
    migrations = load_migrations(tmp_path)
    async with db.acquire() as conn:
        assert await migrate(conn, schema, migrations) == ["0001_things.sql", "0002_more.sql"]
        assert await migrate(conn, schema, migrations) == []
        count = await conn.fetchval(f"SELECT count(*) FROM {schema}.schema_migrations")
    assert count == 2


async def test_two_runners_at_once_apply_each_file_once(
    database_url: str, tmp_path: Path, schema: str
) -> None:
    # A non-idempotent migration: applying it twice would fail.
    _write(
        tmp_path,
        "0001_counter.sql",
        "CREATE TABLE counter (n int); INSERT INTO counter VALUES (1);",
    )
    migrations = load_migrations(tmp_path)

    async def run() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return await migrate(conn, schema, migrations)
        finally:
            await conn.close()

    results = await asyncio.gather(*(run() for _ in range(5)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.counter") == 1
    finally:
        await conn.close()


async def test_an_edited_applied_file_is_refused(
    db: asyncpg.Pool, tmp_path: Path, schema: str
) -> None:
    _write(tmp_path, "0001_things.sql", "CREATE TABLE things (id int);")
    async with db.acquire() as conn:
        await migrate(conn, schema, load_migrations(tmp_path))
        _write(tmp_path, "0001_things.sql", "CREATE TABLE things (id bigint);")
        _write(tmp_path, "0002_other.sql", "CREATE TABLE other (id int);")
        with pytest.raises(MigrationError, match="edited"):
            await migrate(conn, schema, load_migrations(tmp_path))
        # Nothing of the run was applied.
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.other") is None


async def test_a_failing_file_applies_nothing(
    db: asyncpg.Pool, tmp_path: Path, schema: str
) -> None:
    _write(tmp_path, "0001_ok.sql", "CREATE TABLE ok (id int);")
    _write(tmp_path, "0002_broken.sql", "CREATE TABLE broken (id nonsense_type);")
    async with db.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError):
            await migrate(conn, schema, load_migrations(tmp_path))
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.ok") is None


def test_bad_file_names_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "1_oops.sql", "SELECT 1;")
    with pytest.raises(MigrationError):
        load_migrations(tmp_path)
