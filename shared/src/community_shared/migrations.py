"""The one migrations runner.

Each service keeps plain SQL files `NNNN_<what>.sql` in its `migrations/`
folder. `migrate` applies, in order and in one transaction, every file not yet
recorded in `<schema>.schema_migrations`, under a Postgres advisory lock so two
processes starting at once apply each file exactly once. Files run with
`search_path` set to the service schema, so they use unqualified names. A file
already applied whose checksum has changed is refused (`MigrationError`): a
released migration is never edited, a new one is added.

The shared migrations of this package (`0000_outbox.sql`,
`0001_idempotency_keys.sql`) are applied to every schema first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(Exception):
    """Migrations cannot be applied safely (edited file, bad name, gap)."""


@dataclass(frozen=True)
class Migration:
    version: str  # e.g. "shared:0000" or "0001"
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path, *, namespace: str = "") -> list[Migration]:
    """Read `NNNN_<what>.sql` files of `directory`, sorted by number."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"bad migration file name: {path.name}")
        version = f"{namespace}{match.group(1)}"
        found.append(Migration(version=version, name=path.name, sql=path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


def migrations_for(service_dir: Path) -> list[Migration]:
    """The shared migrations (outbox, idempotency keys) followed by the service's own files."""
    return load_migrations(SHARED_MIGRATIONS, namespace="shared:") + load_migrations(service_dir)


async def migrate(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply pending migrations into `schema`; return the names applied now."""
    if not _SCHEMA.match(schema):
        raise MigrationError(f"bad schema name: {schema!r}")
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrations:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                    version    text PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )"""
        )
        rows = await conn.fetch(f"SELECT version, name, checksum FROM {schema}.schema_migrations")
        done = {r["version"]: r for r in rows}
        await conn.execute(f"SET LOCAL search_path TO {schema}, public")
        for migration in migrations:
            previous = done.get(migration.version)
            if previous is not None:
                if previous["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{schema}: applied migration {previous['name']} has been edited"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (version, name, checksum)"
                " VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.name)
    return applied_now


async def pending(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> list[str]:
    """Names of migrations not yet applied (empty when the schema is current)."""
    exists = await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f"{schema}.schema_migrations"
    )
    if not exists:
        return [m.name for m in migrations]
    versions = {
        r["version"] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")
    }
    return [m.name for m in migrations if m.version not in versions]


async def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` if it does not exist (local runner, tests)."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        base, _, dbname = dsn.rpartition("/")
        dbname = dbname.split("?")[0]
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{dbname}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()
    else:
        await conn.close()
