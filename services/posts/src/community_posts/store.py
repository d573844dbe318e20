"""SQL of the posts schema, and nothing but SQL.

Tables are schema-qualified (`posts.<table>`): the service's connections keep
the server's default search path. Every function takes the connection of the
caller's transaction. Lists are keyset-paged in the order of the partial
indexes of `0001_posts.sql`; the visibility and filter predicates are written
as literals (not parameters) so that the planner can match them to those
partial indexes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Final, NamedTuple

import asyncpg
import msgspec
from community_shared.pagination import TimeKey

SCHEMA: Final = "posts"

_POST = (
    "id, author_id, author_name, author_role, content, visibility, is_pinned,"
    " likes_count, replies_count, created_at, updated_at, edited"
)
_REPLY = (
    "id, post_id, reply_to_id, author_id, author_name, author_role, content,"
    " created_at, updated_at, edited"
)


class Author(NamedTuple):
    """Who writes a post or a reply, kept with it as of writing (name and role)."""

    id: uuid.UUID
    name: str
    role: str


class FeedKey(msgspec.Struct, frozen=True, array_like=True):
    """Where a feed page ends: the sort key of its last post (the cursor)."""

    is_pinned: bool
    created_at: dt.datetime
    id: uuid.UUID


# --------------------------------------------------------------------------- posts


async def insert_post(
    conn: asyncpg.Connection,
    *,
    post_id: uuid.UUID,
    author: Author,
    content: str,
    visibility: str,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""INSERT INTO posts.posts (id, author_id, author_name, author_role, content, visibility)
            VALUES ($1, $2, $3, $4, $5, $6)
            RETURNING {_POST}""",
        post_id,
        author.id,
        author.name,
        author.role,
        content,
        visibility,
    )
    return row


async def get_live_post(
    conn: asyncpg.Connection, post_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    """A post that is not deleted; `lock` takes its row lock for the transaction.

    The lock is `FOR NO KEY UPDATE`: it serializes changes of the post with
    each other but does not conflict with the key-share locks that inserting a
    like or a reply takes on it.
    """
    suffix = " FOR NO KEY UPDATE" if lock else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_POST} FROM posts.posts WHERE id = $1 AND deleted_at IS NULL{suffix}", post_id
    )
    return row


async def list_posts(
    conn: asyncpg.Connection,
    *,
    audience: str,
    viewer_id: uuid.UUID | None,
    author_id: uuid.UUID | None,
    instructors_only: bool,
    query: str | None,
    after: FeedKey | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Live posts, pinned first then newest, after the keyset `after`.

    `audience` is "members" (every post), "public" (public posts only) or
    "public+own" (public posts and the viewer's own).
    """
    where = ["deleted_at IS NULL"]
    args: list[object] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if audience == "public":
        where.append("visibility = 'public'")
    elif audience == "public+own":
        where.append(f"(visibility = 'public' OR author_id = {arg(viewer_id)})")
    if author_id is not None:
        where.append(f"author_id = {arg(author_id)}")
    if instructors_only:
        where.append("author_role IN ('instructor', 'admin')")
    if query is not None:
        where.append(f"search @@ websearch_to_tsquery('english', {arg(query)})")
    if after is not None:
        where.append(
            f"(is_pinned, created_at, id)"
            f" < ({arg(after.is_pinned)}, {arg(after.created_at)}, {arg(after.id)})"
        )
    sql = (
        f"SELECT {_POST} FROM posts.posts WHERE {' AND '.join(where)}"
        f" ORDER BY is_pinned DESC, created_at DESC, id DESC LIMIT {arg(limit)}"
    )
    rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return rows


async def update_post_content(
    conn: asyncpg.Connection, post_id: uuid.UUID, author_id: uuid.UUID, content: str
) -> asyncpg.Record | None:
    """Edit a live post of `author_id`; None if there is no such post."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""UPDATE posts.posts SET content = $3, edited = true, updated_at = now()
            WHERE id = $1 AND author_id = $2 AND deleted_at IS NULL
            RETURNING {_POST}""",
        post_id,
        author_id,
        content,
    )
    return row


async def soft_delete_post(
    conn: asyncpg.Connection, post_id: uuid.UUID, *, deleted_by: uuid.UUID, reason: str
) -> asyncpg.Record | None:
    """Mark a live post deleted; None if it was not live."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""UPDATE posts.posts SET deleted_at = now(), deleted_by = $2, delete_reason = $3
            WHERE id = $1 AND deleted_at IS NULL
            RETURNING {_POST}""",
        post_id,
        deleted_by,
        reason,
    )
    return row


async def set_pinned(
    conn: asyncpg.Connection, post_id: uuid.UUID, *, pinned: bool, by: uuid.UUID
) -> asyncpg.Record | None:
    """Pin or unpin a live post; None if it is not live or already in that state."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""UPDATE posts.posts
            SET is_pinned = $2,
                pinned_at = CASE WHEN $2 THEN now() END,
                pinned_by = CASE WHEN $2 THEN $3::uuid END
            WHERE id = $1 AND deleted_at IS NULL AND is_pinned <> $2
            RETURNING {_POST}""",
        post_id,
        pinned,
        by,
    )
    return row


# --------------------------------------------------------------------------- likes


async def insert_like(conn: asyncpg.Connection, post_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Record a like; False if the user already likes the post."""
    inserted = await conn.fetchval(
        """INSERT INTO posts.likes (post_id, user_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING RETURNING true""",
        post_id,
        user_id,
    )
    return inserted is not None


async def delete_like(conn: asyncpg.Connection, post_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Remove a like; False if the user did not like the post."""
    deleted = await conn.fetchval(
        "DELETE FROM posts.likes WHERE post_id = $1 AND user_id = $2 RETURNING true",
        post_id,
        user_id,
    )
    return deleted is not None


async def add_to_likes_count(conn: asyncpg.Connection, post_id: uuid.UUID, delta: int) -> int:
    """Move the counter with the like row it mirrors (same transaction); the new count."""
    count: int = await conn.fetchval(
        "UPDATE posts.posts SET likes_count = likes_count + $2 WHERE id = $1 RETURNING likes_count",
        post_id,
        delta,
    )
    return count


async def likes_count(conn: asyncpg.Connection, post_id: uuid.UUID) -> int:
    count: int = await conn.fetchval("SELECT likes_count FROM posts.posts WHERE id = $1", post_id)
    return count


async def liked_post_ids(
    conn: asyncpg.Connection, user_id: uuid.UUID, post_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    if not post_ids:
        return set()
    rows = await conn.fetch(
        "SELECT post_id FROM posts.likes WHERE user_id = $1 AND post_id = ANY($2::uuid[])",
        user_id,
        post_ids,
    )
    return {row["post_id"] for row in rows}


# --------------------------------------------------------------------------- replies


async def get_live_reply(
    conn: asyncpg.Connection, post_id: uuid.UUID, reply_id: uuid.UUID
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT {_REPLY} FROM posts.replies
            WHERE id = $1 AND post_id = $2 AND deleted_at IS NULL""",
        reply_id,
        post_id,
    )
    return row


async def reply_author(conn: asyncpg.Connection, reply_id: uuid.UUID) -> uuid.UUID | None:
    author: uuid.UUID | None = await conn.fetchval(
        "SELECT author_id FROM posts.replies WHERE id = $1", reply_id
    )
    return author


async def insert_reply(
    conn: asyncpg.Connection,
    *,
    reply_id: uuid.UUID,
    post_id: uuid.UUID,
    reply_to_id: uuid.UUID | None,
    author: Author,
    content: str,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""INSERT INTO posts.replies
                (id, post_id, reply_to_id, author_id, author_name, author_role, content)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {_REPLY}""",
        reply_id,
        post_id,
        reply_to_id,
        author.id,
        author.name,
        author.role,
        content,
    )
    return row


async def update_reply_content(
    conn: asyncpg.Connection, reply_id: uuid.UUID, content: str
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""UPDATE posts.replies SET content = $2, edited = true, updated_at = now()
            WHERE id = $1 RETURNING {_REPLY}""",
        reply_id,
        content,
    )
    return row


async def soft_delete_reply(
    conn: asyncpg.Connection, reply_id: uuid.UUID, deleted_by: uuid.UUID
) -> bool:
    """Mark a live reply deleted; False if it was already gone."""
    done = await conn.fetchval(
        """UPDATE posts.replies SET deleted_at = now(), deleted_by = $2
           WHERE id = $1 AND deleted_at IS NULL RETURNING true""",
        reply_id,
        deleted_by,
    )
    return done is not None


async def add_to_replies_count(
    conn: asyncpg.Connection, post_id: uuid.UUID, delta: int
) -> int | None:
    """Move a live post's reply counter; the new count, None if the post is gone."""
    count: int | None = await conn.fetchval(
        """UPDATE posts.posts SET replies_count = replies_count + $2
           WHERE id = $1 AND deleted_at IS NULL RETURNING replies_count""",
        post_id,
        delta,
    )
    return count


async def list_replies(conn: asyncpg.Connection, post_id: uuid.UUID) -> list[asyncpg.Record]:
    """A post's live replies, flat, oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_REPLY} FROM posts.replies
            WHERE post_id = $1 AND deleted_at IS NULL
            ORDER BY created_at, id""",
        post_id,
    )
    return rows


# --------------------------------------------------------------------------- reports

_REPORT = """r.id, r.post_id, r.reporter_id, r.reporter_name, r.reason, r.details, r.status,
    r.action, r.resolved_by, r.resolved_at, r.created_at,
    p.author_id AS post_author_id, p.author_name AS post_author_name,
    p.author_role AS post_author_role, p.content AS post_content,
    p.visibility AS post_visibility, p.created_at AS post_created_at,
    p.deleted_at IS NOT NULL AS post_deleted"""


async def insert_report(
    conn: asyncpg.Connection,
    *,
    report_id: uuid.UUID,
    post_id: uuid.UUID,
    reporter_id: uuid.UUID,
    reporter_name: str,
    reason: str,
    details: str | None,
) -> bool:
    """Open a report; False if this user already has an open report on the post."""
    inserted = await conn.fetchval(
        """INSERT INTO posts.reports (id, post_id, reporter_id, reporter_name, reason, details)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (post_id, reporter_id) WHERE status = 'open' DO NOTHING
           RETURNING true""",
        report_id,
        post_id,
        reporter_id,
        reporter_name,
        reason,
        details,
    )
    return inserted is not None


async def get_report(
    conn: asyncpg.Connection, report_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF r" if lock else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT {_REPORT} FROM posts.reports r JOIN posts.posts p ON p.id = r.post_id
            WHERE r.id = $1{suffix}""",
        report_id,
    )
    return row


async def resolve_report(
    conn: asyncpg.Connection, report_id: uuid.UUID, *, action: str, resolved_by: uuid.UUID
) -> None:
    await conn.execute(
        """UPDATE posts.reports SET status = 'resolved', action = $2, resolved_by = $3,
               resolved_at = now()
           WHERE id = $1 AND status = 'open'""",
        report_id,
        action,
        resolved_by,
    )


async def resolve_open_reports_of_post(
    conn: asyncpg.Connection, post_id: uuid.UUID, *, action: str, resolved_by: uuid.UUID
) -> list[uuid.UUID]:
    """Resolve every other open report of a post at once; their ids."""
    rows = await conn.fetch(
        """UPDATE posts.reports SET status = 'resolved', action = $2, resolved_by = $3,
               resolved_at = now()
           WHERE post_id = $1 AND status = 'open'
           RETURNING id""",
        post_id,
        action,
        resolved_by,
    )
    return [row["id"] for row in rows]


async def list_reports(
    conn: asyncpg.Connection, *, status: str, after: TimeKey | None, limit: int
) -> list[asyncpg.Record]:
    """Open reports oldest first (a queue); resolved ones most recently resolved first."""
    if status == "open":
        key, order, direction = "r.created_at", "r.created_at, r.id", ">"
    else:
        key, order, direction = "r.resolved_at", "r.resolved_at DESC, r.id DESC", "<"
    where = f"r.status = '{'open' if status == 'open' else 'resolved'}'"
    args: list[object] = [limit]
    if after is not None:
        where += f" AND ({key}, r.id) {direction} ($2, $3)"
        args += [after.at, after.id]
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_REPORT} FROM posts.reports r JOIN posts.posts p ON p.id = r.post_id
            WHERE {where} ORDER BY {order} LIMIT $1""",
        *args,
    )
    return rows
