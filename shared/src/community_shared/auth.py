"""Identity: the one JWT check of the system (SPEC §2).

`decode_token` turns a bearer token into an `Identity` or raises
`InvalidToken`; it never returns a half-trusted identity. No token at all is
the guest identity. Authorization helpers answer the SPEC's questions (is this
caller a member? a moderator?) so routes do not re-derive them.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Final, Literal

import jwt
import msgspec

Role = Literal["student", "instructor", "admin"]
ROLES: frozenset[str] = frozenset({"student", "instructor", "admin"})
MAX_EXP: Final = 253_402_300_799
"""9999-12-31T23:59:59Z: a later `exp` is no time at all (and overflows date arithmetic)."""


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


class Claims(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """The claims of SPEC §2 with their types and ranges; anything else in a token is ignored.

    `sub` is a UUID string (hyphenated or 32 hex digits), `role` one of
    `ROLES`, `exp` a finite number of seconds no later than year 9999, `name`
    a string when present, `member` a JSON boolean when present.
    """

    sub: uuid.UUID
    role: Role
    exp: Annotated[float, msgspec.Meta(ge=0, le=MAX_EXP)]
    name: str = ""
    member: bool = True


def check_claims(claims: object, *, now: float | None = None) -> Identity:
    """The identity that verified `claims` (a token's decoded payload) stand for.

    The one claims check, shared by every service and the gateway. Raises
    `InvalidToken`, and nothing else whatever `claims` holds: wrong types or
    values, a missing claim, a past `exp`.
    """
    try:
        checked = msgspec.convert(claims, Claims, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidToken(f"invalid claims: {exc}") from exc
    if checked.exp <= (time.time() if now is None else now):
        raise InvalidToken("token expired")
    member = checked.member if checked.role == "student" else True
    # Postgres text cannot hold NUL; a display name never needs control characters.
    name = "".join(ch for ch in checked.name[:400] if ch >= " " or ch == "\t")[:200]
    return Identity(
        user_id=checked.sub, role=checked.role, name=name, member=member, exp=int(checked.exp)
    )


def decode_token(token: str, secret: str, *, now: float | None = None) -> Identity:
    """Verify an HS256 token and return its identity.

    Raises `InvalidToken` for a bad signature or anything `check_claims`
    refuses; never anything else.
    """
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    return check_claims(claims, now=now)


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
