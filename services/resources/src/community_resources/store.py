"""SQL of the resources schema, and nothing but SQL.

Every function takes a connection (the caller owns the transaction); names
are qualified with the `resources` schema (the pool's search_path is not
set). Queries
that read resources for display select `RESOURCE_COLUMNS`, which leaves out
`file_url`: the file's address only ever leaves through `count_download` /
`download_target`. Counters are changed only by relative updates under the
resource's row lock. Downloads and ratings lock the resource row first, then
an interaction row, then today's download bucket; the window expiry locks only
buckets of past days (which no download touches) and then resource rows. So
none of them can deadlock another.

Longer than most modules (~570 lines) on purpose: every statement of the
schema is here, in one place, with the lock order above; splitting it would
spread that order over several files.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg

SCHEMA: Final = "resources"

RESOURCE_COLUMNS: Final = """
    r.id, r.title, r.description, r.type, r.category, r.access, r.file_size, r.format,
    r.mime_type, r.difficulty, r.tags, r.source_type, r.source_id, r.is_featured,
    r.created_by, r.created_at, r.published_at, r.download_count, r.recent_downloads,
    r.rating_sum, r.rating_count, r.rating_avg
"""

# Columns a PATCH may set: the only names ever interpolated into SQL.
UPDATABLE_COLUMNS: Final = frozenset(
    {
        "title",
        "type",
        "category",
        "file_url",
        "description",
        "access",
        "file_size",
        "format",
        "mime_type",
        "difficulty",
        "tags",
        "source_type",
        "source_id",
        "is_featured",
    }
)

LIVE: Final = "r.deleted_at IS NULL AND r.published_at IS NOT NULL"


# --------------------------------------------------------------------------- resources


async def insert_resource(
    conn: asyncpg.Connection,
    *,
    resource_id: uuid.UUID,
    created_by: uuid.UUID,
    values: dict[str, Any],
) -> asyncpg.Record:
    """A new resource from the fields of its `CreateResource` (`values`), published
    now if `values["publish"]`."""
    row: asyncpg.Record = await conn.fetchrow(
        f"""
        INSERT INTO resources.resources AS r (
            id, title, description, type, category, access, file_url, file_size, format,
            mime_type, difficulty, tags, source_type, source_id, is_featured, created_by,
            published_at
        ) VALUES (
            $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
            CASE WHEN $17 THEN now() END
        )
        RETURNING {RESOURCE_COLUMNS}, NULL::smallint AS my_rating
        """,
        resource_id,
        values["title"],
        values["description"],
        values["type"],
        values["category"],
        values["access"],
        values["file_url"],
        values["file_size"],
        values["format"],
        values["mime_type"],
        values["difficulty"],
        values["tags"],
        values["source_type"],
        values["source_id"],
        values["is_featured"],
        created_by,
        values["publish"],
    )
    return row


async def fetch_resource(
    conn: asyncpg.Connection, resource_id: uuid.UUID, viewer_id: uuid.UUID | None
) -> asyncpg.Record | None:
    """A resource that is not deleted (drafts included: the caller decides who sees them)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        SELECT {RESOURCE_COLUMNS}, i.rating AS my_rating
        FROM resources.resources r
        LEFT JOIN resources.interactions i ON i.resource_id = r.id AND i.user_id = $2
        WHERE r.id = $1 AND r.deleted_at IS NULL
        """,
        resource_id,
        viewer_id,
    )
    return row


async def lock_resource(conn: asyncpg.Connection, resource_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock a live (non-deleted) resource row for a change of its descriptive fields."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        SELECT {RESOURCE_COLUMNS}, r.file_url FROM resources.resources r
        WHERE r.id = $1 AND r.deleted_at IS NULL
        FOR NO KEY UPDATE
        """,
        resource_id,
    )
    return row


async def update_resource(
    conn: asyncpg.Connection,
    resource_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    publish: bool,
    viewer_id: uuid.UUID,
) -> asyncpg.Record:
    """Set `changes` (column -> value) and publish if asked; counters are left alone."""
    unknown = set(changes) - UPDATABLE_COLUMNS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = sorted(changes)
    sets = [f"{name} = ${index}" for index, name in enumerate(names, start=3)]
    sets.append("updated_at = now()")
    if publish:
        sets.append("published_at = coalesce(published_at, now())")
    row: asyncpg.Record = await conn.fetchrow(
        f"""
        WITH updated AS (
            UPDATE resources.resources SET {", ".join(sets)}
            WHERE id = $1
            RETURNING *
        )
        SELECT {RESOURCE_COLUMNS}, i.rating AS my_rating
        FROM updated r
        LEFT JOIN resources.interactions i ON i.resource_id = r.id AND i.user_id = $2
        """,
        resource_id,
        viewer_id,
        *(changes[name] for name in names),
    )
    return row


async def soft_delete_resource(conn: asyncpg.Connection, resource_id: uuid.UUID) -> bool:
    deleted = await conn.fetchval(
        """
        UPDATE resources.resources SET deleted_at = now(), updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING true
        """,
        resource_id,
    )
    return bool(deleted)


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class ListFilters:
    category: str | None = None
    type: str | None = None
    access: str | None = None
    difficulty: str | None = None
    tags: list[str] = field(default_factory=list)
    q: str | None = None
    featured: bool | None = None


@dataclass(frozen=True)
class SortSpec:
    order_by: str
    key_columns: tuple[str, ...]


SORT_SPECS: Final[dict[str, SortSpec]] = {
    "newest": SortSpec("r.published_at DESC, r.id DESC", ("published_at", "id")),
    "downloads": SortSpec("r.download_count DESC, r.id DESC", ("download_count", "id")),
    "popular": SortSpec(
        "r.recent_downloads DESC, r.download_count DESC, r.id DESC",
        ("recent_downloads", "download_count", "id"),
    ),
    "rating": SortSpec(
        "r.rating_avg DESC NULLS LAST, r.rating_count DESC, r.id DESC",
        ("rating_avg", "rating_count", "id"),
    ),
    "drafts": SortSpec("r.created_at DESC, r.id DESC", ("created_at", "id")),
}


class _Args:
    """Collects positional parameters and hands out their `$n` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _after_clause(sort: str, after: tuple[Any, ...], args: _Args) -> str:
    """Rows strictly after the cursor's key in `sort` order (keyset pagination)."""
    if sort == "rating":
        average, count, last_id = after
        if average is None:  # already among the unrated, which come last
            return (
                "(r.rating_avg IS NULL AND (r.rating_count, r.id) < "
                f"({args.add(count)}, {args.add(last_id)}))"
            )
        return (
            "(r.rating_avg IS NULL OR (r.rating_avg, r.rating_count, r.id) < "
            f"({args.add(average)}::numeric, {args.add(count)}, {args.add(last_id)}))"
        )
    columns = ", ".join(f"r.{name}" for name in SORT_SPECS[sort].key_columns)
    placeholders = ", ".join(args.add(value) for value in after)
    return f"({columns}) < ({placeholders})"


async def list_resources(
    conn: asyncpg.Connection,
    *,
    filters: ListFilters,
    sort: str,
    after: tuple[Any, ...] | None,
    limit: int,
    viewer_id: uuid.UUID | None,
) -> list[asyncpg.Record]:
    """One page of published resources (or, with sort "drafts", of drafts).

    Each sort has a partial index on live rows; the filters narrow within it
    (`tags` and `q` have GIN indexes, category has its own for newest-first).
    """
    args = _Args()
    viewer = args.add(viewer_id)
    where = [
        "r.deleted_at IS NULL",
        "r.published_at IS NULL" if sort == "drafts" else "r.published_at IS NOT NULL",
    ]
    for column in ("category", "type", "access", "difficulty"):
        value = getattr(filters, column)
        if value is not None:
            where.append(f"r.{column} = {args.add(value)}")
    if filters.tags:
        where.append(f"r.tags @> {args.add(filters.tags)}::text[]")
    if filters.q is not None:
        where.append(f"r.search @@ websearch_to_tsquery('english', {args.add(filters.q)})")
    if filters.featured is not None:
        where.append(f"r.is_featured = {args.add(filters.featured)}")
    if after is not None:
        where.append(_after_clause(sort, after, args))
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {RESOURCE_COLUMNS}, i.rating AS my_rating
        FROM resources.resources r
        LEFT JOIN resources.interactions i ON i.resource_id = r.id AND i.user_id = {viewer}
        WHERE {" AND ".join(where)}
        ORDER BY {SORT_SPECS[sort].order_by}
        LIMIT {args.add(limit)}
        """,
        *args.values,
    )
    return rows


def sort_key(sort: str, row: asyncpg.Record) -> tuple[Any, ...]:
    """The cursor key of `row` in `sort` order."""
    return tuple(row[name] for name in SORT_SPECS[sort].key_columns)


async def count_published(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(f"SELECT count(*) FROM resources.resources r WHERE {LIVE}")
    return count


async def recent_downloads_at_place(conn: asyncpg.Connection, place: int) -> int | None:
    """The 30-day download count of the resource at `place` (1-based) of the popularity ranking."""
    value: int | None = await conn.fetchval(
        f"""
        SELECT r.recent_downloads FROM resources.resources r WHERE {LIVE}
        ORDER BY r.recent_downloads DESC, r.download_count DESC, r.id DESC
        OFFSET $1 LIMIT 1
        """,
        place - 1,
    )
    return value


# --------------------------------------------------------------------------- links


async def insert_link(
    conn: asyncpg.Connection,
    *,
    link_id: uuid.UUID,
    resource_id: uuid.UUID,
    created_by: uuid.UUID,
    values: dict[str, Any],
) -> asyncpg.Record | None:
    """The new link, from the fields of its `CreateLink` (`values`), or None when
    the resource is already linked to that entity."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        INSERT INTO resources.links (id, resource_id, entity_type, entity_id, timestamp_seconds,
                                     label, display_order, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (resource_id, entity_type, entity_id) DO NOTHING
        RETURNING id, resource_id, entity_type, entity_id, timestamp_seconds, label,
                  display_order, created_at
        """,
        link_id,
        resource_id,
        values["entity_type"],
        values["entity_id"],
        values["timestamp_seconds"],
        values["label"],
        values["display_order"],
        created_by,
    )
    return row


async def delete_link(conn: asyncpg.Connection, resource_id: uuid.UUID, link_id: uuid.UUID) -> bool:
    deleted = await conn.fetchval(
        """
        DELETE FROM resources.links l USING resources.resources r
        WHERE l.id = $2 AND l.resource_id = $1 AND r.id = l.resource_id AND r.deleted_at IS NULL
        RETURNING true
        """,
        resource_id,
        link_id,
    )
    return bool(deleted)


LINKED_LIMIT: Final = 500


async def linked_resources(
    conn: asyncpg.Connection,
    *,
    entity_type: str,
    entity_id: uuid.UUID,
    viewer_id: uuid.UUID | None,
    include_drafts: bool,
) -> list[asyncpg.Record]:
    """The resources linked to an entity: by timestamp (nulls last), then display order."""
    visible = "r.deleted_at IS NULL" if include_drafts else LIVE
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {RESOURCE_COLUMNS}, i.rating AS my_rating,
               l.id AS link_id, l.timestamp_seconds AS link_timestamp_seconds,
               l.label AS link_label, l.display_order AS link_display_order
        FROM resources.links l
        JOIN resources.resources r ON r.id = l.resource_id
        LEFT JOIN resources.interactions i ON i.resource_id = r.id AND i.user_id = $3
        WHERE l.entity_type = $1 AND l.entity_id = $2 AND {visible}
        ORDER BY l.timestamp_seconds ASC NULLS LAST, l.display_order ASC, l.id ASC
        LIMIT {LINKED_LIMIT}
        """,
        entity_type,
        entity_id,
        viewer_id,
    )
    return rows


# --------------------------------------------------------------------------- downloads


async def download_target(
    conn: asyncpg.Connection, resource_id: uuid.UUID
) -> asyncpg.Record | None:
    """What deciding a download needs: access, whether published, the file's address."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT access, published_at, file_url FROM resources.resources
        WHERE id = $1 AND deleted_at IS NULL
        """,
        resource_id,
    )
    return row


async def count_download(conn: asyncpg.Connection, resource_id: uuid.UUID) -> asyncpg.Record | None:
    """Add one download to a published resource (taking its row lock); None if it is gone."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE resources.resources
        SET download_count = download_count + 1, recent_downloads = recent_downloads + 1
        WHERE id = $1 AND deleted_at IS NULL AND published_at IS NOT NULL
        RETURNING access, file_url, download_count, rating_sum, rating_count
        """,
        resource_id,
    )
    return row


async def record_user_download(
    conn: asyncpg.Connection, resource_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await conn.execute(
        """
        INSERT INTO resources.interactions (id, resource_id, user_id, download_count,
                                  first_downloaded_at, last_downloaded_at)
        VALUES ($1, $2, $3, 1, now(), now())
        ON CONFLICT (resource_id, user_id) WHERE user_id IS NOT NULL
        DO UPDATE SET download_count = interactions.download_count + 1,
                      last_downloaded_at = now()
        """,
        uuid.uuid4(),
        resource_id,
        user_id,
    )


async def record_guest_download(
    conn: asyncpg.Connection, resource_id: uuid.UUID, email: str
) -> None:
    await conn.execute(
        """
        INSERT INTO resources.interactions (id, resource_id, guest_email, download_count,
                                  first_downloaded_at, last_downloaded_at)
        VALUES ($1, $2, $3, 1, now(), now())
        ON CONFLICT (resource_id, guest_email) WHERE guest_email IS NOT NULL
        DO UPDATE SET download_count = interactions.download_count + 1,
                      last_downloaded_at = now()
        """,
        uuid.uuid4(),
        resource_id,
        email,
    )


async def add_to_download_day(conn: asyncpg.Connection, resource_id: uuid.UUID) -> None:
    """Count one download in today's (UTC) bucket of the resource."""
    await conn.execute(
        """
        INSERT INTO resources.download_days (resource_id, day, downloads)
        VALUES ($1, (now() AT TIME ZONE 'UTC')::date, 1)
        ON CONFLICT (resource_id, day) DO UPDATE SET downloads = download_days.downloads + 1
        """,
        resource_id,
    )


async def expire_download_days(conn: asyncpg.Connection, first_day: dt.date) -> int:
    """Take the buckets older than `first_day` out of `recent_downloads`; return how many.

    Relative updates under row locks, so downloads counted meanwhile are kept.
    Call inside a transaction holding the expiry's advisory lock.
    """
    expired: int = await conn.fetchval(
        """
        WITH gone AS (
            UPDATE resources.download_days SET expired = true
            WHERE NOT expired AND day < $1
            RETURNING resource_id, downloads
        ), per_resource AS (
            SELECT resource_id, sum(downloads) AS downloads, count(*) AS buckets
            FROM gone GROUP BY resource_id
        ), applied AS (
            UPDATE resources.resources r SET recent_downloads = r.recent_downloads - p.downloads
            FROM per_resource p WHERE r.id = p.resource_id
            RETURNING p.buckets
        )
        SELECT coalesce(sum(buckets), 0)::int FROM applied
        """,
        first_day,
    )
    return expired


async def try_lock_expiry(conn: asyncpg.Connection) -> bool:
    """One expiry at a time across all instances (transaction-scoped)."""
    locked: bool = await conn.fetchval(
        "SELECT pg_try_advisory_xact_lock(hashtext('resources:expire_download_days'))"
    )
    return locked


# --------------------------------------------------------------------------- ratings


async def lock_published_resource(
    conn: asyncpg.Connection, resource_id: uuid.UUID
) -> asyncpg.Record | None:
    """Take a published resource's row lock before touching one of its interactions."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT id, published_at FROM resources.resources
        WHERE id = $1 AND deleted_at IS NULL
        FOR NO KEY UPDATE
        """,
        resource_id,
    )
    return row


async def lock_user_interaction(
    conn: asyncpg.Connection, resource_id: uuid.UUID, user_id: uuid.UUID
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT id, download_count, rating, review FROM resources.interactions
        WHERE resource_id = $1 AND user_id = $2
        FOR UPDATE
        """,
        resource_id,
        user_id,
    )
    return row


async def set_rating(
    conn: asyncpg.Connection, interaction_id: uuid.UUID, rating: int, review: str | None
) -> None:
    await conn.execute(
        """
        UPDATE resources.interactions SET rating = $2, review = $3, rated_at = now()
        WHERE id = $1
        """,
        interaction_id,
        rating,
        review,
    )


async def change_rating_totals(
    conn: asyncpg.Connection, resource_id: uuid.UUID, sum_delta: int, count_delta: int
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        """
        UPDATE resources.resources
        SET rating_sum = rating_sum + $2, rating_count = rating_count + $3
        WHERE id = $1
        RETURNING download_count, rating_sum, rating_count
        """,
        resource_id,
        sum_delta,
        count_delta,
    )
    return row


async def resource_counters(conn: asyncpg.Connection, resource_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "SELECT download_count, rating_sum, rating_count FROM resources.resources WHERE id = $1",
        resource_id,
    )
    return row
