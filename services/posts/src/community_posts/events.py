"""The events the posts service publishes, and the few it listens to.

Payloads are exactly the `data` of the envelopes in the events catalogue; the
gateway and the leaderboard decode them by these field names. Every change of
a post, reply, like or report is one of these, written to the outbox in the
transaction that makes the change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Final

import msgspec
from community_shared.subjects import GOAL_ASSIGNED, GOAL_COMPLETED
from community_shared.subjects import POST_CREATED as POST_CREATED
from community_shared.subjects import POST_DELETED as POST_DELETED
from community_shared.subjects import POST_LIKED as POST_LIKED
from community_shared.subjects import POST_PINNED as POST_PINNED
from community_shared.subjects import POST_UNLIKED as POST_UNLIKED
from community_shared.subjects import POST_UNPINNED as POST_UNPINNED
from community_shared.subjects import POST_UPDATED as POST_UPDATED
from community_shared.subjects import REPLY_CREATED as REPLY_CREATED
from community_shared.subjects import REPLY_DELETED as REPLY_DELETED
from community_shared.subjects import REPLY_UPDATED as REPLY_UPDATED
from community_shared.subjects import REPORT_CREATED as REPORT_CREATED
from community_shared.subjects import REPORT_RESOLVED as REPORT_RESOLVED

from community_posts.rules import DeleteReason, ReportReason, ResolveAction, Role, Visibility

SOURCE: Final = "posts"

# Goals events after which an author's tagline may have changed (cache eviction).
GOALS_TAGLINE_CHANGES: Final = (GOAL_ASSIGNED, GOAL_COMPLETED)


class AuthorRef(msgspec.Struct, frozen=True, kw_only=True):
    """Who wrote a post or a reply; `goal` is the author's tagline, as over HTTP."""

    id: uuid.UUID
    name: str
    role: Role
    goal: str | None = None


class PostData(msgspec.Struct, frozen=True, kw_only=True):
    """The post as it is after the change (created, edited, pinned or unpinned)."""

    id: uuid.UUID
    author: AuthorRef
    content: str
    visibility: Visibility
    is_pinned: bool
    likes_count: int
    replies_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
    edited: bool


class PostDeletedData(msgspec.Struct, frozen=True, kw_only=True):
    """A post was deleted by its author, removed by a moderator or removed after a report."""

    id: uuid.UUID
    author_id: uuid.UUID
    visibility: Visibility
    removed_by: uuid.UUID
    reason: DeleteReason


class LikeData(msgspec.Struct, frozen=True, kw_only=True):
    """A like was given or withdrawn; `likes_count` is the post's new count."""

    post_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    likes_count: int
    post_author_id: uuid.UUID
    visibility: Visibility


class ReplyData(msgspec.Struct, frozen=True, kw_only=True):
    """A reply as created or edited; `post_author_id`, `reply_to_author_id`: whom to notify."""

    id: uuid.UUID
    post_id: uuid.UUID
    reply_to_id: uuid.UUID | None
    author: AuthorRef
    content: str
    created_at: dt.datetime
    edited: bool
    visibility: Visibility
    post_author_id: uuid.UUID
    reply_to_author_id: uuid.UUID | None
    replies_count: int


class ReplyDeletedData(msgspec.Struct, frozen=True, kw_only=True):
    """A reply was deleted; `replies_count` is the post's new count of live replies."""

    id: uuid.UUID
    post_id: uuid.UUID
    visibility: Visibility
    replies_count: int


class ReportCreatedData(msgspec.Struct, frozen=True, kw_only=True):
    """A member reported a post to the moderators."""

    id: uuid.UUID
    post_id: uuid.UUID
    reporter_id: uuid.UUID
    reason: ReportReason
    details: str | None


class ReportResolvedData(msgspec.Struct, frozen=True, kw_only=True):
    """A moderator resolved a report (`remove` also deletes the post)."""

    id: uuid.UUID
    post_id: uuid.UUID
    action: ResolveAction
    resolved_by: uuid.UUID


class GoalsStudentRef(msgspec.Struct, frozen=True):
    """The part of a goals event the tagline cache needs (whose goal changed)."""

    student_id: uuid.UUID


class GoalsProfileReply(msgspec.Struct, frozen=True, kw_only=True):
    """The reply of `rpc.goals.profile`; only `goal_name` (the tagline) is used here."""

    user_id: uuid.UUID | None = None
    goal_name: str | None = None
    error: str | None = None


CATALOGUE: dict[str, type[msgspec.Struct]] = {
    POST_CREATED: PostData,
    POST_UPDATED: PostData,
    POST_PINNED: PostData,
    POST_UNPINNED: PostData,
    POST_DELETED: PostDeletedData,
    POST_LIKED: LikeData,
    POST_UNLIKED: LikeData,
    REPLY_CREATED: ReplyData,
    REPLY_UPDATED: ReplyData,
    REPLY_DELETED: ReplyDeletedData,
    REPORT_CREATED: ReportCreatedData,
    REPORT_RESOLVED: ReportResolvedData,
}
"""Every subject the posts service publishes, with its payload type (docs/events.md)."""
