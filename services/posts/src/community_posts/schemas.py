"""The HTTP API of the posts service as msgspec Structs (requests and responses).

Request bodies declare their types and enums so that a wrong type, a missing
field or an unknown enum value is a 400 before any code runs; content rules
(trimming, length) are applied by `rules`.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from community_shared.pagination import Page

from community_posts.rules import ReportReason, ResolveAction, Visibility

# --------------------------------------------------------------------------- requests


class NewPost(msgspec.Struct, kw_only=True):
    content: str
    visibility: Visibility = "public"


class PostEdit(msgspec.Struct, kw_only=True):
    content: str


class NewReply(msgspec.Struct, kw_only=True):
    content: str
    reply_to_id: uuid.UUID | None = None


class ReplyEdit(msgspec.Struct, kw_only=True):
    content: str


class NewReport(msgspec.Struct, kw_only=True):
    reason: ReportReason
    details: str | None = None


class Resolution(msgspec.Struct, kw_only=True):
    action: ResolveAction


# --------------------------------------------------------------------------- responses


class Author(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    role: str
    goal: str | None  # the author's current goal, the tagline under the name


class Post(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    author: Author
    content: str
    visibility: str
    is_pinned: bool
    likes_count: int
    replies_count: int
    liked_by_me: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    edited: bool


class Reply(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    post_id: uuid.UUID
    reply_to_id: uuid.UUID | None
    author: Author
    content: str
    created_at: dt.datetime
    edited: bool


class PostWithReplies(Post, kw_only=True):
    replies: list[Reply]


class PostPage(Page[Post]):
    """A page of the feed."""

    items: list[Post]  # named again: the OpenAPI document does not resolve a generic base


class LikeState(msgspec.Struct, kw_only=True):
    liked: bool
    likes_count: int


class Reporter(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str


class ReportedPost(msgspec.Struct, kw_only=True):
    """What a moderator needs to judge a report, even after the post was removed."""

    id: uuid.UUID
    author: Author
    content: str
    visibility: str
    created_at: dt.datetime
    deleted: bool


class Report(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    post_id: uuid.UUID
    reporter: Reporter
    reason: str
    details: str | None
    status: str
    action: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: uuid.UUID | None
    post: ReportedPost


class ReportPage(Page[Report]):
    """A page of the moderation queue."""

    items: list[Report]  # named again: the OpenAPI document does not resolve a generic base
