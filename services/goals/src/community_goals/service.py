"""The use cases of the goals service: one method per thing a user can do.

Each change is one unit of work (`community_shared.unit_of_work`): the change
and its events commit together. Reviews are decided race-free: the use case
locks the student row first (every use case that creates or decides a
student's review takes the student lock before touching the review, so locks
are always taken in the same order), then flips the review with
`UPDATE ... WHERE status = 'pending'`; of two instructors deciding at once
exactly one sees the row change. Inputs are checked before the transaction
opens, so a bad request writes nothing. The goal rules (assignment,
advancing, approval) are in `rules`, SQL in `store`, rows → answers in
`views`; refusals are domain errors.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from community_shared import rpc
from community_shared.access import require_moderator, require_user
from community_shared.auth import Identity
from community_shared.errors import Conflict, InvalidInput, NotFound
from community_shared.events import utcnow
from community_shared.idempotency import IdempotencyKey
from community_shared.pagination import Page, PageRequest, TimeKey, decode_cursor, keyset_page
from community_shared.unit_of_work import Database

from community_goals import approvals, store, views
from community_goals import events as ev
from community_goals.catalog import Catalog
from community_goals.schemas import (
    MAX_NOTE,
    MAX_REASON,
    MAX_STORY,
    MAX_TITLE,
    ProfileOut,
    ReviewOut,
    StoryIn,
    StoryOut,
    StoryPublicOut,
    StudentDetailOut,
    SubmissionIn,
    SubmissionOut,
    TracksOut,
    clean_amount,
    clean_proof_url,
    clean_slug,
    clean_text,
    required_text,
)

SCHEMA = store.SCHEMA
HISTORY_LIMIT = 100


def _after(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    key = decode_cursor(cursor, TimeKey)
    return None if key is None else (key.at, key.id)


def _display_name(identity: Identity) -> str:
    """The token's name as stored: Postgres text cannot hold NUL characters."""
    return identity.name.replace("\x00", "")


async def _refuse_if_pending(conn: asyncpg.Connection, student_id: uuid.UUID) -> None:
    pending = await store.fetch_pending_review(conn, student_id)
    if pending is not None:
        what = "goal request" if pending["kind"] == "goal_request" else "revenue submission"
        raise Conflict(f"a {what} is already waiting for review")


async def _insert_review(conn: asyncpg.Connection, **values: Any) -> asyncpg.Record:
    try:
        return await store.insert_review(conn, **values)
    except asyncpg.UniqueViolationError as exc:  # the student lock makes this a backstop
        raise Conflict("a review is already waiting for review") from exc


async def _lock_student(conn: asyncpg.Connection, identity: Identity) -> asyncpg.Record:
    """Create the caller's profile if needed, keep their name current, and lock it."""
    student_id = require_user(identity)
    await store.upsert_student(conn, student_id, _display_name(identity))
    row = await store.fetch_student(conn, student_id, for_update=True)
    assert row is not None
    return row


def _by_created(row: asyncpg.Record) -> TimeKey:
    """The keyset position of a row listed by creation time."""
    return TimeKey(row["created_at"], row["id"])


async def _lock_review_student(conn: asyncpg.Connection, review_id: uuid.UUID) -> asyncpg.Record:
    """Lock the student of a review (404 for an unknown review)."""
    row = await store.lock_student_of_review(conn, review_id)
    if row is None:
        raise NotFound("no such review")
    return row


@dataclass
class GoalsService:
    db: Database
    _catalog: Catalog | None = field(default=None, init=False)

    async def catalog(self) -> Catalog:
        """Tracks and goals are seeded by a migration and never change at run time."""
        if self._catalog is None:
            async with self.db.connection() as conn:
                self._catalog = Catalog.from_rows(await store.fetch_catalog(conn))
        return self._catalog

    async def list_tracks(self) -> TracksOut:
        return views.tracks(await self.catalog())

    # ----------------------------------------------------------------------- profile

    async def _profile(self, conn: asyncpg.Connection, student_id: uuid.UUID) -> ProfileOut | None:
        catalog = await self.catalog()
        row = await store.fetch_student(conn, student_id)
        if row is None:
            return None
        latest = {r["kind"]: r for r in await store.fetch_latest_reviews(conn, student_id)}
        completed = await store.fetch_completed(conn, student_id)
        return views.profile(catalog, row, latest, completed)

    async def my_profile(self, identity: Identity) -> ProfileOut:
        student_id = require_user(identity)
        async with self.db.connection() as conn:
            profile = await self._profile(conn, student_id)
            name = _display_name(identity)
            if profile is None or profile.name != name:
                # First use (or a new display name): the profile is created from the token.
                await store.upsert_student(conn, student_id, name)
                profile = await self._profile(conn, student_id)
        assert profile is not None
        return profile

    async def student_detail(self, identity: Identity, student_id: uuid.UUID) -> StudentDetailOut:
        require_moderator(identity)
        catalog = await self.catalog()
        async with self.db.connection() as conn, conn.transaction(isolation="repeatable_read"):
            profile = await self._profile(conn, student_id)
            if profile is None:
                raise NotFound("no such student")
            rows = await store.list_history(conn, student_id, limit=HISTORY_LIMIT)
        return StudentDetailOut(profile=profile, history=[views.review(catalog, r) for r in rows])

    # ----------------------------------------------------------------------- goal requests

    async def request_goal(self, identity: Identity, goal_slug: str) -> ProfileOut:
        student_id = require_user(identity)
        catalog = await self.catalog()
        goal = catalog.goal(clean_slug(goal_slug))
        if goal is None:
            raise InvalidInput("unknown goal_slug")
        async with self.db.unit_of_work() as uow:
            student = await _lock_student(uow.conn, identity)
            await _refuse_if_pending(uow.conn, student_id)
            if student["current_goal_id"] == catalog.id_of(goal):
                raise Conflict(f"{goal.slug} is already your goal")
            review_id = uuid.uuid4()
            review = await _insert_review(
                uow.conn,
                review_id=review_id,
                kind="goal_request",
                student_id=student_id,
                goal_id=catalog.id_of(goal),
            )
            requested = ev.GoalRequested(
                review_id=review_id,
                student_id=student_id,
                student_name=student["name"],
                track=goal.track,
                goal_slug=goal.slug,
                goal_name=goal.name,
                created_at=review["created_at"],
            )
            approvals.record(uow, ev.GOAL_REQUESTED, requested, student_id, student_id)
            profile = await self._profile(uow.conn, student_id)
        assert profile is not None
        return profile

    # ----------------------------------------------------------------------- submissions

    async def submit_revenue(
        self, identity: Identity, data: SubmissionIn, idempotency: IdempotencyKey | None = None
    ) -> SubmissionOut:
        student_id = require_user(identity)
        amount = clean_amount(data.amount)
        proof_url = clean_proof_url(data.proof_url)
        note = clean_text(data.note, "note", max_length=MAX_NOTE, required=False)
        catalog = await self.catalog()
        async with self.db.unit_of_work() as uow:
            await uow.claim(idempotency)
            student = await _lock_student(uow.conn, identity)
            await _refuse_if_pending(uow.conn, student_id)
            if student["goal_status"] != "active":
                raise Conflict("an active goal is required to submit revenue")
            goal = catalog.by_id(student["current_goal_id"])
            review_id = uuid.uuid4()
            review = await _insert_review(
                uow.conn,
                review_id=review_id,
                kind="revenue_submission",
                student_id=student_id,
                goal_id=student["current_goal_id"],
                amount=amount,
                proof_url=proof_url,
                note=note,
            )
            created = ev.SubmissionCreated(
                review_id=review_id,
                student_id=student_id,
                student_name=student["name"],
                track=goal.track,
                goal_slug=goal.slug,
                amount=views.money(amount),
                proof_url=proof_url,
                note=note,
                created_at=review["created_at"],
            )
            approvals.record(uow, ev.SUBMISSION_CREATED, created, student_id, student_id)
            submission = views.submission(catalog, review)
            await uow.remember(idempotency, submission)
        return submission

    async def my_submissions(self, identity: Identity, page: PageRequest) -> Page[SubmissionOut]:
        student_id = require_user(identity)
        before = _after(page.cursor)
        catalog = await self.catalog()
        rows = await store.list_submissions(
            self.db.pool, student_id, before=before, limit=page.limit + 1
        )
        kept, next_cursor = keyset_page(rows, page.limit, _by_created)
        return Page(items=[views.submission(catalog, r) for r in kept], next_cursor=next_cursor)

    # ----------------------------------------------------------------------- reviews

    async def list_reviews(
        self, identity: Identity, page: PageRequest, *, status: str
    ) -> Page[ReviewOut]:
        require_moderator(identity)
        after = _after(page.cursor)
        catalog = await self.catalog()
        rows = await store.list_reviews(
            self.db.pool, status=status, after=after, limit=page.limit + 1
        )
        kept, next_cursor = keyset_page(rows, page.limit, _by_created)
        return Page(items=[views.review(catalog, r) for r in kept], next_cursor=next_cursor)

    async def approve_review(self, identity: Identity, review_id: uuid.UUID) -> ReviewOut:
        reviewer = require_moderator(identity)
        catalog = await self.catalog()
        now = utcnow()
        async with self.db.unit_of_work() as uow:
            student = await _lock_review_student(uow.conn, review_id)
            if not await store.decide_review(
                uow.conn,
                review_id,
                status="approved",
                reviewed_by=reviewer,
                reviewed_at=now,
                rejection_reason=None,
            ):
                raise Conflict("this review has already been decided")
            review = await store.fetch_review(uow.conn, review_id)
            assert review is not None
            if review["kind"] == "goal_request":
                await approvals.apply_goal_request(uow, catalog, student, review, reviewer, now)
            else:
                await approvals.apply_submission(uow, catalog, student, review, reviewer, now)
        return views.review(catalog, review)

    async def reject_review(
        self, identity: Identity, review_id: uuid.UUID, reason: str | None
    ) -> ReviewOut:
        reviewer = require_moderator(identity)
        text = required_text(reason, "reason", max_length=MAX_REASON)
        catalog = await self.catalog()
        now = utcnow()
        async with self.db.unit_of_work() as uow:
            student = await _lock_review_student(uow.conn, review_id)
            if not await store.decide_review(
                uow.conn,
                review_id,
                status="rejected",
                reviewed_by=reviewer,
                reviewed_at=now,
                rejection_reason=text,
            ):
                raise Conflict("this review has already been decided")
            review = await store.fetch_review(uow.conn, review_id)
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
                    amount=views.money(review["amount"]),
                    reason=text,
                    reviewed_by=reviewer,
                    reviewed_at=now,
                )
            approvals.record(uow, subject, payload, reviewer, student_id)
        return views.review(catalog, review)

    # ----------------------------------------------------------------------- stories

    async def create_story(
        self, identity: Identity, data: StoryIn, idempotency: IdempotencyKey | None = None
    ) -> StoryOut:
        author_id = require_user(identity)
        title = required_text(data.title, "title", max_length=MAX_TITLE)
        story = required_text(data.story, "story", max_length=MAX_STORY)
        earnings = (
            clean_amount(data.earnings_amount, "earnings_amount")
            if data.earnings_amount is not None
            else None
        )
        story_id = uuid.uuid4()
        async with self.db.unit_of_work() as uow:
            await uow.claim(idempotency)
            await _lock_student(uow.conn, identity)
            await store.insert_story(
                uow.conn,
                story_id=story_id,
                author_id=author_id,
                title=title,
                story=story,
                earnings_amount=earnings,
                anonymous=data.anonymous,
            )
            if data.anonymous:
                await store.assign_pseudonym(uow.conn, author_id)
            row = await store.fetch_story(uow.conn, story_id)
            assert row is not None
            uow.record(
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
            created = views.story(row)
            await uow.remember(idempotency, created)
        return created

    async def publish_story(self, identity: Identity, story_id: uuid.UUID) -> StoryOut:
        moderator = require_moderator(identity)
        now = utcnow()
        async with self.db.unit_of_work() as uow:
            if not await store.publish_story(
                uow.conn, story_id, published_by=moderator, published_at=now
            ):
                if await store.fetch_story(uow.conn, story_id) is None:
                    raise NotFound("no such story")
                raise Conflict("this story is already published")
            row = await store.fetch_story(uow.conn, story_id)
            assert row is not None
            uow.record(
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
        return views.story(row)

    async def stories(
        self, identity: Identity, page: PageRequest, *, pending: bool
    ) -> Page[StoryPublicOut] | Page[StoryOut]:
        """Published stories, newest first; or (`pending`, instructors and admins only)
        the verification queue, oldest first."""
        if pending:
            require_moderator(identity)
            return await self.pending_stories(page)
        return await self.published_stories(page)

    async def published_stories(self, page: PageRequest) -> Page[StoryPublicOut]:
        before = _after(page.cursor)
        rows = await store.list_published_stories(self.db.pool, before=before, limit=page.limit + 1)
        kept, next_cursor = keyset_page(
            rows, page.limit, lambda r: TimeKey(r["published_at"], r["id"])
        )
        return Page(items=[views.story_public(r) for r in kept], next_cursor=next_cursor)

    async def pending_stories(self, page: PageRequest) -> Page[StoryOut]:
        after = _after(page.cursor)
        rows = await store.list_pending_stories(self.db.pool, after=after, limit=page.limit + 1)
        kept, next_cursor = keyset_page(rows, page.limit, _by_created)
        return Page(items=[views.story(r) for r in kept], next_cursor=next_cursor)

    # ----------------------------------------------------------------------- rpc

    async def rpc_profile(self, user_id: uuid.UUID) -> rpc.ProfileReply | None:
        row = await store.fetch_rpc_profile(self.db.pool, user_id)
        return None if row is None else views.rpc_profile(row)
