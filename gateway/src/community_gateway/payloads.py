"""What the gateway reads of each domain event it routes, as msgspec types. No I/O.

The routing table (`channels.route`) decodes an envelope's `data` into the
view of its type below before deciding anything: a field the table needs that
is missing or of the wrong type makes the event `MalformedEvent` (dropped,
never routed), and every field it reads is named here, once. Fields the
gateway only copies into the payloads it builds are `Any`: it passes their
JSON values on unchanged and leaves their validation to the publisher; fields
it interprets (whose inbox an event goes to, who caused it, what audience it
has) carry their type. Fields a view does not name are ignored.

A view is the consumer's side of a service's payload type (the events
catalogue), in the manner of the leaderboard's views of the events it
consumes: the gateway imports no service. A unit test holds each view to its
service's type, field by field, so renaming a field the gateway reads fails
that test rather than an end-to-end one.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec


class _View(msgspec.Struct, frozen=True, kw_only=True):
    """A view of an envelope's `data`: an object; fields it does not name are ignored."""


class NoFields(_View, frozen=True, kw_only=True):
    """Data passed on unchanged: the gateway reads none of its fields."""


# --------------------------------------------------------------------------- posts


class _OnAPost(_View, frozen=True, kw_only=True):
    # Anything but an explicit "public" is members-only (see `channels._post_audience`).
    visibility: str | None = "public"


class PostView(_OnAPost, frozen=True, kw_only=True):
    id: Any


class LikeView(_OnAPost, frozen=True, kw_only=True):
    post_id: Any
    likes_count: Any


class LikedView(LikeView, frozen=True, kw_only=True):
    post_author_id: uuid.UUID
    user_id: uuid.UUID | None = None
    user_name: Any = None


class AuthorView(_View, frozen=True, kw_only=True):
    id: uuid.UUID | None = None


class ReplyCreatedView(_OnAPost, frozen=True, kw_only=True):
    author: AuthorView
    post_author_id: uuid.UUID | None = None
    reply_to_author_id: uuid.UUID | None = None


class ReplyDeletedView(_OnAPost, frozen=True, kw_only=True):
    id: Any
    post_id: Any
    replies_count: Any = None


# --------------------------------------------------------------------------- goals


class GoalRequestView(_View, frozen=True, kw_only=True):
    review_id: Any
    student_id: Any
    student_name: Any = None
    track: Any = None
    goal_slug: Any = None
    created_at: Any = None


class SubmissionView(GoalRequestView, frozen=True, kw_only=True):
    amount: Any = None
    proof_url: Any = None
    note: Any = None


class ToStudentView(_View, frozen=True, kw_only=True):
    student_id: uuid.UUID


class DecisionView(ToStudentView, frozen=True, kw_only=True):
    review_id: Any
    reviewed_by: Any = None


class GoalAssignedView(ToStudentView, frozen=True, kw_only=True):
    review_id: Any = None
    reviewed_by: Any = None


class StoryView(_View, frozen=True, kw_only=True):
    author_id: uuid.UUID


# --------------------------------------------------------------------------- resources


class ResourceView(_View, frozen=True, kw_only=True):
    id: Any
    published_at: Any = None


class ResourceDeletedView(_View, frozen=True, kw_only=True):
    id: Any


class ResourceStatsView(_View, frozen=True, kw_only=True):
    resource_id: Any
    download_count: Any = None
    rating_average: Any = None
    rating_count: Any = None


# --------------------------------------------------------------------------- leaderboard


class TopView(_View, frozen=True, kw_only=True):
    board: Any = None
    """Read by `channels.coalesce_key`: only a board's latest top list matters."""


class BadgeView(_View, frozen=True, kw_only=True):
    user_id: uuid.UUID
