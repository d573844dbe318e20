"""Hostile inputs shared by the unit and integration tests (SPEC §2, §3, §9).

Deeply nested JSON, and correctly signed tokens whose claims have the wrong
types or values. Tokens are signed by hand (HS256 over the exact JSON text)
so that a payload can hold what a JWT library would never write: `NaN`,
`Infinity`, a thousand nested arrays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

DEEP = 1000
"""Levels of nesting of the deep bodies: about 2 KB of text."""

DEEP_BODIES: dict[str, bytes] = {
    "arrays": b"[" * DEEP + b"]" * DEEP,
    "objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "inside a field": b'{"content":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "unclosed": b"[" * DEEP,
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(payload: str, secret: str, header: str = '{"alg":"HS256","typ":"JWT"}') -> str:
    """An HS256 JWT over exactly this payload text (valid signature, any content)."""
    signing_input = f"{_b64(header.encode())}.{_b64(payload.encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims_with(name: str, raw_value: str | None) -> str:
    """Valid student claims as JSON text, with claim `name` set to `raw_value` (JSON text)."""
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "student",
        "name": "Mallory",
        "exp": int(time.time()) + 3600,
    }
    claims.pop(name, None)
    text = json.dumps(claims)
    if raw_value is None:
        return text
    return f'{text[:-1]}, "{name}": {raw_value}}}'


MALFORMED_CLAIMS: dict[str, tuple[str, str | None]] = {
    "role is a list": ("role", '["student"]'),
    "role is an object": ("role", '{"student": true}'),
    "role is a number": ("role", "1"),
    "role is null": ("role", "null"),
    "role is unknown": ("role", '"superuser"'),
    "exp is NaN": ("exp", "NaN"),
    "exp is Infinity": ("exp", "Infinity"),
    "exp is 1e400": ("exp", "1e400"),
    "exp is beyond year 9999": ("exp", "1e300"),
    "exp is a string": ("exp", '"9999999999"'),
    "exp is a bool": ("exp", "true"),
    "exp is a list": ("exp", "[9999999999]"),
    "exp is missing": ("exp", None),
    "sub is a number": ("sub", "12345"),
    "sub is a list": ("sub", f'["{uuid.uuid4()}"]'),
    "sub is an object": ("sub", "{}"),
    "sub is not a UUID": ("sub", '"not-a-uuid"'),
    "sub is a URN": ("sub", f'"urn:uuid:{uuid.uuid4()}"'),
    "sub is missing": ("sub", None),
    "name is a number": ("name", "42"),
    "name is a list": ("name", '["Mallory"]'),
    "name is an object": ("name", '{"first": "M"}'),
    "name is null": ("name", "null"),
    "member is a string": ("member", '"yes"'),
    "member is a number": ("member", "1"),
    "member is null": ("member", "null"),
    "member is a list": ("member", "[true]"),
    "nested a thousand levels": ("extra", "[" * DEEP + "]" * DEEP),
}


def malformed_claim_tokens(secret: str) -> dict[str, str]:
    """Each case of `MALFORMED_CLAIMS` as a token signed with `secret` (fresh ids, valid exp)."""
    tokens = {case: sign(_claims_with(*spec), secret) for case, spec in MALFORMED_CLAIMS.items()}
    tokens["claims are a list"] = sign("[]", secret)
    tokens["header nested a thousand levels"] = sign(
        _claims_with("name", None),
        secret,
        header='{"alg":"HS256","x":' + "[" * DEEP + "]" * DEEP + "}",
    )
    return tokens
