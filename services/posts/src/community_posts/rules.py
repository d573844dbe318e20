"""The posts service's business rules, pure (no I/O).

What content is acceptable, who may see, change or remove a post or a reply,
and why a post was deleted. Routes and use cases ask these functions rather
than re-deriving the answers, so every rule lives here once.
"""

from __future__ import annotations

import uuid
from typing import Final, Literal

from community_shared.auth import Identity
from community_shared.errors import InvalidInput as InvalidInput  # what the clean_* rules raise
from community_shared.text import clean_text

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


FeedAudience = Literal["members", "public+own", "public"]


def clean_content(raw: str, field: str = "content") -> str:
    """Trimmed content of 1..5000 characters, or `InvalidInput`."""
    content = clean_text(
        raw, field, max_length=MAX_CONTENT_CHARS, required=True, blank="must not be empty"
    )
    assert content is not None
    return content


def clean_details(raw: str | None) -> str | None:
    """A report's optional free text: trimmed, blank means none, at most 1000 characters."""
    return clean_text(raw, "details", max_length=MAX_REPORT_DETAILS_CHARS)


def clean_query(raw: str | None) -> str | None:
    """The `q` search text: trimmed, blank means no search, at most 200 characters."""
    return clean_text(raw, "q", max_length=MAX_QUERY_CHARS)


def feed_audience(viewer: Identity) -> FeedAudience:
    """Which posts a viewer's feed holds: members see all; a signed-in non-member
    the public posts and their own; a guest the public posts."""
    if viewer.is_member:
        return "members"
    if viewer.user_id is not None:
        return "public+own"
    return "public"


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
