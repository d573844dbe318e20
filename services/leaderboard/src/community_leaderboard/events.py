"""The events the leaderboard publishes, and the course platform's events it consumes.

`leaderboard.*` events are published by the leaderboard (source
`leaderboard`). `learning.*` events are published by the course platform
(source `learning`) into the same stream and envelope; the leaderboard is
their consumer, so their payloads are documented here. The leaderboard also
consumes `posts.>` and `goals.>`, whose payloads are their publishers'.
Consumed payloads declare only the fields the leaderboard reads; unknown
fields are ignored so publishers may add to their payloads.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from community_shared.subjects import GOAL_ASSIGNED as GOAL_ASSIGNED
from community_shared.subjects import GOAL_COMPLETED as GOAL_COMPLETED
from community_shared.subjects import GOAL_REJECTED as GOAL_REJECTED
from community_shared.subjects import GOAL_REQUESTED as GOAL_REQUESTED
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
from community_shared.subjects import STORY_PUBLISHED as STORY_PUBLISHED
from community_shared.subjects import SUBMISSION_APPROVED as SUBMISSION_APPROVED
from community_shared.subjects import SUBMISSION_CREATED as SUBMISSION_CREATED
from community_shared.subjects import SUBMISSION_REJECTED as SUBMISSION_REJECTED

from community_leaderboard.schemas import BoardItem

SOURCE = "leaderboard"

# consumed (besides the posts and goals subjects above)
VIDEO_WATCHED = "learning.video.watched"
TASK_ASSIGNED = "learning.task.assigned"
TASK_COMPLETED = "learning.task.completed"

CONSUMED_SUBJECTS: tuple[str, ...] = ("posts.>", "goals.>", "learning.>")

# published
RANK_CHANGED = "leaderboard.rank.changed"
BADGE_AWARDED = "leaderboard.badge.awarded"
BADGE_REVOKED = "leaderboard.badge.revoked"
STATS_UPDATED = "leaderboard.stats.updated"
TOP_CHANGED = "leaderboard.top.changed"
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
    """A student watched a video: `watched_seconds` of it, during a platform session
    of `session_seconds` (learn rate = 60 x watched / session, in minutes per hour).
    Both are whole seconds, 0 or more."""

    user_id: uuid.UUID
    video_id: str | int
    watched_seconds: int
    session_seconds: int


class TaskAssigned(msgspec.Struct, frozen=True, kw_only=True):
    """A task was assigned to a student; a task counts once per (user, task)."""

    user_id: uuid.UUID
    task_id: str | int


class TaskCompleted(msgspec.Struct, frozen=True, kw_only=True):
    """A student completed a task; a task counts once per (user, task)."""

    user_id: uuid.UUID
    task_id: str | int


# --------------------------------------------------------------------------- published


class RankChanged(msgspec.Struct, frozen=True, kw_only=True):
    """A student's rank on one board (`<window>:<track>`) changed: one event for the
    student who moved, none for those shifted by it. A null rank means not on the
    board (joined: `old_rank` null; left, e.g. opted out: `new_rank` null). Ranks
    of one board are announced in the order the moves happened."""

    board: str
    user_id: uuid.UUID
    old_rank: int | None
    new_rank: int | None
    points: int


class BadgeChanged(msgspec.Struct, frozen=True, kw_only=True):
    """A badge was awarded to (or, by rule, revoked from) a student. `badge`:
    top-performer | consistent | fast-learner | goal-crusher; `name` is the
    student's. Not announced for a student who opted out of the leaderboard."""

    user_id: uuid.UUID
    name: str
    badge: str


class TopChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The first page of a board (`<window>:<track>`) changed: `items` are its first
    20 entries exactly as `GET /leaderboard?window=&track=&sort=rank&limit=20`
    returns them (privacy applied: `earned` null for a student who hides it,
    opted-out students absent). At most one per board per second; only the
    latest of a board matters."""

    board: str
    items: list[BoardItem]


class StatsUpdated(msgspec.Struct, frozen=True, kw_only=True):
    """Community totals changed; published at most once per second."""

    total_students: int
    active_this_week: int
    total_earnings: str
    average_learn_rate: float
    students_by_track: dict[str, int]


class ActivityRecorded(msgspec.Struct, frozen=True, kw_only=True):
    """A line for the live activity ticker (never for an opted-out student).
    `type`: post.created | goal.completed | submission.approved | badge.awarded |
    story.published; `ref` names the thing (post_id, goal_slug, review_id, badge,
    story_id)."""

    id: uuid.UUID
    type: str
    user_id: uuid.UUID
    name: str
    text: str
    occurred_at: dt.datetime
    ref: dict[str, str]


CATALOGUE: dict[str, type[msgspec.Struct]] = {
    RANK_CHANGED: RankChanged,
    TOP_CHANGED: TopChanged,
    BADGE_AWARDED: BadgeChanged,
    BADGE_REVOKED: BadgeChanged,
    STATS_UPDATED: StatsUpdated,
    ACTIVITY_RECORDED: ActivityRecorded,
    VIDEO_WATCHED: VideoWatched,
    TASK_ASSIGNED: TaskAssigned,
    TASK_COMPLETED: TaskCompleted,
}
