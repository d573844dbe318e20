"""The posts service's business rules, pure (no I/O).

What content is acceptable, who may see, change or remove a post or a reply,
and why a post was deleted. Routes and use cases ask these functions rather
than re-deriving the answers, so every rule lives here once.
"""

from __future__ import annotations

import uuid
from typing import Final, Literal

from community_shared.auth import Identity

MAX_CONTENT_CHARS: Final = 5000
MAX_REPORT_DETAILS_CHARS: Final = 1000
MAX_QUERY_CHARS: Final = 200

Role = Literal["student", "instructor", "admin"]
Visibility = Literal["public", "members"]
FeedFilter = Literal["all", "instructors", "mine"]
ReportReason = Literal["spam", "abuse", "off_topic", "other"]
ReportStatus = Literal["open", "resolved"]
ResolveAction = Literal["dismiss", "remove"]
DeleteReason = Literal["author", "moderator", "report"]


class InvalidInput(ValueError):
    """A client value breaks a rule; the message is safe to show to the client."""


def _check_text(text: str, field: str) -> None:
    # Postgres text cannot hold NUL, and lone surrogates cannot be encoded as
    # UTF-8; both would otherwise surface as a server error at write time.
    if "\x00" in text:
        raise InvalidInput(f"{field} must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text") from exc


def clean_content(raw: str, field: str = "content") -> str:
    """Trimmed content of 1..5000 characters, or `InvalidInput`."""
    _check_text(raw, field)
    content = raw.strip()
    if not content:
        raise InvalidInput(f"{field} must not be empty")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidInput(
            f"{field} must be at most {MAX_CONTENT_CHARS} characters (got {len(content)})"
        )
    return content


def clean_details(raw: str | None) -> str | None:
    """A report's optional free text: trimmed, blank means none, at most 1000 characters."""
    if raw is None:
        return None
    _check_text(raw, "details")
    details = raw.strip()
    if not details:
        return None
    if len(details) > MAX_REPORT_DETAILS_CHARS:
        raise InvalidInput(f"details must be at most {MAX_REPORT_DETAILS_CHARS} characters")
    return details


def clean_query(raw: str | None) -> str | None:
    """The `q` search text: trimmed, blank means no search, at most 200 characters."""
    if raw is None:
        return None
    _check_text(raw, "q")
    query = raw.strip()
    if not query:
        return None
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"q must be at most {MAX_QUERY_CHARS} characters")
    return query


def may_see(viewer: Identity, *, visibility: str, author_id: uuid.UUID) -> bool:
    """Public posts are for everyone; members-only posts for members and their author."""
    return visibility == "public" or viewer.is_member or viewer.user_id == author_id


def may_edit(viewer: Identity, *, author_id: uuid.UUID) -> bool:
    """Only the author edits a post or a reply (moderators remove, they do not rewrite)."""
    return viewer.user_id is not None and viewer.user_id == author_id


def may_remove(viewer: Identity, *, author_id: uuid.UUID) -> bool:
    """The author, an instructor or an admin may delete a post or a reply."""
    return viewer.user_id is not None and (viewer.user_id == author_id or viewer.is_moderator)


def deletion_reason(viewer: Identity, *, author_id: uuid.UUID) -> DeleteReason:
    """`author` when people delete their own post, `moderator` otherwise."""
    return "author" if viewer.user_id == author_id else "moderator"
