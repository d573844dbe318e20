"""Identity: the one JWT check of the system (SPEC §2).

`decode_token` turns a bearer token into an `Identity` or raises
`InvalidToken`; it never returns a half-trusted identity. No token at all is
the guest identity. Authorization helpers answer the SPEC's questions (is this
caller a member? a moderator?) so routes do not re-derive them.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

import jwt
import msgspec

Role = Literal["student", "instructor", "admin"]
ROLES: frozenset[str] = frozenset({"student", "instructor", "admin"})


class InvalidToken(Exception):
    """The token is malformed, forged, expired or carries invalid claims."""


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID | None
    role: str  # "guest" | Role
    name: str
    member: bool
    exp: int | None = None

    @property
    def is_guest(self) -> bool:
        return self.user_id is None

    @property
    def is_moderator(self) -> bool:
        """Instructors and admins moderate and review."""
        return self.role in ("instructor", "admin")

    @property
    def is_student(self) -> bool:
        return self.role == "student"

    @property
    def is_member(self) -> bool:
        """Members may post, reply, like and download members-only resources."""
        return self.user_id is not None and (self.is_moderator or self.member)


GUEST = Identity(user_id=None, role="guest", name="Guest", member=False)


def decode_token(token: str, secret: str, *, now: float | None = None) -> Identity:
    """Verify an HS256 token and return its identity.

    Raises `InvalidToken` for a bad signature, a missing or past `exp`, an
    unknown role, a `sub` that is not a UUID or a `member` that is not a bool.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["sub", "role", "exp"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidToken("exp must be a number")
    if exp <= (time.time() if now is None else now):
        raise InvalidToken("token expired")
    role = claims.get("role")
    if role not in ROLES:
        raise InvalidToken("unknown role")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise InvalidToken("sub must be a UUID") from exc
    name = claims.get("name")
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise InvalidToken("name must be a string")
    member = claims.get("member", True)
    if not isinstance(member, bool):
        raise InvalidToken("member must be a boolean")
    if role != "student":
        member = True
    # Postgres text cannot hold NUL; a display name never needs control characters.
    name = "".join(ch for ch in name if ch >= " " or ch == "\t")[:200]
    return Identity(user_id=user_id, role=role, name=name, member=member, exp=int(exp))


def identity_from_authorization(header: str | None, secret: str) -> Identity:
    """Parse an `Authorization` header value; absent means guest.

    Raises `InvalidToken` for anything present but not a valid bearer token.
    """
    if header is None or header.strip() == "":
        return GUEST
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("expected 'Bearer <token>'")
    return decode_token(token.strip(), secret)


def issue_token(
    *,
    sub: uuid.UUID | str,
    role: str,
    name: str,
    secret: str,
    ttl_seconds: int = 3600,
    member: bool | None = None,
    now: float | None = None,
) -> str:
    """Sign a token (development and tests; production tokens come from the platform)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": str(sub),
        "role": role,
        "name": name,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if member is not None:
        claims["member"] = member
    return jwt.encode(claims, secret, algorithm="HS256")
