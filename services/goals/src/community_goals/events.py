"""The events the goals service publishes (the `data` of each envelope).

Consumers (the gateway, the leaderboard) rely on these field names. Money is
a string with two decimals, times are RFC 3339 UTC, ids UUID strings. Every
event of a student's goals and reviews uses the aggregate `student:<id>`, so a
student's events are published in the order they were committed.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from community_shared.subjects import GOAL_ASSIGNED as GOAL_ASSIGNED
from community_shared.subjects import GOAL_COMPLETED as GOAL_COMPLETED
from community_shared.subjects import GOAL_REJECTED as GOAL_REJECTED
from community_shared.subjects import GOAL_REQUESTED as GOAL_REQUESTED
from community_shared.subjects import STORY_CREATED as STORY_CREATED
from community_shared.subjects import STORY_PUBLISHED as STORY_PUBLISHED
from community_shared.subjects import SUBMISSION_APPROVED as SUBMISSION_APPROVED
from community_shared.subjects import SUBMISSION_CREATED as SUBMISSION_CREATED
from community_shared.subjects import SUBMISSION_REJECTED as SUBMISSION_REJECTED

SOURCE = "goals"


class GoalRequested(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    goal_name: str
    created_at: dt.datetime


class GoalAssigned(msgspec.Struct, frozen=True, kw_only=True):
    """A goal became the student's goal: by an approved request (`review_id` set)
    or by advancing after a completion (`review_id` and `reviewed_by` null)."""

    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    goal_name: str
    target: str
    review_id: uuid.UUID | None
    reviewed_by: uuid.UUID | None


class GoalRejected(msgspec.Struct, frozen=True, kw_only=True):
    """A goal request was rejected; the student's goal is unchanged."""

    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    goal_slug: str
    reason: str
    reviewed_by: uuid.UUID


class GoalCompleted(msgspec.Struct, frozen=True, kw_only=True):
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    goal_name: str
    target: str
    amount: str
    days_to_complete: int
    completed_at: dt.datetime


class SubmissionCreated(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    amount: str
    proof_url: str
    note: str | None
    created_at: dt.datetime


class SubmissionApproved(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    amount: str
    total_revenue_earned: str
    current_mrr: str
    reviewed_by: uuid.UUID
    reviewed_at: dt.datetime


class SubmissionRejected(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    amount: str
    reason: str
    reviewed_by: uuid.UUID
    reviewed_at: dt.datetime


class StoryCreated(msgspec.Struct, frozen=True, kw_only=True):
    """`anonymous` tells consumers not to show the author with the story."""

    story_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    created_at: dt.datetime
    anonymous: bool


class StoryPublished(msgspec.Struct, frozen=True, kw_only=True):
    """`anonymous` tells consumers not to show the author with the story."""

    story_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    published_at: dt.datetime
    anonymous: bool


CATALOGUE: dict[str, type[msgspec.Struct]] = {
    GOAL_REQUESTED: GoalRequested,
    GOAL_ASSIGNED: GoalAssigned,
    GOAL_REJECTED: GoalRejected,
    GOAL_COMPLETED: GoalCompleted,
    SUBMISSION_CREATED: SubmissionCreated,
    SUBMISSION_APPROVED: SubmissionApproved,
    SUBMISSION_REJECTED: SubmissionRejected,
    STORY_CREATED: StoryCreated,
    STORY_PUBLISHED: StoryPublished,
}
"""Every subject the goals service publishes, with its payload (the events catalogue)."""


def student_aggregate(student_id: uuid.UUID) -> str:
    return f"student:{student_id}"


def story_aggregate(story_id: uuid.UUID) -> str:
    return f"story:{story_id}"
