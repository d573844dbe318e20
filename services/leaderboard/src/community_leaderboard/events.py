"""The events the leaderboard consumes and publishes (the `data` of each envelope).

Consumed payloads declare only the fields the leaderboard reads; unknown fields
are ignored so publishers may add to their payloads. Money arrives as a
decimal string (numbers are tolerated). The `learning.*` payloads are the
integration point for the course platform (SPEC section 7).
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

SOURCE = "leaderboard"

# consumed
POST_CREATED = "posts.post.created"
POST_UPDATED = "posts.post.updated"
POST_PINNED = "posts.post.pinned"
POST_UNPINNED = "posts.post.unpinned"
POST_DELETED = "posts.post.deleted"
POST_LIKED = "posts.post.liked"
POST_UNLIKED = "posts.post.unliked"
REPLY_CREATED = "posts.reply.created"
REPLY_UPDATED = "posts.reply.updated"
REPLY_DELETED = "posts.reply.deleted"
GOAL_REQUESTED = "goals.goal.requested"
GOAL_ASSIGNED = "goals.goal.assigned"
GOAL_REJECTED = "goals.goal.rejected"
GOAL_COMPLETED = "goals.goal.completed"
SUBMISSION_CREATED = "goals.submission.created"
SUBMISSION_APPROVED = "goals.submission.approved"
SUBMISSION_REJECTED = "goals.submission.rejected"
STORY_PUBLISHED = "goals.story.published"
VIDEO_WATCHED = "learning.video.watched"
TASK_ASSIGNED = "learning.task.assigned"
TASK_COMPLETED = "learning.task.completed"

CONSUMED_SUBJECTS: tuple[str, ...] = ("posts.>", "goals.>", "learning.>")

# published
RANK_CHANGED = "leaderboard.rank.changed"
BADGE_AWARDED = "leaderboard.badge.awarded"
BADGE_REVOKED = "leaderboard.badge.revoked"
STATS_UPDATED = "leaderboard.stats.updated"
ACTIVITY_RECORDED = "leaderboard.activity.recorded"

Money = str | int | float


# --------------------------------------------------------------------------- posts


class AuthorRef(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str = ""
    role: str = "student"


class PostChanged(msgspec.Struct, frozen=True, kw_only=True):
    """posts.post.created / updated / pinned / unpinned."""

    id: uuid.UUID
    author: AuthorRef
    visibility: str = "public"


class PostDeleted(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    author_id: uuid.UUID | None = None


class PostLike(msgspec.Struct, frozen=True, kw_only=True):
    """posts.post.liked / unliked."""

    post_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str = ""
    post_author_id: uuid.UUID | None = None


class ReplyChanged(msgspec.Struct, frozen=True, kw_only=True):
    """posts.reply.created / updated."""

    id: uuid.UUID
    post_id: uuid.UUID
    author: AuthorRef


class ReplyDeleted(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID


# --------------------------------------------------------------------------- goals


class GoalRequested(msgspec.Struct, frozen=True, kw_only=True):
    student_id: uuid.UUID
    student_name: str = ""


class GoalAssigned(msgspec.Struct, frozen=True, kw_only=True):
    student_id: uuid.UUID
    student_name: str = ""
    track: str
    goal_slug: str
    goal_name: str = ""


class GoalRejected(msgspec.Struct, frozen=True, kw_only=True):
    student_id: uuid.UUID
    student_name: str = ""


class GoalCompleted(msgspec.Struct, frozen=True, kw_only=True):
    student_id: uuid.UUID
    student_name: str = ""
    track: str | None = None
    goal_slug: str = ""
    goal_name: str = ""


class SubmissionCreated(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str = ""
    track: str | None = None


class SubmissionApproved(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str = ""
    track: str | None = None
    amount: Money
    total_revenue_earned: Money
    current_mrr: Money


class SubmissionRejected(msgspec.Struct, frozen=True, kw_only=True):
    student_id: uuid.UUID
    student_name: str = ""


class StoryPublished(msgspec.Struct, frozen=True, kw_only=True):
    story_id: uuid.UUID
    author_id: uuid.UUID
    title: str = ""
    anonymous: bool = False


# --------------------------------------------------------------------------- learning


class VideoWatched(msgspec.Struct, frozen=True, kw_only=True):
    """learning.video.watched: one viewing of a video within a platform session."""

    user_id: uuid.UUID
    video_id: str | int
    watched_seconds: int
    session_seconds: int


class TaskAssigned(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    task_id: str | int


class TaskCompleted(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    task_id: str | int


# --------------------------------------------------------------------------- published


class RankChanged(msgspec.Struct, frozen=True, kw_only=True):
    """A student's rank on one board changed (`null` rank = not on the board)."""

    board: str
    user_id: uuid.UUID
    old_rank: int | None
    new_rank: int | None
    points: int


class BadgeChanged(msgspec.Struct, frozen=True, kw_only=True):
    """leaderboard.badge.awarded / leaderboard.badge.revoked."""

    user_id: uuid.UUID
    name: str
    badge: str


class StatsUpdated(msgspec.Struct, frozen=True, kw_only=True):
    total_students: int
    active_this_week: int
    total_earnings: str
    average_learn_rate: float
    students_by_track: dict[str, int]


class ActivityRecorded(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    user_id: uuid.UUID
    name: str
    text: str
    occurred_at: dt.datetime
    ref: dict[str, str]
