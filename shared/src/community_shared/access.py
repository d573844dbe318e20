"""Who may do what: the checks every route and use case ask, answered once.

Each `require_*` returns the caller's id or raises `Unauthenticated` (401,
guests) or `Forbidden` (403). The web plumbing turns them into route guards
(`web.MEMBERS`, ...), which refuse before the body is read; a use case that
decides on finer grounds (the author of this post) calls them too.

Pure: no I/O, nothing from the web framework.
"""

from __future__ import annotations

import uuid

from community_shared.auth import Identity
from community_shared.errors import Forbidden, Unauthenticated


def require_user(identity: Identity) -> uuid.UUID:
    """401 for guests; the caller's id otherwise."""
    if identity.user_id is None:
        raise Unauthenticated("authentication required")
    return identity.user_id


def require_member(identity: Identity) -> uuid.UUID:
    """401 for guests, 403 for students without an active membership."""
    user_id = require_user(identity)
    if not identity.is_member:
        raise Forbidden("an active membership is required")
    return user_id


def require_moderator(identity: Identity) -> uuid.UUID:
    """401 for guests, 403 unless instructor or admin."""
    user_id = require_user(identity)
    if not identity.is_moderator:
        raise Forbidden("instructors and admins only")
    return user_id


def require_student(identity: Identity) -> uuid.UUID:
    """401 for guests, 403 for instructors and admins (student-only routes)."""
    user_id = require_user(identity)
    if not identity.is_student:
        raise Forbidden("students only")
    return user_id
