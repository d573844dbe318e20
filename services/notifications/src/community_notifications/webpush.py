"""Web Push on the wire: the VAPID key, the encrypted body and the POST (RFC 8030/8291/8292).

The cryptography is the libraries': `http_ece` encrypts the payload (RFC 8291
`aes128gcm`: an ephemeral P-256 key per message, ECDH with the browser's
`p256dh`, HKDF with its `auth` secret) and `py_vapid` signs the VAPID JWT
(ES256). The HTTP is ours, on an `httpx.AsyncClient`: `pywebpush` would do the
same POST through `requests`, synchronously, which would hold the event loop
(or a thread per push) while a slow push service answers. A message costs one
encryption (~0.3 ms) and one request; the JWT is signed once per push service
origin and reused until it is close to expiring.

The private key is never logged nor put in a repr.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
from typing import Final
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

JWT_LIFETIME_SECONDS: Final = 12 * 3600
"""RFC 8292 allows at most 24 h; half of it leaves room for a push service's clock skew."""
JWT_RENEW_SECONDS: Final = 3600
"""A cached JWT is replaced when it has less than this left."""
P256_POINT_BYTES: Final = 65
AUTH_SECRET_BYTES: Final = 16


class BadKeys(ValueError):
    """A subscription's `p256dh` or `auth` is not what a browser makes."""


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; `ValueError` for anything else."""
    if not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_B64URL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def check_subscription_keys(p256dh: str, auth: str) -> None:
    """`BadKeys` unless `p256dh` is an uncompressed P-256 point and `auth` 16 bytes (base64url)."""
    try:
        point = b64url_decode(p256dh)
    except ValueError:
        raise BadKeys("keys.p256dh is not base64url") from None
    if len(point) != P256_POINT_BYTES or point[0] != 0x04:
        raise BadKeys("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise BadKeys("keys.p256dh is not a point on P-256") from None
    try:
        secret = b64url_decode(auth)
    except ValueError:
        raise BadKeys("keys.auth is not base64url") from None
    if len(secret) != AUTH_SECRET_BYTES:
        raise BadKeys("keys.auth must be 16 bytes")


# --------------------------------------------------------------------------- VAPID


def generate_private_key() -> str:
    """A new VAPID private key as base64url of its 32-byte scalar (the common form)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A VAPID private key from base64url (32-byte scalar or DER) or PEM; `ValueError` else."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(stripped.encode(), password=None)
    else:
        raw = b64url_decode(stripped)
        if len(raw) == 32:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(raw, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("a VAPID key is a P-256 key")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The application server key for `PushManager.subscribe`: the uncompressed point."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(point)


def origin_of(endpoint: str) -> str:
    """The JWT's `aud`: scheme, host and port of the push service (RFC 8292 §2)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class VapidSigner:
    """Signs and caches one VAPID `Authorization` header per push service origin."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        self._vapid = Vapid02(private_key=key)
        self.subject = subject
        self.public_key = public_key_b64(key)
        self._cache: dict[str, tuple[float, str]] = {}

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"VapidSigner(public_key={self.public_key!r})"

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        audience = origin_of(endpoint)
        moment = time.time() if now is None else now
        cached = self._cache.get(audience)
        if cached is not None and cached[0] - moment > JWT_RENEW_SECONDS:
            return cached[1]
        expires = int(moment) + JWT_LIFETIME_SECONDS
        claims = {"aud": audience, "exp": expires, "sub": self.subject}
        header: str = self._vapid.sign(claims)["Authorization"]
        self._cache[audience] = (float(expires), header)
        return header


# --------------------------------------------------------------------------- the message


@dataclasses.dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def encrypt(payload: bytes, subscription: Subscription) -> bytes:
    """The RFC 8291 `aes128gcm` body: salt, record size and our ephemeral key in its header."""
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        private_key=sender,
        dh=b64url_decode(subscription.p256dh),
        auth_secret=b64url_decode(subscription.auth),
        version="aes128gcm",
    )
    return body


@dataclasses.dataclass(frozen=True, slots=True)
class PushAnswer:
    """The push service's status (None: no answer at all) and its `Retry-After`, if any."""

    status: int | None
    retry_after: str | None = None


class PushSender:
    """POSTs encrypted messages to push services (RFC 8030 §5)."""

    def __init__(self, signer: VapidSigner, *, timeout: float = 10.0) -> None:
        self.signer = signer
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            follow_redirects=False,
        )

    async def send(
        self, subscription: Subscription, payload: bytes, *, ttl: int, urgency: str
    ) -> PushAnswer:
        body = encrypt(payload, subscription)
        headers = {
            "Authorization": self.signer.authorization(subscription.endpoint),
            "TTL": str(ttl),
            "Urgency": urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        try:
            response = await self._client.post(subscription.endpoint, content=body, headers=headers)
        except httpx.HTTPError:
            return PushAnswer(None)
        return PushAnswer(response.status_code, response.headers.get("Retry-After"))

    async def aclose(self) -> None:
        await self._client.aclose()
