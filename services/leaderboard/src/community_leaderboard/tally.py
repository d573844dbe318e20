"""Folding consumed events into per-student and per-day statistics, pure.

The ingest unit of work loads the state an event batch touches (students,
their day rows, counted items), folds the events into it here in stream order,
and writes back what changed. Nothing in this module does I/O, so the mapping
from an event to its effect on a student's numbers is unit-testable, and the
live consumers and the rebuild command share it.

Decisions encoded here (see docs/leaderboard.md):
- An event counts on the UTC day of its `occurred_at`.
- Posts, replies, likes and tasks are counted items: undoing one (a deleted
  post or reply, an unlike) takes it off the day it was counted on; the same
  like or task arriving twice counts once; liking one's own post never counts.
- Names and roles come from the events; the newest name (by `occurred_at`)
  wins. Every sender is assumed to be a student until an `AuthorRef` says
  otherwise; ranking skips instructors and admins.

Somewhat over 500 lines: the parsing, the keys a batch loads and the fold's
handlers read as one table of what each event does; split, each part would
make sense only next to the others.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from community_shared.events import Envelope

from community_leaderboard import events as ev
from community_leaderboard.planner import EARNED_CHANGED, LEARN_CHANGED
from community_leaderboard.rows import (
    ActivityRow,
    DayKey,
    DayState,
    ItemKey,
    ItemState,
    StudentState,
)
from community_leaderboard.rules import STUDENT_TRACKS, extend_streak

ACTIVITY_NAMESPACE = uuid.UUID("5b0b2f8e-6a43-4d35-9f8e-0c3f1c1f7a11")
ROLES = frozenset({"student", "instructor", "admin"})

PAYLOADS: dict[str, type[Any]] = {
    ev.POST_CREATED: ev.PostChanged,
    ev.POST_UPDATED: ev.PostChanged,
    ev.POST_PINNED: ev.PostChanged,
    ev.POST_UNPINNED: ev.PostChanged,
    ev.POST_DELETED: ev.PostDeleted,
    ev.POST_LIKED: ev.PostLike,
    ev.POST_UNLIKED: ev.PostLike,
    ev.REPLY_CREATED: ev.ReplyChanged,
    ev.REPLY_UPDATED: ev.ReplyChanged,
    ev.REPLY_DELETED: ev.ReplyDeleted,
    ev.GOAL_REQUESTED: ev.GoalRequested,
    ev.GOAL_ASSIGNED: ev.GoalAssigned,
    ev.GOAL_REJECTED: ev.GoalRejected,
    ev.GOAL_COMPLETED: ev.GoalCompleted,
    ev.SUBMISSION_CREATED: ev.SubmissionCreated,
    ev.SUBMISSION_APPROVED: ev.SubmissionApproved,
    ev.SUBMISSION_REJECTED: ev.SubmissionRejected,
    ev.STORY_PUBLISHED: ev.StoryPublished,
    ev.VIDEO_WATCHED: ev.VideoWatched,
    ev.TASK_ASSIGNED: ev.TaskAssigned,
    ev.TASK_COMPLETED: ev.TaskCompleted,
}

_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(type_) for name, type_ in PAYLOADS.items()
}


CREATIONS = frozenset({ev.POST_CREATED, ev.REPLY_CREATED})
"""Events creating an item whose later deletion names no author."""


class InvalidEvent(ValueError):
    """An event of a consumed type whose payload cannot be used."""


class Parsed(msgspec.Struct, frozen=True, gc=False):
    id: uuid.UUID
    type: str
    at: dt.datetime
    data: Any
    day: dt.date
    user: uuid.UUID
    """The student the event is about (the nil UUID when only a counted item says)."""
    item: tuple[str, str] | None
    """The counted item the event creates or undoes: a post, a reply, a like, a task."""


def as_utc(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def parse(envelope: Envelope) -> Parsed | None:
    """The typed event, or None for a type the leaderboard does not use.

    Raises `InvalidEvent` when the payload of a used type is malformed.
    """
    decoder = _decoders.get(envelope.type)
    if decoder is None:
        return None
    try:
        data = decoder.decode(envelope.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidEvent(f"{envelope.type}: {exc}") from exc
    if isinstance(data, ev.VideoWatched) and (data.watched_seconds < 0 or data.session_seconds < 0):
        raise InvalidEvent("negative seconds")
    if isinstance(data, ev.SubmissionApproved):
        for value in (data.amount, data.total_revenue_earned, data.current_mrr):
            parse_amount(value)
    at = as_utc(envelope.occurred_at)
    return Parsed(
        id=envelope.id,
        type=envelope.type,
        at=at,
        data=data,
        day=at.date(),
        user=_user_of(data),
        item=_item_of(envelope.type, data),
    )


def parse_amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidEvent("money must be a decimal string")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation as exc:
        raise InvalidEvent("money is not a number") from exc
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e13"):
        raise InvalidEvent("money out of range")
    return amount.quantize(Decimal("0.01"))


# --------------------------------------------------------------------------- keys


NOBODY = uuid.UUID(int=0)


def user_of(p: Parsed) -> uuid.UUID:
    return p.user


def _author(d: Any) -> uuid.UUID:
    return d.author.id  # type: ignore[no-any-return]


def _user(d: Any) -> uuid.UUID:
    return d.user_id  # type: ignore[no-any-return]


def _student(d: Any) -> uuid.UUID:
    return d.student_id  # type: ignore[no-any-return]


_USERS: dict[type[Any], Callable[[Any], uuid.UUID]] = {
    ev.PostChanged: _author,
    ev.ReplyChanged: _author,
    # the author of a deletion is read from the counted item; this only names a row
    ev.PostDeleted: lambda d: d.author_id or NOBODY,
    ev.ReplyDeleted: lambda d: NOBODY,
    ev.StoryPublished: lambda d: d.author_id,
    ev.PostLike: _user,
    ev.VideoWatched: _user,
    ev.TaskAssigned: _user,
    ev.TaskCompleted: _user,
}


def _user_of(d: Any) -> uuid.UUID:
    """The student an event's payload is about."""
    return _USERS.get(type(d), _student)(d)


def users_of(batch: list[Parsed], items: dict[ItemKey, ItemState]) -> set[uuid.UUID]:
    """Every student whose row the batch may change (including owners of undone items)."""
    users = {p.user for p in batch}
    users.update(item.user_id for item in items.values())
    users.discard(NOBODY)
    return users


def _item_of(type_: str, d: Any) -> ItemKey | None:
    if type_ in (ev.POST_CREATED, ev.POST_DELETED):
        return ("post", str(d.id))
    if type_ in (ev.REPLY_CREATED, ev.REPLY_DELETED):
        return ("reply", str(d.id))
    if type_ in (ev.POST_LIKED, ev.POST_UNLIKED):
        return ("like", f"{d.post_id}:{d.user_id}")
    if type_ == ev.TASK_ASSIGNED:
        return ("task_assigned", f"{d.user_id}:{d.task_id}")
    if type_ == ev.TASK_COMPLETED:
        return ("task_completed", f"{d.user_id}:{d.task_id}")
    return None


def item_keys(batch: list[Parsed]) -> set[ItemKey]:
    return {p.item for p in batch if p.item is not None}


def day_keys(batch: list[Parsed], items: dict[ItemKey, ItemState]) -> set[DayKey]:
    """Day rows the batch may change: the event's own day, and the day an undone
    item was counted on."""
    keys = {(p.user, p.day) for p in batch}
    keys.update((item.user_id, item.day) for item in items.values())
    return {k for k in keys if k[0].int != 0}


# --------------------------------------------------------------------------- fold


class Fold:
    """Applies parsed events, in order, to loaded state and records what changed."""

    def __init__(
        self,
        students: dict[uuid.UUID, StudentState],
        days: dict[DayKey, DayState],
        items: dict[ItemKey, ItemState],
    ) -> None:
        self.students = students
        self.days = days
        self._items: dict[ItemKey, ItemState | None] = dict(items)
        self.touched: set[uuid.UUID] = set()
        self.ranked: set[uuid.UUID] = set()
        self.dirty_days: set[DayKey] = set()
        self.items_added: dict[ItemKey, ItemState] = {}
        self.items_removed: set[ItemKey] = set()
        self.activities: list[ActivityRow] = []
        self.removed_subjects: set[str] = set()
        self.streak_recompute: set[uuid.UUID] = set()
        self.previous_tracks: dict[uuid.UUID, str | None] = {}
        self.earned_changed: set[uuid.UUID] = set()
        self.learn_changed: set[uuid.UUID] = set()

    # ----------------------------------------------------------------- helpers

    def student(self, user_id: uuid.UUID) -> StudentState:
        st = self.students.get(user_id)
        if st is None:
            st = self.students[user_id] = StudentState(user_id=user_id)
        return st

    def day(self, user_id: uuid.UUID, day: dt.date) -> DayState:
        key = (user_id, day)
        row = self.days.get(key)
        if row is None:
            row = self.days[key] = DayState(user_id=user_id, day=day)
        self.dirty_days.add(key)
        return row

    def _name(self, user_id: uuid.UUID, name: str, at: dt.datetime) -> None:
        """Keep the newest name by event time (names arrive from three streams)."""
        name = name.strip()[:200]
        st = self.student(user_id)
        if (
            name
            and (st.name_at is None or at >= st.name_at)
            and (st.name, st.name_at) != (name, at)
        ):
            st.name, st.name_at = name, at
            self.touched.add(user_id)

    def _role(self, user_id: uuid.UUID, role: str) -> None:
        st = self.student(user_id)
        if role in ROLES and role != st.role:
            st.role = role
            self.touched.add(user_id)
            self.ranked.add(user_id)

    def _track(self, user_id: uuid.UUID, track: str | None) -> None:
        st = self.student(user_id)
        if track in STUDENT_TRACKS and track != st.track:
            self.previous_tracks.setdefault(user_id, st.track)
            self.earned_changed.add(user_id)
            st.track = track
            self.touched.add(user_id)
            self.ranked.add(user_id)

    def _count(
        self,
        user_id: uuid.UUID,
        day: dt.date,
        at: dt.datetime,
        counter: str,
        delta: int = 1,
        *,
        active: bool,
        counted: bool = True,
    ) -> None:
        """Add `delta` to a counter on `day` and to the student's totals.

        `active` marks the day as one with an action (days active, streaks);
        `counted` says the change moves the student's points or board presence.
        """
        st = self.student(user_id)
        row = self.day(user_id, day)
        row.counters.add(counter, delta)
        st.counters.add(counter, delta)
        self.touched.add(user_id)
        if counted:
            self.ranked.add(user_id)
            if st.reached_at is None or at > st.reached_at:
                st.reached_at = at
            if delta > 0:
                if st.first_event_day is None or day < st.first_event_day:
                    st.first_event_day = day
                if st.last_event_day is None or day > st.last_event_day:
                    st.last_event_day = day
        if active and not row.active:
            row.active = True
            st.days_active += 1
            if st.last_active_day is None or day > st.last_active_day:
                st.last_active_day = day
            if user_id not in self.streak_recompute:
                current = (
                    (st.streak_start, st.streak_end)
                    if st.streak_start is not None and st.streak_end is not None
                    else None
                )
                extended = extend_streak(current, day)
                if extended is None:
                    self.streak_recompute.add(user_id)
                else:
                    st.streak_start, st.streak_end = extended

    def _create_item(self, key: ItemKey | None, user_id: uuid.UUID, day: dt.date) -> bool:
        if key is None or self._items.get(key) is not None:
            return False
        item = ItemState(user_id=user_id, day=day)
        self._items[key] = item
        self.items_added[key] = item
        self.items_removed.discard(key)
        return True

    def _remove_item(self, key: ItemKey | None) -> ItemState | None:
        if key is None:
            return None
        item = self._items.get(key)
        if item is None:
            return None
        self._items[key] = None
        self.items_added.pop(key, None)
        self.items_removed.add(key)
        return item

    def _uncount(self, key: ItemKey | None, counter: str, at: dt.datetime) -> None:
        item = self._remove_item(key)
        if item is not None:
            self._count(item.user_id, item.day, at, counter, -1, active=False)

    def _activity(
        self,
        p: Parsed,
        kind: str,
        user_id: uuid.UUID,
        subject_id: str,
        ref: dict[str, str],
        *,
        amount: Decimal | None = None,
        detail: str | None = None,
    ) -> None:
        if self.student(user_id).role != "student":
            return
        self.activities.append(
            ActivityRow(
                id=uuid.uuid5(ACTIVITY_NAMESPACE, f"{p.id}:{kind}"),
                kind=kind,
                user_id=user_id,
                occurred_at=p.at,
                subject_id=subject_id,
                amount=amount,
                detail=detail,
                ref=ref,
            )
        )

    def sort_changes(self, user_id: uuid.UUID) -> int:
        """Which of a student's sort scores besides points and actions the batch
        may have changed (`planner.EARNED_CHANGED`, `planner.LEARN_CHANGED`)."""
        return (EARNED_CHANGED if user_id in self.earned_changed else 0) | (
            LEARN_CHANGED if user_id in self.learn_changed else 0
        )

    # ----------------------------------------------------------------- events

    def apply(self, p: Parsed) -> None:
        handler = _HANDLERS.get(type(p.data))
        if handler is not None:
            handler(self, p, p.data)

    def _post_changed(self, p: Parsed, d: ev.PostChanged) -> None:
        self._name(d.author.id, d.author.name, p.at)
        self._role(d.author.id, d.author.role)
        if p.type == ev.POST_CREATED and self._create_item(p.item, d.author.id, p.day):
            self._count(d.author.id, p.day, p.at, "posts", active=True)
            if d.visibility == "public":
                self._activity(p, "post.created", d.author.id, str(d.id), {"post_id": str(d.id)})

    def _post_deleted(self, p: Parsed, d: ev.PostDeleted) -> None:
        self._uncount(p.item, "posts", p.at)
        self.removed_subjects.add(str(d.id))
        self.activities = [
            a for a in self.activities if (a.kind, a.subject_id) != ("post.created", str(d.id))
        ]

    def _post_like(self, p: Parsed, d: ev.PostLike) -> None:
        self._name(d.user_id, d.user_name, p.at)
        if p.type == ev.POST_UNLIKED:
            self._uncount(p.item, "likes_given", p.at)
        elif d.post_author_id != d.user_id and self._create_item(p.item, d.user_id, p.day):
            self._count(d.user_id, p.day, p.at, "likes_given", active=True)

    def _reply_changed(self, p: Parsed, d: ev.ReplyChanged) -> None:
        self._name(d.author.id, d.author.name, p.at)
        self._role(d.author.id, d.author.role)
        if p.type == ev.REPLY_CREATED and self._create_item(p.item, d.author.id, p.day):
            self._count(d.author.id, p.day, p.at, "replies", active=True)

    def _reply_deleted(self, p: Parsed, d: ev.ReplyDeleted) -> None:
        self._uncount(p.item, "replies", p.at)

    def _named(
        self, p: Parsed, d: ev.GoalRequested | ev.GoalRejected | ev.SubmissionRejected
    ) -> None:
        self._name(d.student_id, d.student_name, p.at)

    def _goal_assigned(self, p: Parsed, d: ev.GoalAssigned) -> None:
        self._name(d.student_id, d.student_name, p.at)
        self._track(d.student_id, d.track)
        st = self.student(d.student_id)
        st.goal_slug, st.goal_name = d.goal_slug[:200], (d.goal_name or d.goal_slug)[:200]

    def _goal_completed(self, p: Parsed, d: ev.GoalCompleted) -> None:
        self._name(d.student_id, d.student_name, p.at)
        self._track(d.student_id, d.track)
        self._count(d.student_id, p.day, p.at, "completed_goals", active=False)
        self._activity(
            p,
            "goal.completed",
            d.student_id,
            d.goal_slug,
            {"goal_slug": d.goal_slug},
            detail=(d.goal_name or d.goal_slug)[:200] or None,
        )

    def _submission_created(self, p: Parsed, d: ev.SubmissionCreated) -> None:
        self._name(d.student_id, d.student_name, p.at)
        self._track(d.student_id, d.track)
        self._count(d.student_id, p.day, p.at, "submissions", active=True)

    def _story_published(self, p: Parsed, d: ev.StoryPublished) -> None:
        if not d.anonymous:
            self._activity(
                p,
                "story.published",
                d.author_id,
                str(d.story_id),
                {"story_id": str(d.story_id)},
                detail=d.title[:200] or None,
            )

    def _video_watched(self, p: Parsed, d: ev.VideoWatched) -> None:
        self._count(d.user_id, p.day, p.at, "videos_watched", active=True)
        self.learn_changed.add(d.user_id)
        # the seconds ride along with the count (same day, same student)
        row, st = self.days[(d.user_id, p.day)], self.students[d.user_id]
        row.counters.watched_seconds += d.watched_seconds
        row.counters.session_seconds += d.session_seconds
        st.counters.watched_seconds += d.watched_seconds
        st.counters.session_seconds += d.session_seconds

    def _task_assigned(self, p: Parsed, d: ev.TaskAssigned) -> None:
        if self._create_item(p.item, d.user_id, p.day):
            self._count(d.user_id, p.day, p.at, "tasks_assigned", active=False, counted=False)

    def _task_completed(self, p: Parsed, d: ev.TaskCompleted) -> None:
        if self._create_item(p.item, d.user_id, p.day):
            self._count(d.user_id, p.day, p.at, "tasks_completed", active=True)

    def _approve(self, p: Parsed, d: ev.SubmissionApproved) -> None:
        user = d.student_id
        self._name(user, d.student_name, p.at)
        self._track(user, d.track)
        st = self.student(user)
        total = parse_amount(d.total_revenue_earned)
        mrr = parse_amount(d.current_mrr)
        row = self.day(user, p.day)
        row.revenue_delta += total - st.total_revenue
        row.mrr_delta += mrr - st.current_mrr
        if total != st.total_revenue or mrr != st.current_mrr:
            st.earned_at = p.at
            self.earned_changed.add(user)
        st.total_revenue, st.current_mrr = total, mrr
        self._count(user, p.day, p.at, "approvals", active=False)
        self._activity(
            p,
            "submission.approved",
            user,
            str(d.review_id),
            {"review_id": str(d.review_id)},
            amount=parse_amount(d.amount),
        )


_HANDLERS: dict[type[Any], Callable[[Fold, Parsed, Any], None]] = {
    ev.PostChanged: Fold._post_changed,
    ev.PostDeleted: Fold._post_deleted,
    ev.PostLike: Fold._post_like,
    ev.ReplyChanged: Fold._reply_changed,
    ev.ReplyDeleted: Fold._reply_deleted,
    ev.GoalRequested: Fold._named,
    ev.GoalRejected: Fold._named,
    ev.SubmissionRejected: Fold._named,
    ev.GoalAssigned: Fold._goal_assigned,
    ev.GoalCompleted: Fold._goal_completed,
    ev.SubmissionCreated: Fold._submission_created,
    ev.SubmissionApproved: Fold._approve,
    ev.StoryPublished: Fold._story_published,
    ev.VideoWatched: Fold._video_watched,
    ev.TaskAssigned: Fold._task_assigned,
    ev.TaskCompleted: Fold._task_completed,
}
"""What each payload type does to the statistics (`Fold.apply`)."""
