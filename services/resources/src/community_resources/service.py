"""The resource library's use cases: one function per thing a user can do.

Each change runs in one transaction that also writes its event to the outbox,
so a change and its announcement commit together or not at all. Every input
is validated before the transaction starts; a refused request writes nothing.
Who may call a use case at all (moderator, signed-in user) is checked by the
routes; what depends on the resource (drafts, access level, having
downloaded it) is checked here.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import asyncpg
import msgspec
from community_shared.auth import Identity
from community_shared.errors import InvalidInput
from community_shared.events import make_event, utcnow
from community_shared.idempotency import IdempotencyKey, claim, remember
from community_shared.outbox import enqueue
from community_shared.pagination import decode_cursor, encode_cursor
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from msgspec import UNSET, Meta
from prometheus_client import Counter

from community_resources import events, rules, store
from community_resources.schemas import (
    CreateLink,
    CreateResource,
    DownloadOut,
    DownloadRequest,
    LinkCreated,
    LinkedList,
    LinkedResource,
    LinkOut,
    PublicResource,
    RateResource,
    RatingOut,
    ResourceOut,
    ResourcePage,
    UpdateResource,
)

log = logging.getLogger(__name__)

SCHEMA: Final = "resources"

DOWNLOADS = Counter("resources_downloads_total", "Resource downloads counted", ["caller"])


class Conflict(ClientException):
    status_code = 409


def _not_found() -> NotFoundException:
    return NotFoundException(detail="resource not found")


# --------------------------------------------------------------------------- views


def _common_fields(row: asyncpg.Record, now: dt.datetime, threshold: int | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "type": row["type"],
        "category": row["category"],
        "access": row["access"],
        "file_size": row["file_size"],
        "format": row["format"],
        "mime_type": row["mime_type"],
        "difficulty": row["difficulty"],
        "tags": list(row["tags"]),
        "source_type": row["source_type"],
        "source_id": row["source_id"],
        "download_count": row["download_count"],
        "rating_average": rules.rating_average(row["rating_sum"], row["rating_count"]),
        "rating_count": row["rating_count"],
        "is_new": rules.is_new(row["published_at"], now),
        "is_popular": row["published_at"] is not None
        and rules.is_popular(row["recent_downloads"], threshold),
        "is_featured": row["is_featured"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "published_at": row["published_at"],
    }


def public_view(row: asyncpg.Record, now: dt.datetime, threshold: int | None) -> PublicResource:
    return PublicResource(**_common_fields(row, now, threshold))


def caller_view(row: asyncpg.Record, now: dt.datetime, threshold: int | None) -> ResourceOut:
    return ResourceOut(**_common_fields(row, now, threshold), my_rating=row["my_rating"])


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


def _event(type_: str, data: Any, identity: Identity) -> Any:
    return make_event(type_, data, source=events.SOURCE, actor_id=identity.user_id)


async def _announce(
    conn: asyncpg.Connection, type_: str, data: Any, identity: Identity, resource_id: uuid.UUID
) -> None:
    await enqueue(conn, SCHEMA, _event(type_, data, identity), aggregate=f"resource:{resource_id}")


# --------------------------------------------------------------------------- CRUD


async def create_resource(
    pool: asyncpg.Pool,
    identity: Identity,
    author_id: uuid.UUID,
    body: CreateResource,
    idempotency: IdempotencyKey | None = None,
) -> ResourceOut:
    values = msgspec.structs.asdict(body)
    resource_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await claim(conn, SCHEMA, idempotency)
        row = await store.insert_resource(
            conn, resource_id=resource_id, created_by=author_id, values=values, publish=body.publish
        )
        threshold = await popularity_threshold(conn)
        now = utcnow()
        await _announce(
            conn, events.RESOURCE_CREATED, public_view(row, now, threshold), identity, resource_id
        )
        created = caller_view(row, now, threshold)
        await remember(conn, SCHEMA, idempotency, created)
    return created


async def get_resource(
    pool: asyncpg.Pool, identity: Identity, resource_id: uuid.UUID
) -> ResourceOut:
    async with pool.acquire() as conn:
        row = _visible(await store.fetch_resource(conn, resource_id, identity.user_id), identity)
        threshold = await popularity_threshold(conn)
    return caller_view(row, utcnow(), threshold)


async def update_resource(
    pool: asyncpg.Pool,
    identity: Identity,
    moderator_id: uuid.UUID,
    resource_id: uuid.UUID,
    body: UpdateResource,
) -> ResourceOut:
    """Change what is present in `body`; announce it only if something really changed."""
    async with pool.acquire() as conn, conn.transaction():
        current = await store.lock_resource(conn, resource_id)
        if current is None:
            raise _not_found()
        published = current["published_at"] is not None
        if body.publish is False and published:
            raise Conflict(detail="a published resource cannot go back to draft; delete it instead")
        publish = body.publish is True and not published
        changes = {
            column: value
            for column, value in body.column_changes().items()
            if current[column] != value
        }
        if not changes and not publish:
            row = await store.fetch_resource(conn, resource_id, moderator_id)
            assert row is not None  # locked above
            threshold = await popularity_threshold(conn)
            return caller_view(row, utcnow(), threshold)
        row = await store.update_resource(
            conn, resource_id, changes, publish=publish, viewer_id=moderator_id
        )
        threshold = await popularity_threshold(conn)
        now = utcnow()
        await _announce(
            conn, events.RESOURCE_UPDATED, public_view(row, now, threshold), identity, resource_id
        )
    return caller_view(row, now, threshold)


async def delete_resource(pool: asyncpg.Pool, identity: Identity, resource_id: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        if not await store.soft_delete_resource(conn, resource_id):
            raise _not_found()
        await _announce(
            conn,
            events.RESOURCE_DELETED,
            events.ResourceDeleted(id=resource_id),
            identity,
            resource_id,
        )


# --------------------------------------------------------------------------- listing

Count = Annotated[int, Meta(ge=0, le=(1 << 63) - 1)]  # bigint counters
RatingCount = Annotated[int, Meta(ge=0, le=(1 << 31) - 1)]  # integer column
AwareTime = Annotated[dt.datetime, Meta(tz=True)]

# What a cursor of each sort decodes to: the sort's name (so a cursor of one
# sort is refused by another), then the last item's sort key ending in its id.
CURSOR_TYPES: Final[dict[str, Any]] = {
    "newest": tuple[Literal["newest"], AwareTime, uuid.UUID],
    "downloads": tuple[Literal["downloads"], Count, uuid.UUID],
    "popular": tuple[Literal["popular"], Count, Count, uuid.UUID],
    "rating": tuple[Literal["rating"], Decimal | None, RatingCount, uuid.UUID],
    "drafts": tuple[Literal["drafts"], AwareTime, uuid.UUID],
}


def decode_position(sort: str, cursor: str | None) -> tuple[Any, ...] | None:
    """The sort key a cursor continues after; 400 for anything malformed or of another sort."""
    decoded = decode_cursor(cursor, CURSOR_TYPES[sort])
    if decoded is None:
        return None
    key: tuple[Any, ...] = tuple(
        _in_utc(value) if isinstance(value, dt.datetime) else value for value in decoded[1:]
    )
    average = key[0]
    if isinstance(average, Decimal) and not (
        average.is_finite() and Decimal(1) <= average <= Decimal(5)
    ):
        raise InvalidInput("malformed cursor")
    return key


def _in_utc(moment: dt.datetime) -> dt.datetime:
    """A cursor's time in UTC; one that falls outside the representable years is malformed."""
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidInput("malformed cursor") from exc


def encode_position(sort: str, row: asyncpg.Record) -> str:
    return encode_cursor([sort, *store.sort_key(sort, row)])


async def list_resources(
    pool: asyncpg.Pool,
    identity: Identity,
    *,
    filters: store.ListFilters,
    sort: str,
    drafts: bool,
    cursor: str | None,
    limit: int,
) -> ResourcePage:
    """A page of published resources (or of drafts, for moderators, newest first)."""
    key_sort = "drafts" if drafts else sort
    after = decode_position(key_sort, cursor)
    async with pool.acquire() as conn:
        rows = await store.list_resources(
            conn,
            filters=filters,
            sort=key_sort,
            after=after,
            limit=limit + 1,
            viewer_id=identity.user_id,
        )
        threshold = await popularity_threshold(conn)
    page, more = rows[:limit], len(rows) > limit
    now = utcnow()
    return ResourcePage(
        items=[caller_view(row, now, threshold) for row in page],
        next_cursor=encode_position(key_sort, page[-1]) if more else None,
    )


# --------------------------------------------------------------------------- links


async def create_link(
    pool: asyncpg.Pool,
    moderator_id: uuid.UUID,
    resource_id: uuid.UUID,
    body: CreateLink,
    idempotency: IdempotencyKey | None = None,
) -> LinkCreated:
    async with pool.acquire() as conn, conn.transaction():
        await claim(conn, SCHEMA, idempotency)
        if await store.fetch_resource(conn, resource_id, None) is None:
            raise _not_found()
        row = await store.insert_link(
            conn,
            link_id=uuid.uuid4(),
            resource_id=resource_id,
            entity_type=body.entity_type,
            entity_id=body.entity_id,
            timestamp_seconds=body.timestamp_seconds,
            label=body.label,
            display_order=body.display_order,
            created_by=moderator_id,
        )
        if row is None:
            raise Conflict(detail="the resource is already linked to this entity")
        link = LinkCreated(
            id=row["id"],
            resource_id=row["resource_id"],
            entity_type=row["entity_type"],
            entity_id=row["entity_id"],
            timestamp_seconds=row["timestamp_seconds"],
            label=row["label"],
            display_order=row["display_order"],
            created_at=row["created_at"],
        )
        await remember(conn, SCHEMA, idempotency, link)
    return link


async def delete_link(pool: asyncpg.Pool, resource_id: uuid.UUID, link_id: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        if not await store.delete_link(conn, resource_id, link_id):
            raise NotFoundException(detail="link not found")


async def linked_resources(
    pool: asyncpg.Pool, identity: Identity, entity_type: str, entity_id: uuid.UUID
) -> LinkedList:
    async with pool.acquire() as conn:
        rows = await store.linked_resources(
            conn,
            entity_type=entity_type,
            entity_id=entity_id,
            viewer_id=identity.user_id,
            include_drafts=identity.is_moderator,
        )
        threshold = await popularity_threshold(conn)
    now = utcnow()
    return LinkedList(
        items=[
            LinkedResource(
                **_common_fields(row, now, threshold),
                my_rating=row["my_rating"],
                link=LinkOut(
                    id=row["link_id"],
                    timestamp_seconds=row["link_timestamp_seconds"],
                    label=row["link_label"],
                    display_order=row["link_display_order"],
                ),
            )
            for row in rows
        ]
    )


# --------------------------------------------------------------------------- downloads


def _check_download(access: str, identity: Identity, email: str | None) -> None:
    decision = rules.download_decision(
        access=access, signed_in=not identity.is_guest, member=identity.is_member
    )
    if decision is rules.DownloadDecision.UNAUTHENTICATED:
        raise NotAuthorizedException(detail="sign in to download members-only resources")
    if decision is rules.DownloadDecision.FORBIDDEN:
        raise PermissionDeniedException(detail="an active membership is required")
    if decision is rules.DownloadDecision.NEEDS_EMAIL and email is None:
        raise ValidationException(detail="an email is required to download as a guest")


async def download(
    pool: asyncpg.Pool, identity: Identity, resource_id: uuid.UUID, body: DownloadRequest
) -> DownloadOut:
    """Hand out the file's address and count the download (with the caller's own record).

    A moderator downloading a draft previews it: nothing is counted.
    """
    async with pool.acquire() as conn:
        target = _visible(await store.download_target(conn, resource_id), identity)
        if target["published_at"] is None:
            return DownloadOut(url=target["file_url"])
        _check_download(target["access"], identity, body.email)
        async with conn.transaction():
            counted = await store.count_download(conn, resource_id)
            if counted is None:  # deleted meanwhile
                raise _not_found()
            # Decide again on the locked row, in case access changed since the check.
            _check_download(counted["access"], identity, body.email)
            if identity.user_id is not None:
                await store.record_user_download(conn, resource_id, identity.user_id)
            else:
                assert body.email is not None
                await store.record_guest_download(conn, resource_id, body.email)
            await store.add_to_download_day(conn, resource_id)
            payload = events.ResourceDownloaded(
                resource_id=resource_id,
                user_id=identity.user_id,
                download_count=counted["download_count"],
                rating_average=rules.rating_average(counted["rating_sum"], counted["rating_count"]),
                rating_count=counted["rating_count"],
            )
            await _announce(conn, events.RESOURCE_DOWNLOADED, payload, identity, resource_id)
    DOWNLOADS.labels(caller="guest" if identity.is_guest else "user").inc()
    return DownloadOut(url=counted["file_url"])


# --------------------------------------------------------------------------- ratings


async def rate(
    pool: asyncpg.Pool,
    identity: Identity,
    user_id: uuid.UUID,
    resource_id: uuid.UUID,
    body: RateResource,
) -> RatingOut:
    """Set the caller's rating (1..5, with an optional review) of a resource they downloaded."""
    async with pool.acquire() as conn, conn.transaction():
        _visible(await store.lock_published_resource(conn, resource_id), identity)
        mine = await store.lock_user_interaction(conn, resource_id, user_id)
        if mine is None or mine["download_count"] == 0:
            raise Conflict(detail="download the resource before rating it")
        review = mine["review"] if body.review is UNSET else body.review
        if mine["rating"] == body.rating and mine["review"] == review:
            totals = await store.resource_counters(conn, resource_id)
            return _rating_out(totals)
        await store.set_rating(conn, mine["id"], body.rating, review)
        sum_delta, count_delta = rules.rating_change(mine["rating"], body.rating)
        totals = await store.change_rating_totals(conn, resource_id, sum_delta, count_delta)
        payload = events.ResourceRated(
            resource_id=resource_id,
            user_id=user_id,
            rating=body.rating,
            download_count=totals["download_count"],
            rating_average=rules.rating_average(totals["rating_sum"], totals["rating_count"]),
            rating_count=totals["rating_count"],
        )
        await _announce(conn, events.RESOURCE_RATED, payload, identity, resource_id)
    return _rating_out(totals)


def _rating_out(totals: asyncpg.Record) -> RatingOut:
    return RatingOut(
        rating_average=rules.rating_average(totals["rating_sum"], totals["rating_count"]),
        rating_count=totals["rating_count"],
    )


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
