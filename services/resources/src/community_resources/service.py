"""The resource library's use cases: one method per thing a user can do.

Each change is one unit of work (`community_shared.unit_of_work`): the change
and the event announcing it commit together or not at all. Every input is
validated before the transaction starts; a refused request writes nothing.
Who may call a route at all is its guard; the use case asks again
(`community_shared.access`) for the id it acts as, and decides what depends on
the resource (drafts, access level, having downloaded it). Refusals are domain
errors; SQL is in `store`, rows → answers in `views`, cursors in `cursors`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from community_shared.access import require_moderator, require_user
from community_shared.auth import Identity
from community_shared.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from community_shared.events import utcnow
from community_shared.idempotency import IdempotencyKey
from community_shared.pagination import PageRequest
from community_shared.rows import from_row
from community_shared.unit_of_work import Database, UnitOfWork
from msgspec import UNSET
from prometheus_client import Counter

from community_resources import events, rules, store, views
from community_resources.cursors import decode_position, encode_position
from community_resources.schemas import (
    CreateLink,
    CreateResource,
    DownloadOut,
    DownloadRequest,
    LinkCreated,
    LinkedList,
    RateResource,
    RatingOut,
    ResourceOut,
    ResourcePage,
    UpdateResource,
)

SCHEMA = store.SCHEMA

DOWNLOADS = Counter("resources_downloads_total", "Resource downloads counted", ["caller"])

__all__ = ["SCHEMA", "ResourcesService", "decode_position", "expire_download_days"]


def _not_found() -> NotFound:
    return NotFound("resource not found")


def _visible(row: asyncpg.Record | None, identity: Identity) -> asyncpg.Record:
    """The row if the caller may see it: drafts exist for moderators only."""
    if row is None or (row["published_at"] is None and not identity.is_moderator):
        raise _not_found()
    return row


async def popularity_threshold(conn: asyncpg.Connection) -> int | None:
    """The 30-day download count that makes a resource popular right now (None: none is)."""
    place = rules.popular_rank_cutoff(await store.count_published(conn))
    if place == 0:
        return None
    return rules.popularity_threshold(await store.recent_downloads_at_place(conn, place))


def _record(
    uow: UnitOfWork, type_: str, data: Any, identity: Identity, resource_id: uuid.UUID
) -> None:
    uow.record(type_, data, actor_id=identity.user_id, aggregate=f"resource:{resource_id}")


def _check_download(access: str, identity: Identity, email: str | None) -> None:
    decision = rules.download_decision(
        access=access, signed_in=not identity.is_guest, member=identity.is_member
    )
    if decision is rules.DownloadDecision.UNAUTHENTICATED:
        raise Unauthenticated("sign in to download members-only resources")
    if decision is rules.DownloadDecision.FORBIDDEN:
        raise Forbidden("an active membership is required")
    if decision is rules.DownloadDecision.NEEDS_EMAIL and email is None:
        raise InvalidInput("an email is required to download as a guest")


@dataclass
class ResourcesService:
    db: Database

    # ----------------------------------------------------------------------- CRUD

    async def create_resource(
        self,
        identity: Identity,
        body: CreateResource,
        idempotency: IdempotencyKey | None = None,
    ) -> ResourceOut:
        author_id = require_moderator(identity)
        resource_id = uuid.uuid4()
        async with self.db.unit_of_work() as uow:
            await uow.claim(idempotency)
            row = await store.insert_resource(
                uow.conn,
                resource_id=resource_id,
                created_by=author_id,
                values=msgspec.structs.asdict(body),
            )
            threshold = await popularity_threshold(uow.conn)
            now = utcnow()
            announced = views.public_view(row, now, threshold)
            _record(uow, events.RESOURCE_CREATED, announced, identity, resource_id)
            created = views.caller_view(row, now, threshold)
            await uow.remember(idempotency, created)
        return created

    async def get_resource(self, identity: Identity, resource_id: uuid.UUID) -> ResourceOut:
        async with self.db.connection() as conn:
            row = _visible(
                await store.fetch_resource(conn, resource_id, identity.user_id), identity
            )
            threshold = await popularity_threshold(conn)
        return views.caller_view(row, utcnow(), threshold)

    async def update_resource(
        self, identity: Identity, resource_id: uuid.UUID, body: UpdateResource
    ) -> ResourceOut:
        """Change what is present in `body`; announce it only if something really changed."""
        moderator_id = require_moderator(identity)
        async with self.db.unit_of_work() as uow:
            current = await store.lock_resource(uow.conn, resource_id)
            if current is None:
                raise _not_found()
            published = current["published_at"] is not None
            if body.publish is False and published:
                raise Conflict("a published resource cannot go back to draft; delete it instead")
            publish = body.publish is True and not published
            changes = {
                column: value
                for column, value in body.column_changes().items()
                if current[column] != value
            }
            if not changes and not publish:
                row = await store.fetch_resource(uow.conn, resource_id, moderator_id)
                assert row is not None  # locked above
                return views.caller_view(row, utcnow(), await popularity_threshold(uow.conn))
            row = await store.update_resource(
                uow.conn, resource_id, changes, publish=publish, viewer_id=moderator_id
            )
            threshold = await popularity_threshold(uow.conn)
            now = utcnow()
            announced = views.public_view(row, now, threshold)
            _record(uow, events.RESOURCE_UPDATED, announced, identity, resource_id)
        return views.caller_view(row, now, threshold)

    async def delete_resource(self, identity: Identity, resource_id: uuid.UUID) -> None:
        require_moderator(identity)
        async with self.db.unit_of_work() as uow:
            if not await store.soft_delete_resource(uow.conn, resource_id):
                raise _not_found()
            deleted = events.ResourceDeleted(id=resource_id)
            _record(uow, events.RESOURCE_DELETED, deleted, identity, resource_id)

    # ----------------------------------------------------------------------- listing

    async def list_resources(
        self,
        identity: Identity,
        page: PageRequest,
        *,
        filters: store.ListFilters,
        sort: str,
        drafts: bool,
    ) -> ResourcePage:
        """A page of published resources (or of drafts, for moderators, newest first)."""
        page_size = page.limit
        if drafts:
            require_moderator(identity)
        filters = dataclasses.replace(
            filters,
            tags=rules.normalize_tags(filters.tags),
            q=None
            if filters.q is None
            else rules.clean_text(filters.q, "q", max_length=rules.MAX_QUERY),
        )
        key_sort = "drafts" if drafts else sort
        after = decode_position(key_sort, page.cursor)
        async with self.db.connection() as conn:
            rows = await store.list_resources(
                conn,
                filters=filters,
                sort=key_sort,
                after=after,
                limit=page_size + 1,
                viewer_id=identity.user_id,
            )
            threshold = await popularity_threshold(conn)
        kept, more = rows[:page_size], len(rows) > page_size
        now = utcnow()
        return ResourcePage(
            items=[views.caller_view(row, now, threshold) for row in kept],
            next_cursor=encode_position(key_sort, kept[-1]) if more else None,
        )

    # ----------------------------------------------------------------------- links

    async def create_link(
        self,
        identity: Identity,
        resource_id: uuid.UUID,
        body: CreateLink,
        idempotency: IdempotencyKey | None = None,
    ) -> LinkCreated:
        moderator_id = require_moderator(identity)
        async with self.db.unit_of_work() as uow:
            await uow.claim(idempotency)
            if await store.fetch_resource(uow.conn, resource_id, None) is None:
                raise _not_found()
            row = await store.insert_link(
                uow.conn,
                link_id=uuid.uuid4(),
                resource_id=resource_id,
                created_by=moderator_id,
                values=msgspec.structs.asdict(body),
            )
            if row is None:
                raise Conflict("the resource is already linked to this entity")
            link = from_row(LinkCreated, row)
            await uow.remember(idempotency, link)
        return link

    async def delete_link(
        self, identity: Identity, resource_id: uuid.UUID, link_id: uuid.UUID
    ) -> None:
        require_moderator(identity)
        async with self.db.unit_of_work() as uow:
            if not await store.delete_link(uow.conn, resource_id, link_id):
                raise NotFound("link not found")

    async def linked_resources(
        self, identity: Identity, entity_type: str, entity_id: uuid.UUID
    ) -> LinkedList:
        async with self.db.connection() as conn:
            rows = await store.linked_resources(
                conn,
                entity_type=entity_type,
                entity_id=entity_id,
                viewer_id=identity.user_id,
                include_drafts=identity.is_moderator,
            )
            threshold = await popularity_threshold(conn)
        now = utcnow()
        return LinkedList(items=[views.linked_view(row, now, threshold) for row in rows])

    # ----------------------------------------------------------------------- downloads

    async def download(
        self, identity: Identity, resource_id: uuid.UUID, body: DownloadRequest
    ) -> DownloadOut:
        """Hand out the file's address and count the download (with the caller's own record).

        A moderator downloading a draft previews it: nothing is counted.
        """
        async with self.db.connection() as conn:
            target = _visible(await store.download_target(conn, resource_id), identity)
        if target["published_at"] is None:
            return DownloadOut(url=target["file_url"])
        _check_download(target["access"], identity, body.email)
        async with self.db.unit_of_work() as uow:
            counted = await store.count_download(uow.conn, resource_id)
            if counted is None:  # deleted meanwhile
                raise _not_found()
            # Decide again on the locked row, in case access changed since the check.
            _check_download(counted["access"], identity, body.email)
            if identity.user_id is not None:
                await store.record_user_download(uow.conn, resource_id, identity.user_id)
            else:
                assert body.email is not None
                await store.record_guest_download(uow.conn, resource_id, body.email)
            await store.add_to_download_day(uow.conn, resource_id)
            payload = events.ResourceDownloaded(
                resource_id=resource_id,
                user_id=identity.user_id,
                download_count=counted["download_count"],
                rating_average=rules.rating_average(counted["rating_sum"], counted["rating_count"]),
                rating_count=counted["rating_count"],
            )
            _record(uow, events.RESOURCE_DOWNLOADED, payload, identity, resource_id)
        DOWNLOADS.labels(caller="guest" if identity.is_guest else "user").inc()
        return DownloadOut(url=counted["file_url"])

    # ----------------------------------------------------------------------- ratings

    async def rate(
        self, identity: Identity, resource_id: uuid.UUID, body: RateResource
    ) -> RatingOut:
        """Set the caller's rating (1..5, with an optional review) of a resource they downloaded."""
        user_id = require_user(identity)
        async with self.db.unit_of_work() as uow:
            _visible(await store.lock_published_resource(uow.conn, resource_id), identity)
            mine = await store.lock_user_interaction(uow.conn, resource_id, user_id)
            if mine is None or mine["download_count"] == 0:
                raise Conflict("download the resource before rating it")
            review = mine["review"] if body.review is UNSET else body.review
            if mine["rating"] == body.rating and mine["review"] == review:
                return views.rating_out(await store.resource_counters(uow.conn, resource_id))
            await store.set_rating(uow.conn, mine["id"], body.rating, review)
            sum_delta, count_delta = rules.rating_change(mine["rating"], body.rating)
            totals = await store.change_rating_totals(uow.conn, resource_id, sum_delta, count_delta)
            payload = events.ResourceRated(
                resource_id=resource_id,
                user_id=user_id,
                rating=body.rating,
                download_count=totals["download_count"],
                rating_average=rules.rating_average(totals["rating_sum"], totals["rating_count"]),
                rating_count=totals["rating_count"],
            )
            _record(uow, events.RESOURCE_RATED, payload, identity, resource_id)
        return views.rating_out(totals)


# --------------------------------------------------------------------------- popularity window


async def expire_download_days(pool: asyncpg.Pool, today: dt.date | None = None) -> int:
    """Drop the days that left the 30-day window from every resource's recent downloads.

    Safe to run from several instances at once (one wins the advisory lock) and
    concurrently with downloads (relative updates). Returns the buckets expired.
    """
    day = today or rules.utc_day(utcnow())
    async with pool.acquire() as conn, conn.transaction():
        if not await store.try_lock_expiry(conn):
            return 0
        return await store.expire_download_days(conn, rules.first_day_in_window(day))
