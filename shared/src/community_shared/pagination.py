"""Opaque keyset cursors and the `limit` rule of SPEC §3.

A cursor is the sort key of the last item of a page, JSON-encoded and
base64url'd. Services decode it to the exact tuple they sort by and continue
with `WHERE (key) < (cursor)`, so a page never repeats or skips an item when new
items arrive meanwhile. Anything that does not decode to the expected shape is
a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from community_shared.jsonin import decode_json

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}")]
"""The `limit` query parameter of a list route: `limit: Limit = DEFAULT_LIMIT`."""
Cursor = Annotated[
    str | None, Parameter(description="the `next_cursor` of the previous page (opaque)")
]
"""The `cursor` query parameter of a list route: `cursor: Cursor = None`."""


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


def parse_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationException(detail=f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(cursor: str | None, type_: type[T]) -> T | None:
    """Decode `cursor` into `type_` (e.g. `tuple[bool, datetime, UUID]`); 400 if malformed."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return decode_json(raw, type=type_)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValidationException(detail="malformed cursor") from exc
