"""The HTTP API of the goals service: msgspec Structs in and out, and input checks.

Request bodies are decoded strictly into the `*In` Structs (wrong JSON types
are a 400 there); the `clean_*` functions below then check what types cannot
say (lengths after trimming, https URLs, money) and raise a 400 before anything
is written. Money leaves as a string with two decimals.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

import msgspec
from community_shared import text
from community_shared.errors import InvalidInput
from community_shared.money import InvalidMoney, parse_money

MAX_AMOUNT = Decimal("10000000")
MAX_PROOF_URL = 2048
MAX_NOTE = 1000
MAX_REASON = 1000
MAX_TITLE = 200
MAX_STORY = 10000
MAX_SLUG = 100

ReviewKind = Literal["goal_request", "revenue_submission"]
ReviewStatus = Literal["pending", "approved", "rejected"]
ProfileGoalStatus = Literal["none", "pending_approval", "active", "completed"]
SubmissionState = Literal["none", "pending", "approved", "rejected"]
StoryStatus = Literal["pending", "published"]


# --------------------------------------------------------------------------- in


class GoalRequestIn(msgspec.Struct, kw_only=True):
    goal_slug: str


class SubmissionIn(msgspec.Struct, kw_only=True):
    # A JSON number or a decimal string; msgspec decodes either exactly (no float).
    amount: Decimal
    proof_url: str
    note: str | None = None


class RejectIn(msgspec.Struct, kw_only=True):
    reason: str | None = None


class StoryIn(msgspec.Struct, kw_only=True):
    title: str
    story: str
    anonymous: bool
    earnings_amount: Decimal | None = None


def clean_text(value: str | None, field: str, *, max_length: int, required: bool) -> str | None:
    """Trim `value`; 400 when required and blank, or longer than `max_length`.

    An optional value that is blank becomes None.
    """
    return text.clean_text(
        value, field, max_length=max_length, required=required, blank="is required"
    )


def required_text(value: str | None, field: str, *, max_length: int) -> str:
    return text.required_text(value, field, max_length=max_length, blank="is required")


def clean_amount(value: Decimal, field: str = "amount") -> Decimal:
    """> 0, <= 10,000,000, at most two decimals; 400 otherwise."""
    try:
        return parse_money(value, maximum=MAX_AMOUNT)
    except InvalidMoney as exc:
        raise InvalidInput(f"{field}: {exc}") from exc


def clean_proof_url(value: str) -> str:
    """An absolute https URL with a host, at most 2048 characters; 400 otherwise."""
    return text.https_url(value, "proof_url", max_length=MAX_PROOF_URL)


def clean_slug(value: str) -> str:
    slug = value.strip()
    if not slug or len(slug) > MAX_SLUG:
        raise InvalidInput("unknown goal_slug")
    return slug


# --------------------------------------------------------------------------- out


class StudentRef(msgspec.Struct, kw_only=True):
    """The student a review or a story is about."""

    id: uuid.UUID
    name: str


class GoalOut(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    target: str
    position: int


class TrackOut(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    metric: Literal["total_revenue", "mrr"]
    goals: list[GoalOut]


class TracksOut(msgspec.Struct, kw_only=True):
    items: list[TrackOut]


class CurrentGoalOut(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    target: str


class ProgressOut(msgspec.Struct, kw_only=True):
    amount: str
    target: str | None
    percent: float


class CompletedGoalOut(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    completed_at: dt.datetime
    days_to_complete: int
    amount: str


class GoalRequestOut(msgspec.Struct, kw_only=True):
    """The student's latest goal request (pending, approved or rejected)."""

    id: uuid.UUID
    goal_slug: str
    status: ReviewStatus
    created_at: dt.datetime
    reviewed_at: dt.datetime | None
    rejection_reason: str | None


class ProfileOut(msgspec.Struct, kw_only=True):
    user_id: uuid.UUID
    name: str
    track: str | None
    current_goal: CurrentGoalOut | None
    goal_status: ProfileGoalStatus
    progress: ProgressOut
    total_revenue_earned: str
    current_mrr: str
    completed_goals: list[CompletedGoalOut]
    submission_state: SubmissionState
    last_verified_amount: str | None
    rejection_reason: str | None
    goal_request: GoalRequestOut | None


class SubmissionOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    goal_slug: str
    amount: str
    proof_url: str
    note: str | None
    status: ReviewStatus
    created_at: dt.datetime
    reviewed_at: dt.datetime | None
    rejection_reason: str | None


class ReviewOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: ReviewKind
    status: ReviewStatus
    student: StudentRef
    track: str
    goal_slug: str
    amount: str | None
    proof_url: str | None
    note: str | None
    created_at: dt.datetime
    reviewed_by: uuid.UUID | None
    reviewed_at: dt.datetime | None
    rejection_reason: str | None


class StudentDetailOut(msgspec.Struct, kw_only=True):
    """A student's profile and their review history (newest first, latest 100)."""

    profile: ProfileOut
    history: list[ReviewOut]


class StoryPublicOut(msgspec.Struct, kw_only=True):
    """A published story as anyone sees it: an anonymous author is only a pseudonym."""

    id: uuid.UUID
    title: str
    story: str
    earnings_amount: str | None
    author_name: str
    author_id: uuid.UUID | None
    published_at: dt.datetime


class StoryOut(msgspec.Struct, kw_only=True):
    """A story as its author and moderators see it.

    `author_name`/`author_id` are what the public will see; `author` is the real
    author (the caller themselves, or a moderator verifying the story).
    """

    id: uuid.UUID
    title: str
    story: str
    earnings_amount: str | None
    anonymous: bool
    status: StoryStatus
    author_name: str
    author_id: uuid.UUID | None
    author: StudentRef
    created_at: dt.datetime
    published_at: dt.datetime | None
