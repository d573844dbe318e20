"""The one JWT check: what it accepts and what it refuses."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from community_shared.auth import (
    GUEST,
    InvalidToken,
    check_claims,
    decode_token,
    identity_from_authorization,
    issue_token,
)

from tests.hostile import malformed_claim_tokens

SECRET = "unit-test-secret-of-at-least-32-bytes"


def test_valid_student_token_is_a_member_by_default() -> None:
    sub = uuid.uuid4()
    identity = decode_token(issue_token(sub=sub, role="student", name="Ada", secret=SECRET), SECRET)
    assert identity.user_id == sub
    assert identity.role == "student"
    assert identity.name == "Ada"
    assert identity.is_member and identity.is_student and not identity.is_moderator


def test_non_member_student_reads_like_a_guest_for_writes() -> None:
    token = issue_token(sub=uuid.uuid4(), role="student", name="N", secret=SECRET, member=False)
    identity = decode_token(token, SECRET)
    assert not identity.is_member
    assert not identity.is_guest


@pytest.mark.parametrize("role", ["instructor", "admin"])
def test_instructors_and_admins_are_always_members(role: str) -> None:
    token = issue_token(sub=uuid.uuid4(), role=role, name="I", secret=SECRET, member=False)
    identity = decode_token(token, SECRET)
    assert identity.is_member and identity.is_moderator


def test_forged_signature_is_refused() -> None:
    token = issue_token(
        sub=uuid.uuid4(), role="admin", name="x", secret="another-secret-of-at-least-32-bytes!!"
    )
    with pytest.raises(InvalidToken):
        decode_token(token, SECRET)


def test_expired_token_is_refused() -> None:
    token = issue_token(
        sub=uuid.uuid4(),
        role="student",
        name="x",
        secret=SECRET,
        ttl_seconds=10,
        now=time.time() - 60,
    )
    with pytest.raises(InvalidToken):
        decode_token(token, SECRET)


def test_none_algorithm_is_refused() -> None:
    claims = {"sub": str(uuid.uuid4()), "role": "admin", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        decode_token(token, SECRET)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "not-a-uuid", "role": "student"},
        {"sub": str(uuid.uuid4()), "role": "superuser"},
        {"sub": str(uuid.uuid4())},
        {"sub": str(uuid.uuid4()), "role": "student", "member": "yes"},
        {"sub": str(uuid.uuid4()), "role": "student", "name": 42},
        {"role": "student"},
    ],
)
def test_invalid_claims_are_refused(claims: dict[str, object]) -> None:
    token = jwt.encode({**claims, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        decode_token(token, SECRET)


def test_missing_exp_is_refused() -> None:
    token = jwt.encode({"sub": str(uuid.uuid4()), "role": "student"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        decode_token(token, SECRET)


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer not.a.jwt", "token"])
def test_malformed_authorization_headers_are_refused(header: str) -> None:
    with pytest.raises(InvalidToken):
        identity_from_authorization(header, SECRET)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_authorization_is_the_guest(header: str | None) -> None:
    assert identity_from_authorization(header, SECRET) == GUEST
    assert GUEST.is_guest and not GUEST.is_member


def test_control_characters_are_dropped_from_names() -> None:
    token = issue_token(sub=uuid.uuid4(), role="student", name="A\x00d\x07a", secret=SECRET)
    assert decode_token(token, SECRET).name == "Ada"


@pytest.mark.parametrize("case", sorted(malformed_claim_tokens(SECRET)))
def test_signed_tokens_with_malformed_claims_are_refused(case: str) -> None:
    """SPEC §2: a correctly signed token whose claims have wrong types or values is a 401."""
    with pytest.raises(InvalidToken):
        decode_token(malformed_claim_tokens(SECRET)[case], SECRET)


@pytest.mark.parametrize(
    "claims",
    [
        {"role": ["student"]},
        {"role": {"student": True}},
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"exp": "1999999999"},
        {"exp": True},
        {"exp": 10**30},
        {"sub": 1},
        {"sub": "urn:uuid:00000000-0000-0000-0000-000000000001"},
        {"name": None},
        {"member": 1},
    ],
)
def test_check_claims_refuses_wrong_types_and_values(claims: dict[str, object]) -> None:
    valid = {"sub": str(uuid.uuid4()), "role": "student", "name": "Ada", "exp": time.time() + 60}
    with pytest.raises(InvalidToken):
        check_claims({**valid, **claims})


@pytest.mark.parametrize("claims", [None, [], "claims", 42, {}])
def test_check_claims_refuses_what_is_not_a_claims_object(claims: object) -> None:
    with pytest.raises(InvalidToken):
        check_claims(claims)


def test_check_claims_accepts_the_spec_claims_and_ignores_others() -> None:
    sub = uuid.uuid4()
    identity = check_claims(
        {"sub": sub.hex, "role": "instructor", "exp": 2e9, "aud": ["x"], "member": False},
        now=1e9,
    )
    assert identity.user_id == sub and identity.role == "instructor"
    assert identity.name == "" and identity.is_member and identity.exp == 2_000_000_000
