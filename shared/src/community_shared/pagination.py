"""Pages of a list: opaque keyset cursors, the `limit` rule of SPEC §3, one page type.

A cursor is the sort key of the last item of a page, JSON-encoded and
base64url'd. Services decode it to the exact key they sort by (a msgspec
Struct, `array_like`) and continue with `WHERE (key) < (cursor)`, so a page
never repeats or skips an item when new items arrive meanwhile. Anything that
does not decode to the expected shape — a time without its zone included, as
no cursor we make has one — is `InvalidInput` (400), never a 500.

A list use case fetches `limit + 1` rows and hands them to `keyset_page`,
which keeps `limit` and builds the next cursor from the last one kept.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from community_shared.errors import InvalidInput
from community_shared.jsonin import decode_json

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


# Query parameters of a list route (metadata for the OpenAPI document only).
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}")]
"""The `limit` query parameter of a list route: `limit: Limit = DEFAULT_LIMIT`."""
Cursor = Annotated[
    str | None, Parameter(description="the `next_cursor` of the previous page (opaque)")
]
"""The `cursor` query parameter of a list route: `cursor: Cursor = None`."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The page a list route is asked for: its query's `cursor` and `limit` (checked)."""

    cursor: str | None
    limit: int


class Page(msgspec.Struct, Generic[T]):
    """A page of a list (SPEC §3). A service names its pages by subclassing:
    `class PostPage(Page[Post]): ...`."""

    items: list[T]
    next_cursor: str | None


class TimeKey(msgspec.Struct, frozen=True, array_like=True):
    """The most common sort key: a time (newest or oldest first), then the id."""

    at: dt.datetime
    id: uuid.UUID


def parse_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(cursor: str | None, type_: type[T]) -> T | None:
    """Decode `cursor` into `type_` (e.g. `TimeKey`); `InvalidInput` if malformed."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = decode_json(raw, type=type_)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidInput("malformed cursor") from exc
    if isinstance(key, msgspec.Struct) and any(
        isinstance(value, dt.datetime) and value.tzinfo is None
        for value in msgspec.structs.astuple(key)
    ):
        raise InvalidInput("malformed cursor")  # every time we put in a cursor has its zone
    return key


def keyset_page(
    rows: Sequence[R], limit: int, key: Callable[[R], msgspec.Struct]
) -> tuple[Sequence[R], str | None]:
    """The first `limit` of `rows` (fetched with `LIMIT limit + 1`) and the cursor of
    the next page: `key` of the last row kept, or None when there is no more."""
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    return kept, encode_cursor(key(kept[-1]))
