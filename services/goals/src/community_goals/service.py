"""The use cases of the goals service: one function per thing a user can do.

Each change runs in one database transaction that also writes its events to
the outbox. Reviews are decided race-free: the use case locks the student row
first (every use case that creates or decides a student's review takes the
student lock before touching the review, so locks are always taken in the same
order), then flips the review with `UPDATE ... WHERE status = 'pending'`; of
two instructors deciding at once exactly one sees the row change. Inputs are
checked before the transaction opens, so a bad request writes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import asyncpg
import msgspec
from community_shared.auth import Identity
from community_shared.events import make_event, utcnow
from community_shared.idempotency import IdempotencyKey, claim, remember
from community_shared.money import format_money
from community_shared.outbox import enqueue
from community_shared.pagination import Page, decode_cursor, encode_cursor
from community_shared.web import Runtime
from litestar.exceptions import ClientException, NotFoundException, ValidationException

from community_goals import events as ev
from community_goals import rules, store
from community_goals.schemas import (
    MAX_NOTE,
    MAX_REASON,
    MAX_STORY,
    MAX_TITLE,
    CompletedGoalOut,
    CurrentGoalOut,
    GoalOut,
    GoalRequestOut,
    ProfileGoalStatus,
    ProfileOut,
    ProgressOut,
    ReviewOut,
    StoryIn,
    StoryOut,
    StoryPublicOut,
    StudentDetailOut,
    StudentRef,
    SubmissionIn,
    SubmissionOut,
    TrackOut,
    TracksOut,
    clean_amount,
    clean_proof_url,
    clean_slug,
    clean_text,
    required_text,
)

SCHEMA = "goals"
HISTORY_LIMIT = 100


class CursorKey(msgspec.Struct, frozen=True, array_like=True):
    """The keyset of a page: the sort time and id of the last item."""

    at: dt.datetime
    id: uuid.UUID


def _after(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    key = decode_cursor(cursor, CursorKey)
    return None if key is None else (key.at, key.id)


class Conflict(ClientException):
    status_code = 409


def money(amount: Decimal) -> str:
    text = format_money(amount)
    assert text is not None
    return text


def optional_money(amount: Decimal | None) -> str | None:
    return format_money(amount)


@dataclass(frozen=True)
class Catalog:
    """The seeded tracks and goals, with their database ids."""

    tracks: tuple[rules.Track, ...]
    goal_ids: dict[str, uuid.UUID]  # slug -> id
    goals_by_id: dict[uuid.UUID, rules.Goal]

    def track(self, slug: str) -> rules.Track:
        return next(t for t in self.tracks if t.slug == slug)

    def goal(self, slug: str) -> rules.Goal | None:
        goal_id = self.goal_ids.get(slug)
        return None if goal_id is None else self.goals_by_id[goal_id]

    def by_id(self, goal_id: uuid.UUID) -> rules.Goal:
        return self.goals_by_id[goal_id]

    def id_of(self, goal: rules.Goal) -> uuid.UUID:
        return self.goal_ids[goal.slug]

    @classmethod
    def from_rows(cls, rows: Sequence[asyncpg.Record]) -> Catalog:
        tracks: list[rules.Track] = []
        goal_ids: dict[str, uuid.UUID] = {}
        by_id: dict[uuid.UUID, rules.Goal] = {}
        current: list[asyncpg.Record] = []

        def close_track() -> None:
            if not current:
                return
            first = current[0]
            goals = tuple(
                rules.Goal(
                    slug=r["slug"],
                    name=r["name"],
                    target=r["target"],
                    position=r["position"],
                    track=first["track_slug"],
                )
                for r in current
            )
            for row, goal in zip(current, goals, strict=True):
                goal_ids[goal.slug] = row["goal_id"]
                by_id[row["goal_id"]] = goal
            tracks.append(
                rules.Track(
                    slug=first["track_slug"],
                    name=first["track_name"],
                    metric=first["metric"],
                    goals=goals,
                )
            )
            current.clear()

        for row in rows:
            if current and current[0]["track_slug"] != row["track_slug"]:
                close_track()
            current.append(row)
        close_track()
        return cls(tracks=tuple(tracks), goal_ids=goal_ids, goals_by_id=by_id)


class GoalsService:
    """The use cases of one running service.

    Built with the app, before anything connects; `bind` hands it the runtime
    whose database pool the use cases use (done by whichever of the request
    dependency or the NATS hook runs first).
    """

    def __init__(self) -> None:
        self._runtime: Runtime | None = None
        self._catalog: Catalog | None = None

    def bind(self, runtime: Runtime) -> GoalsService:
        self._runtime = runtime
        return self

    @property
    def _pool(self) -> asyncpg.Pool:
        assert self._runtime is not None, "the goals service is not bound to a runtime"
        return self._runtime.db

    async def catalog(self) -> Catalog:
        """Tracks and goals are seeded by a migration and never change at run time."""
        if self._catalog is None:
            async with self._pool.acquire() as conn:
                self._catalog = Catalog.from_rows(await store.fetch_catalog(conn))
        return self._catalog

    # ----------------------------------------------------------------------- tracks

    async def list_tracks(self) -> TracksOut:
        catalog = await self.catalog()
        return TracksOut(
            items=[
                TrackOut(
                    slug=t.slug,
                    name=t.name,
                    metric=t.metric,
                    goals=[
                        GoalOut(
                            slug=g.slug, name=g.name, target=money(g.target), position=g.position
                        )
                        for g in t.goals
                    ],
                )
                for t in catalog.tracks
            ]
        )

    # ----------------------------------------------------------------------- profile

    async def my_profile(self, identity: Identity) -> ProfileOut:
        student_id = _user(identity)
        async with self._pool.acquire() as conn:
            profile = await self._profile(conn, student_id)
            name = _display_name(identity)
            if profile is None or profile.name != name:
                # First use (or a new display name): the profile is created from the token.
                await store.upsert_student(conn, student_id, name)
                profile = await self._profile(conn, student_id)
        assert profile is not None
        return profile

    async def student_detail(self, student_id: uuid.UUID) -> StudentDetailOut:
        catalog = await self.catalog()
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            profile = await self._profile(conn, student_id)
            if profile is None:
                raise NotFoundException(detail="no such student")
            rows = await store.list_history(conn, student_id, limit=HISTORY_LIMIT)
        return StudentDetailOut(profile=profile, history=[_review_out(catalog, r) for r in rows])

    async def _profile(self, conn: asyncpg.Connection, student_id: uuid.UUID) -> ProfileOut | None:
        catalog = await self.catalog()
        row = await store.fetch_student(conn, student_id)
        if row is None:
            return None
        latest = {r["kind"]: r for r in await store.fetch_latest_reviews(conn, student_id)}
        completed = await store.fetch_completed(conn, student_id)
        request = latest.get("goal_request")
        submission = latest.get("revenue_submission")

        # A pending goal request is what the student is shown until it is decided;
        # a rejected one leaves the goal in effect as it was.
        goal: rules.Goal | None
        goal_status: ProfileGoalStatus
        if request is not None and request["status"] == "pending":
            goal, goal_status = catalog.by_id(request["goal_id"]), "pending_approval"
        elif row["current_goal_id"] is not None:
            goal, goal_status = catalog.by_id(row["current_goal_id"]), row["goal_status"]
        else:
            goal, goal_status = None, "none"

        metrics = rules.Metrics(row["total_revenue_earned"], row["current_mrr"])
        if goal is None:
            progress = ProgressOut(amount=money(rules.ZERO), target=None, percent=0.0)
        else:
            amount = rules.progress_of(catalog.track(goal.track).metric, metrics)
            progress = ProgressOut(
                amount=money(amount),
                target=money(goal.target),
                percent=float(rules.percent(amount, goal.target)),
            )
        return ProfileOut(
            user_id=row["id"],
            name=row["name"],
            track=goal.track if goal else None,
            current_goal=(
                CurrentGoalOut(slug=goal.slug, name=goal.name, target=money(goal.target))
                if goal
                else None
            ),
            goal_status=goal_status,
            progress=progress,
            total_revenue_earned=money(metrics.total_revenue_earned),
            current_mrr=money(metrics.current_mrr),
            completed_goals=[
                CompletedGoalOut(
                    slug=catalog.by_id(c["goal_id"]).slug,
                    name=catalog.by_id(c["goal_id"]).name,
                    completed_at=c["completed_at"],
                    days_to_complete=c["days_to_complete"],
                    amount=money(c["amount"]),
                )
                for c in completed
            ],
            submission_state=submission["status"] if submission else "none",
            last_verified_amount=optional_money(row["last_verified_amount"]),
            rejection_reason=(
                submission["rejection_reason"]
                if submission and submission["status"] == "rejected"
                else None
            ),
            goal_request=(
                GoalRequestOut(
                    id=request["id"],
                    goal_slug=catalog.by_id(request["goal_id"]).slug,
                    status=request["status"],
                    created_at=request["created_at"],
                    reviewed_at=request["reviewed_at"],
                    rejection_reason=request["rejection_reason"],
                )
                if request
                else None
            ),
        )

    # ----------------------------------------------------------------------- goal requests

    async def request_goal(self, identity: Identity, goal_slug: str) -> ProfileOut:
        student_id = _user(identity)
        catalog = await self.catalog()
        goal = catalog.goal(clean_slug(goal_slug))
        if goal is None:
            raise ValidationException(detail="unknown goal_slug")
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                student = await self._lock_student(conn, identity)
                await _refuse_if_pending(conn, student_id)
                if student["current_goal_id"] == catalog.id_of(goal):
                    raise Conflict(detail=f"{goal.slug} is already your goal")
                review_id = uuid.uuid4()
                created_at = await _insert_review(
                    conn,
                    review_id=review_id,
                    kind="goal_request",
                    student_id=student_id,
                    goal_id=catalog.id_of(goal),
                )
                await _emit(
                    conn,
                    ev.GOAL_REQUESTED,
                    ev.GoalRequested(
                        review_id=review_id,
                        student_id=student_id,
                        student_name=student["name"],
                        track=goal.track,
                        goal_slug=goal.slug,
                        goal_name=goal.name,
                        created_at=created_at,
                    ),
                    actor_id=student_id,
                    aggregate=ev.student_aggregate(student_id),
                )
            profile = await self._profile(conn, student_id)
        assert profile is not None
        return profile

    # ----------------------------------------------------------------------- submissions

    async def submit_revenue(
        self, identity: Identity, data: SubmissionIn, idempotency: IdempotencyKey | None = None
    ) -> SubmissionOut:
        student_id = _user(identity)
        amount = clean_amount(data.amount)
        proof_url = clean_proof_url(data.proof_url)
        note = clean_text(data.note, "note", max_length=MAX_NOTE, required=False)
        catalog = await self.catalog()
        async with self._pool.acquire() as conn, conn.transaction():
            await claim(conn, SCHEMA, idempotency)
            student = await self._lock_student(conn, identity)
            await _refuse_if_pending(conn, student_id)
            if student["goal_status"] != "active":
                raise Conflict(detail="an active goal is required to submit revenue")
            goal = catalog.by_id(student["current_goal_id"])
            review_id = uuid.uuid4()
            created_at = await _insert_review(
                conn,
                review_id=review_id,
                kind="revenue_submission",
                student_id=student_id,
                goal_id=student["current_goal_id"],
                amount=amount,
                proof_url=proof_url,
                note=note,
            )
            await _emit(
                conn,
                ev.SUBMISSION_CREATED,
                ev.SubmissionCreated(
                    review_id=review_id,
                    student_id=student_id,
                    student_name=student["name"],
                    track=goal.track,
                    goal_slug=goal.slug,
                    amount=money(amount),
                    proof_url=proof_url,
                    note=note,
                    created_at=created_at,
                ),
                actor_id=student_id,
                aggregate=ev.student_aggregate(student_id),
            )
            submission = SubmissionOut(
                id=review_id,
                goal_slug=goal.slug,
                amount=money(amount),
                proof_url=proof_url,
                note=note,
                status="pending",
                created_at=created_at,
                reviewed_at=None,
                rejection_reason=None,
            )
            await remember(conn, SCHEMA, idempotency, submission)
        return submission

    async def my_submissions(
        self, identity: Identity, *, cursor: str | None, limit: int
    ) -> Page[SubmissionOut]:
        student_id = _user(identity)
        before = _after(cursor)
        catalog = await self.catalog()
        rows = await store.list_submissions(self._pool, student_id, before=before, limit=limit + 1)
        items = [_submission_out(catalog, r) for r in rows[:limit]]
        return Page(items=items, next_cursor=_next_cursor(rows, limit, "created_at"))

    # ----------------------------------------------------------------------- reviews

    async def list_reviews(self, *, status: str, cursor: str | None, limit: int) -> Page[ReviewOut]:
        after = _after(cursor)
        catalog = await self.catalog()
        rows = await store.list_reviews(self._pool, status=status, after=after, limit=limit + 1)
        items = [_review_out(catalog, r) for r in rows[:limit]]
        return Page(items=items, next_cursor=_next_cursor(rows, limit, "created_at"))

    async def approve_review(self, review_id: uuid.UUID, reviewer: uuid.UUID) -> ReviewOut:
        catalog = await self.catalog()
        now = utcnow()
        async with self._pool.acquire() as conn, conn.transaction():
            student = await self._lock_review_student(conn, review_id)
            if not await store.decide_review(
                conn,
                review_id,
                status="approved",
                reviewed_by=reviewer,
                reviewed_at=now,
                rejection_reason=None,
            ):
                raise Conflict(detail="this review has already been decided")
            review = await store.fetch_review(conn, review_id)
            assert review is not None
            if review["kind"] == "goal_request":
                await self._apply_goal_request(conn, catalog, student, review, reviewer, now)
            else:
                await self._apply_submission(conn, catalog, student, review, reviewer, now)
        return _review_out(catalog, review)

    async def reject_review(
        self, review_id: uuid.UUID, reviewer: uuid.UUID, reason: str | None
    ) -> ReviewOut:
        text = required_text(reason, "reason", max_length=MAX_REASON)
        catalog = await self.catalog()
        now = utcnow()
        async with self._pool.acquire() as conn, conn.transaction():
            student = await self._lock_review_student(conn, review_id)
            if not await store.decide_review(
                conn,
                review_id,
                status="rejected",
                reviewed_by=reviewer,
                reviewed_at=now,
                rejection_reason=text,
            ):
                raise Conflict(detail="this review has already been decided")
            review = await store.fetch_review(conn, review_id)
            assert review is not None
            student_id = student["id"]
            payload: Any
            if review["kind"] == "goal_request":
                subject = ev.GOAL_REJECTED
                payload = ev.GoalRejected(
                    review_id=review_id,
                    student_id=student_id,
                    student_name=student["name"],
                    goal_slug=catalog.by_id(review["goal_id"]).slug,
                    reason=text,
                    reviewed_by=reviewer,
                )
            else:
                subject = ev.SUBMISSION_REJECTED
                payload = ev.SubmissionRejected(
                    review_id=review_id,
                    student_id=student_id,
                    student_name=student["name"],
                    amount=money(review["amount"]),
                    reason=text,
                    reviewed_by=reviewer,
                    reviewed_at=now,
                )
            await _emit(
                conn,
                subject,
                payload,
                actor_id=reviewer,
                aggregate=ev.student_aggregate(student_id),
            )
        return _review_out(catalog, review)

    async def _apply_goal_request(
        self,
        conn: asyncpg.Connection,
        catalog: Catalog,
        student: asyncpg.Record,
        review: asyncpg.Record,
        reviewer: uuid.UUID,
        now: dt.datetime,
    ) -> None:
        """The requested goal becomes the student's goal (and is advanced past if reached)."""
        student_id: uuid.UUID = student["id"]
        goal = catalog.by_id(review["goal_id"])
        track = catalog.track(goal.track)
        metrics = rules.Metrics(student["total_revenue_earned"], student["current_mrr"])
        done = await self._completed_slugs(conn, catalog, student_id)
        advance = rules.assign_goal(track, goal, metrics, now, done)
        await self._save_goal_state(conn, catalog, student, advance.state, metrics)
        await _emit(
            conn,
            ev.GOAL_ASSIGNED,
            _assigned(student, goal, review_id=review["id"], reviewed_by=reviewer),
            actor_id=reviewer,
            aggregate=ev.student_aggregate(student_id),
        )
        await self._record_completions(conn, catalog, student, advance, goal, reviewer)

    async def _apply_submission(
        self,
        conn: asyncpg.Connection,
        catalog: Catalog,
        student: asyncpg.Record,
        review: asyncpg.Record,
        reviewer: uuid.UUID,
        now: dt.datetime,
    ) -> None:
        """Add the approved amount to the metric of its track, then advance."""
        student_id: uuid.UUID = student["id"]
        amount: Decimal = review["amount"]
        submitted_for = catalog.by_id(review["goal_id"])
        track = catalog.track(submitted_for.track)
        metrics = rules.Metrics(student["total_revenue_earned"], student["current_mrr"])
        current = (
            catalog.by_id(student["current_goal_id"])
            if student["current_goal_id"] is not None
            else None
        )
        advance: rules.Advance | None = None
        if current is not None and current.track == track.slug:
            outcome = rules.approve_submission(
                track,
                rules.GoalState(
                    goal=current,
                    status=student["goal_status"],
                    started_at=student["goal_started_at"],
                ),
                metrics,
                amount,
                now,
                await self._completed_slugs(conn, catalog, student_id),
            )
            metrics, advance = outcome.metrics, outcome.advance
        else:  # the student changed tracks meanwhile: the revenue still counts
            metrics = rules.apply_approved_amount(track.metric, metrics, amount)
        await store.update_student_goal(
            conn,
            student_id,
            goal_id=catalog.id_of(advance.state.goal) if advance else student["current_goal_id"],
            goal_status=advance.state.status if advance else student["goal_status"],
            goal_started_at=advance.state.started_at if advance else student["goal_started_at"],
            total_revenue_earned=metrics.total_revenue_earned,
            current_mrr=metrics.current_mrr,
            last_verified_amount=amount,
        )
        await _emit(
            conn,
            ev.SUBMISSION_APPROVED,
            ev.SubmissionApproved(
                review_id=review["id"],
                student_id=student_id,
                student_name=student["name"],
                track=track.slug,
                goal_slug=submitted_for.slug,
                amount=money(amount),
                total_revenue_earned=money(metrics.total_revenue_earned),
                current_mrr=money(metrics.current_mrr),
                reviewed_by=reviewer,
                reviewed_at=now,
            ),
            actor_id=reviewer,
            aggregate=ev.student_aggregate(student_id),
        )
        if advance is not None and current is not None:
            await self._record_completions(conn, catalog, student, advance, current, reviewer)

    async def _save_goal_state(
        self,
        conn: asyncpg.Connection,
        catalog: Catalog,
        student: asyncpg.Record,
        state: rules.GoalState,
        metrics: rules.Metrics,
    ) -> None:
        await store.update_student_goal(
            conn,
            student["id"],
            goal_id=catalog.id_of(state.goal),
            goal_status=state.status,
            goal_started_at=state.started_at,
            total_revenue_earned=metrics.total_revenue_earned,
            current_mrr=metrics.current_mrr,
            last_verified_amount=student["last_verified_amount"],
        )

    async def _record_completions(
        self,
        conn: asyncpg.Connection,
        catalog: Catalog,
        student: asyncpg.Record,
        advance: rules.Advance,
        started_on: rules.Goal,
        actor: uuid.UUID,
    ) -> None:
        """Store and announce each completed goal, then the goal advanced to."""
        student_id: uuid.UUID = student["id"]
        for completion in advance.completed:
            await store.insert_completed(
                conn,
                student_id,
                catalog.id_of(completion.goal),
                completed_at=completion.completed_at,
                days_to_complete=completion.days_to_complete,
                amount=completion.amount,
            )
            await _emit(
                conn,
                ev.GOAL_COMPLETED,
                ev.GoalCompleted(
                    student_id=student_id,
                    student_name=student["name"],
                    track=completion.goal.track,
                    goal_slug=completion.goal.slug,
                    goal_name=completion.goal.name,
                    target=money(completion.goal.target),
                    amount=money(completion.amount),
                    days_to_complete=completion.days_to_complete,
                    completed_at=completion.completed_at,
                ),
                actor_id=actor,
                aggregate=ev.student_aggregate(student_id),
            )
        if advance.state.goal != started_on:
            await _emit(
                conn,
                ev.GOAL_ASSIGNED,
                _assigned(student, advance.state.goal, review_id=None, reviewed_by=None),
                actor_id=actor,
                aggregate=ev.student_aggregate(student_id),
            )

    async def _completed_slugs(
        self, conn: asyncpg.Connection, catalog: Catalog, student_id: uuid.UUID
    ) -> frozenset[str]:
        rows = await store.fetch_completed(conn, student_id)
        return frozenset(catalog.by_id(r["goal_id"]).slug for r in rows)

    async def _lock_student(self, conn: asyncpg.Connection, identity: Identity) -> asyncpg.Record:
        """Create the caller's profile if needed, keep their name current, and lock it."""
        student_id = _user(identity)
        await store.upsert_student(conn, student_id, _display_name(identity))
        row = await store.fetch_student(conn, student_id, for_update=True)
        assert row is not None
        return row

    async def _lock_review_student(
        self, conn: asyncpg.Connection, review_id: uuid.UUID
    ) -> asyncpg.Record:
        """Lock the student of a review (404 for an unknown review)."""
        student_id = await store.fetch_review_student(conn, review_id)
        if student_id is None:
            raise NotFoundException(detail="no such review")
        row = await store.fetch_student(conn, student_id, for_update=True)
        assert row is not None
        return row

    # ----------------------------------------------------------------------- stories

    async def create_story(
        self, identity: Identity, data: StoryIn, idempotency: IdempotencyKey | None = None
    ) -> StoryOut:
        author_id = _user(identity)
        title = required_text(data.title, "title", max_length=MAX_TITLE)
        story = required_text(data.story, "story", max_length=MAX_STORY)
        earnings = (
            clean_amount(data.earnings_amount, "earnings_amount")
            if data.earnings_amount is not None
            else None
        )
        story_id = uuid.uuid4()
        async with self._pool.acquire() as conn, conn.transaction():
            await claim(conn, SCHEMA, idempotency)
            await self._lock_student(conn, identity)
            await store.insert_story(
                conn,
                story_id=story_id,
                author_id=author_id,
                title=title,
                story=story,
                earnings_amount=earnings,
                anonymous=data.anonymous,
            )
            if data.anonymous:
                await store.assign_pseudonym(conn, author_id)
            row = await store.fetch_story(conn, story_id)
            assert row is not None
            await _emit(
                conn,
                ev.STORY_CREATED,
                ev.StoryCreated(
                    story_id=story_id,
                    author_id=author_id,
                    title=title,
                    created_at=row["created_at"],
                    anonymous=data.anonymous,
                ),
                actor_id=author_id,
                aggregate=ev.story_aggregate(story_id),
            )
            created = _story_out(row)
            await remember(conn, SCHEMA, idempotency, created)
        return created

    async def publish_story(self, story_id: uuid.UUID, moderator: uuid.UUID) -> StoryOut:
        now = utcnow()
        async with self._pool.acquire() as conn, conn.transaction():
            if not await store.publish_story(
                conn, story_id, published_by=moderator, published_at=now
            ):
                if await store.fetch_story(conn, story_id) is None:
                    raise NotFoundException(detail="no such story")
                raise Conflict(detail="this story is already published")
            row = await store.fetch_story(conn, story_id)
            assert row is not None
            await _emit(
                conn,
                ev.STORY_PUBLISHED,
                ev.StoryPublished(
                    story_id=story_id,
                    author_id=row["author_id"],
                    title=row["title"],
                    published_at=now,
                    anonymous=row["anonymous"],
                ),
                actor_id=moderator,
                aggregate=ev.story_aggregate(story_id),
            )
        return _story_out(row)

    async def published_stories(self, *, cursor: str | None, limit: int) -> Page[StoryPublicOut]:
        before = _after(cursor)
        rows = await store.list_published_stories(self._pool, before=before, limit=limit + 1)
        items = [_story_public(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=_next_cursor(rows, limit, "published_at"))

    async def pending_stories(self, *, cursor: str | None, limit: int) -> Page[StoryOut]:
        after = _after(cursor)
        rows = await store.list_pending_stories(self._pool, after=after, limit=limit + 1)
        items = [_story_out(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=_next_cursor(rows, limit, "created_at"))

    # ----------------------------------------------------------------------- rpc

    async def rpc_profile(self, user_id: uuid.UUID) -> ev.ProfileReply | None:
        row = await store.fetch_rpc_profile(self._pool, user_id)
        if row is None:
            return None
        return ev.ProfileReply(
            user_id=row["id"],
            track=row["track"],
            goal_slug=row["goal_slug"],
            goal_name=row["goal_name"],
            total_revenue_earned=money(row["total_revenue_earned"]),
            current_mrr=money(row["current_mrr"]),
        )


# --------------------------------------------------------------------------- helpers


def _display_name(identity: Identity) -> str:
    """The token's name as stored: Postgres text cannot hold NUL characters."""
    return identity.name.replace("\x00", "")


def _user(identity: Identity) -> uuid.UUID:
    assert identity.user_id is not None, "routes only call use cases for signed-in users"
    return identity.user_id


async def _refuse_if_pending(conn: asyncpg.Connection, student_id: uuid.UUID) -> None:
    pending = await store.fetch_pending_review(conn, student_id)
    if pending is not None:
        what = "goal request" if pending["kind"] == "goal_request" else "revenue submission"
        raise Conflict(detail=f"a {what} is already waiting for review")


async def _insert_review(conn: asyncpg.Connection, **values: Any) -> dt.datetime:
    try:
        return await store.insert_review(conn, **values)
    except asyncpg.UniqueViolationError as exc:  # the student lock makes this a backstop
        raise Conflict(detail="a review is already waiting for review") from exc


async def _emit(
    conn: asyncpg.Connection,
    subject: str,
    payload: object,
    *,
    actor_id: uuid.UUID | None,
    aggregate: str,
) -> None:
    envelope = make_event(type=subject, data=payload, source=ev.SOURCE, actor_id=actor_id)
    await enqueue(conn, SCHEMA, envelope, aggregate=aggregate)


def _assigned(
    student: asyncpg.Record,
    goal: rules.Goal,
    *,
    review_id: uuid.UUID | None,
    reviewed_by: uuid.UUID | None,
) -> ev.GoalAssigned:
    return ev.GoalAssigned(
        student_id=student["id"],
        student_name=student["name"],
        track=goal.track,
        goal_slug=goal.slug,
        goal_name=goal.name,
        target=money(goal.target),
        review_id=review_id,
        reviewed_by=reviewed_by,
    )


def _next_cursor(rows: Sequence[asyncpg.Record], limit: int, key: str) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(CursorKey(at=last[key], id=last["id"]))


def _review_out(catalog: Catalog, row: asyncpg.Record) -> ReviewOut:
    goal = catalog.by_id(row["goal_id"])
    return ReviewOut(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        student=StudentRef(id=row["student_id"], name=row["student_name"]),
        track=goal.track,
        goal_slug=goal.slug,
        amount=optional_money(row["amount"]),
        proof_url=row["proof_url"],
        note=row["note"],
        created_at=row["created_at"],
        reviewed_by=row["reviewed_by"],
        reviewed_at=row["reviewed_at"],
        rejection_reason=row["rejection_reason"],
    )


def _submission_out(catalog: Catalog, row: asyncpg.Record) -> SubmissionOut:
    return SubmissionOut(
        id=row["id"],
        goal_slug=catalog.by_id(row["goal_id"]).slug,
        amount=money(row["amount"]),
        proof_url=row["proof_url"],
        note=row["note"],
        status=row["status"],
        created_at=row["created_at"],
        reviewed_at=row["reviewed_at"],
        rejection_reason=row["rejection_reason"],
    )


def _public_author(row: asyncpg.Record) -> tuple[str, uuid.UUID | None]:
    """What the public sees of a story's author: a pseudonym and no id when anonymous."""
    if row["anonymous"]:
        return rules.pseudonym(cast(int, row["pseudonym_no"])), None
    return row["author_name"], row["author_id"]


def _story_public(row: asyncpg.Record) -> StoryPublicOut:
    author_name, author_id = _public_author(row)
    return StoryPublicOut(
        id=row["id"],
        title=row["title"],
        story=row["story"],
        earnings_amount=optional_money(row["earnings_amount"]),
        author_name=author_name,
        author_id=author_id,
        published_at=row["published_at"],
    )


def _story_out(row: asyncpg.Record) -> StoryOut:
    author_name, author_id = _public_author(row)
    return StoryOut(
        id=row["id"],
        title=row["title"],
        story=row["story"],
        earnings_amount=optional_money(row["earnings_amount"]),
        anonymous=row["anonymous"],
        status=row["status"],
        author_name=author_name,
        author_id=author_id,
        author=StudentRef(id=row["author_id"], name=row["author_name"]),
        created_at=row["created_at"],
        published_at=row["published_at"],
    )
