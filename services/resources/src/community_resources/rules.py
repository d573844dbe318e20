"""The resource library's rules, as plain functions (no I/O).

What the values of a resource may be, who may download what, how a rating
changes the aggregate, and what `is_new` / `is_popular` mean. The store and the
service apply these; the unit tests drive them directly.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal, get_args

from community_shared import text
from community_shared.errors import InvalidInput

ResourceType = Literal[
    "template", "guide", "checklist", "pdf", "video", "tool", "spreadsheet", "code"
]
Category = Literal["client-acquisition", "development", "business", "templates", "marketing"]
Difficulty = Literal["beginner", "intermediate", "advanced"]
Access = Literal["free", "members"]
EntityType = Literal["community_post", "course_video", "course", "conversation"]
Sort = Literal["newest", "popular", "rating", "downloads"]

RESOURCE_TYPES: Final[tuple[str, ...]] = get_args(ResourceType)
CATEGORIES: Final[tuple[str, ...]] = get_args(Category)
DIFFICULTIES: Final[tuple[str, ...]] = get_args(Difficulty)
ACCESS_LEVELS: Final[tuple[str, ...]] = get_args(Access)
ENTITY_TYPES: Final[tuple[str, ...]] = get_args(EntityType)
SORTS: Final[tuple[str, ...]] = get_args(Sort)

DEFAULT_ACCESS: Final[Access] = "members"
"""A resource is members-only unless its creator says it is free: forgetting the
field must never give away members' material."""

NEW_FOR: Final = dt.timedelta(days=14)
POPULAR_WINDOW_DAYS: Final = 30
POPULAR_SHARE: Final = 0.10
POPULAR_MIN_DOWNLOADS: Final = 10

MAX_TITLE: Final = 200
MAX_DESCRIPTION: Final = 5000
MAX_URL: Final = 2048
MAX_TAGS: Final = 20
MAX_TAG: Final = 40
MAX_FORMAT: Final = 20
MAX_MIME: Final = 127
MAX_SOURCE_TYPE: Final = 50
MAX_SOURCE_ID: Final = 200
MAX_LABEL: Final = 200
MAX_REVIEW: Final = 2000
MAX_QUERY: Final = 200
MAX_EMAIL: Final = 254
MAX_FILE_SIZE: Final = 1 << 50  # 1 PiB: far above any real file, well inside bigint
MAX_TIMESTAMP_SECONDS: Final = 1_000_000  # ~11.5 days of video
MAX_DISPLAY_ORDER: Final = 1_000_000


# --------------------------------------------------------------------------- text


def clean_text(value: str, field: str, *, max_length: int, required: bool = False) -> str | None:
    """Trim `value`; None when blank (unless `required`, then `InvalidInput`)."""
    return text.clean_text(value, field, max_length=max_length, required=required)


def normalize_tag(value: str) -> str:
    """A tag as stored and matched: trimmed, inner whitespace collapsed, lower case."""
    if "\x00" in value:
        raise InvalidInput("tags must not contain NUL characters")
    tag = " ".join(value.split()).lower()
    if not tag:
        raise InvalidInput("tags must not be blank")
    if len(tag) > MAX_TAG:
        raise InvalidInput(f"a tag must be at most {MAX_TAG} characters")
    return tag


def normalize_tags(values: list[str]) -> list[str]:
    """Normalized tags, duplicates removed, first occurrence's order kept."""
    tags = list(dict.fromkeys(normalize_tag(v) for v in values))
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags")
    return tags


def check_https_url(value: str, field: str = "file_url") -> str:
    """An absolute https URL with a host, no whitespace or control characters."""
    return text.https_url(value, field, max_length=MAX_URL)


_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def normalize_mime_type(value: str) -> str | None:
    mime = clean_text(value, "mime_type", max_length=MAX_MIME)
    if mime is None:
        return None
    mime = mime.lower()
    if not _MIME.match(mime):
        raise InvalidInput("mime_type must look like type/subtype")
    return mime


# --------------------------------------------------------------------------- email

_EMAIL_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_EMAIL_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_email(value: str) -> str:
    """A guest's email as stored: trimmed and lower-cased; ValueError if not an address.

    Accepts the common dot-atom form `local@domain.tld` (no quoted local parts,
    no IP literals): what a download form would reasonably collect.
    """
    email = value.strip().lower()
    if len(email) > MAX_EMAIL or email.count("@") != 1:
        raise InvalidInput("email is not a valid address")
    local, domain = email.split("@")
    if not 1 <= len(local) <= 64 or not _EMAIL_LOCAL.match(local):
        raise InvalidInput("email is not a valid address")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_EMAIL_LABEL.match(label) for label in labels):
        raise InvalidInput("email is not a valid address")
    if labels[-1].isdigit():
        raise InvalidInput("email is not a valid address")
    return email


# --------------------------------------------------------------------------- access


class DownloadDecision(enum.Enum):
    """What a download request gets, before any input besides identity is checked."""

    ALLOWED = "allowed"  # a signed-in caller who may have it
    NEEDS_EMAIL = "needs_email"  # a guest and a free resource: allowed with a valid email
    UNAUTHENTICATED = "unauthenticated"  # 401
    FORBIDDEN = "forbidden"  # 403


def download_decision(*, access: str, signed_in: bool, member: bool) -> DownloadDecision:
    """Members get everything published; anyone gets free resources (guests leave an email).

    A signed-in student without a membership is a known user, so a free
    resource needs no email from them; a members-only one is 403.
    """
    if access == "free":
        return DownloadDecision.ALLOWED if signed_in else DownloadDecision.NEEDS_EMAIL
    if not signed_in:
        return DownloadDecision.UNAUTHENTICATED
    return DownloadDecision.ALLOWED if member else DownloadDecision.FORBIDDEN


# --------------------------------------------------------------------------- ratings


def rating_change(old: int | None, new: int) -> tuple[int, int]:
    """(delta of rating_sum, delta of rating_count) when a user's rating goes old -> new."""
    if old is None:
        return new, 1
    return new - old, 0


def rating_average(rating_sum: int, rating_count: int) -> float | None:
    """The mean rating rounded half-up to two decimals; None while unrated."""
    if rating_count <= 0:
        return None
    mean = Decimal(rating_sum) / Decimal(rating_count)
    return float(mean.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- badges


def is_new(published_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Published within the last 14 days (a draft is not new: nobody sees it yet)."""
    return published_at is not None and now - published_at <= NEW_FOR


def popular_rank_cutoff(published_count: int) -> int:
    """How many places of the 30-day ranking make the top 10% (at least one if any exist)."""
    if published_count <= 0:
        return 0
    return max(1, math.ceil(published_count * POPULAR_SHARE))


def popularity_threshold(cutoff_value: int | None) -> int | None:
    """The 30-day download count a resource needs to be popular.

    `cutoff_value` is the 30-day count of the resource at place
    `popular_rank_cutoff(n)` of the ranking (ties share a place, so every
    resource tied with it is in the top 10% too). None: nothing is popular.
    """
    if cutoff_value is None:
        return None
    return max(cutoff_value, POPULAR_MIN_DOWNLOADS)


def is_popular(recent_downloads: int, threshold: int | None) -> bool:
    return threshold is not None and recent_downloads >= threshold


def utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


def first_day_in_window(today: dt.date) -> dt.date:
    """The oldest UTC day whose downloads still count as 'the last 30 days' (today included)."""
    return today - dt.timedelta(days=POPULAR_WINDOW_DAYS - 1)
