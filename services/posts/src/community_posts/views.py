"""Rows of the posts schema as the answers and event payloads built from them.

Pure: each function turns a row (and the authors' taglines, looked up by the
use case) into an API Struct (`schemas`) or an event payload (`events`).
"""

from __future__ import annotations

import uuid

import asyncpg

from community_posts import events as ev
from community_posts.schemas import Author, Post, Reply, Report, ReportedPost, Reporter

Taglines = dict[uuid.UUID, str | None]
"""Author id → the goal tagline shown beside the author's name (None: none)."""


def author(row: asyncpg.Record, goals: Taglines, prefix: str = "author") -> Author:
    return Author(
        id=row[f"{prefix}_id"],
        name=row[f"{prefix}_name"],
        role=row[f"{prefix}_role"],
        goal=goals.get(row[f"{prefix}_id"]),
    )


def post(row: asyncpg.Record, goals: Taglines, liked: bool) -> Post:
    return Post(
        id=row["id"],
        author=author(row, goals),
        content=row["content"],
        visibility=row["visibility"],
        is_pinned=row["is_pinned"],
        likes_count=row["likes_count"],
        replies_count=row["replies_count"],
        liked_by_me=liked,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        edited=row["edited"],
    )


def reply(row: asyncpg.Record, goals: Taglines) -> Reply:
    return Reply(
        id=row["id"],
        post_id=row["post_id"],
        reply_to_id=row["reply_to_id"],
        author=author(row, goals),
        content=row["content"],
        created_at=row["created_at"],
        edited=row["edited"],
    )


def report(row: asyncpg.Record, goals: Taglines) -> Report:
    return Report(
        id=row["id"],
        post_id=row["post_id"],
        reporter=Reporter(id=row["reporter_id"], name=row["reporter_name"]),
        reason=row["reason"],
        details=row["details"],
        status=row["status"],
        action=row["action"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        post=ReportedPost(
            id=row["post_id"],
            author=author(row, goals, prefix="post_author"),
            content=row["post_content"],
            visibility=row["post_visibility"],
            created_at=row["post_created_at"],
            deleted=row["post_deleted"],
        ),
    )


# --------------------------------------------------------------------------- event payloads


def author_ref(row: asyncpg.Record, goals: Taglines, prefix: str = "author") -> ev.AuthorRef:
    author_id = row[f"{prefix}_id"]
    return ev.AuthorRef(
        id=author_id,
        name=row[f"{prefix}_name"],
        role=row[f"{prefix}_role"],
        goal=goals.get(author_id),
    )


def post_data(row: asyncpg.Record, goals: Taglines) -> ev.PostData:
    """A post event's payload: the post as `GET /posts` shows it, the author's tagline included."""
    return ev.PostData(
        id=row["id"],
        author=author_ref(row, goals),
        content=row["content"],
        visibility=row["visibility"],
        is_pinned=row["is_pinned"],
        likes_count=row["likes_count"],
        replies_count=row["replies_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        edited=row["edited"],
    )


def reply_data(
    reply: asyncpg.Record,
    post: asyncpg.Record,
    goals: Taglines,
    *,
    replies_count: int,
    reply_to_author_id: uuid.UUID | None,
) -> ev.ReplyData:
    return ev.ReplyData(
        id=reply["id"],
        post_id=reply["post_id"],
        reply_to_id=reply["reply_to_id"],
        author=author_ref(reply, goals),
        content=reply["content"],
        created_at=reply["created_at"],
        edited=reply["edited"],
        visibility=post["visibility"],
        post_author_id=post["author_id"],
        reply_to_author_id=reply_to_author_id,
        replies_count=replies_count,
    )


def like_data(
    post: asyncpg.Record, *, user_id: uuid.UUID, user_name: str, likes_count: int
) -> ev.LikeData:
    return ev.LikeData(
        post_id=post["id"],
        user_id=user_id,
        user_name=user_name,
        likes_count=likes_count,
        post_author_id=post["author_id"],
        visibility=post["visibility"],
    )
