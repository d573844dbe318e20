"""What a cursor of each sort of the resource list holds (SPEC §3: opaque, 400 if malformed).

A cursor is the sort's name (so a cursor of one sort is refused by another),
then the last item's sort key ending in its id (`store.sort_key`). Pure.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import asyncpg
from community_shared.errors import InvalidInput
from community_shared.pagination import decode_cursor, encode_cursor
from msgspec import Meta

from community_resources import store

Count = Annotated[int, Meta(ge=0, le=(1 << 63) - 1)]  # bigint counters
RatingCount = Annotated[int, Meta(ge=0, le=(1 << 31) - 1)]  # integer column
AwareTime = Annotated[dt.datetime, Meta(tz=True)]

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
