"""A local stand-in for a browser vendor's push service (RFC 8030), for the tests.

It plays both sides a browser relies on: `new_subscription()` makes what
`PushManager.subscribe` would (a P-256 key pair and a 16-byte auth secret, an
endpoint URL on this server), and the server accepts `POST /push/<token>` only
as a real push service would:

- the `Authorization: vapid t=<JWT>, k=<key>` header (RFC 8292) must carry the
  application server key the subscription was made with, and the JWT must be
  ES256-signed by it, with `aud` = this server's origin and an `exp` in the
  future and at most 24 hours away;
- `TTL` must be present, `Content-Encoding` must be `aes128gcm`, and the body
  must decrypt (RFC 8291) with the subscription's private key and auth secret.

A message that passes is recorded (`deliveries`, `count(token)`); one that does
not is answered 400/401/403 and recorded in `refused` with the reason. Each
subscription answers 201 unless the test scripted other answers (`script`):
404, 410, 429 with `Retry-After`, 500, … A gone subscription (404/410 scripted
with `forever=True`) keeps answering that.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclasses.dataclass
class BrowserSubscription:
    """What a browser keeps for one push subscription, and what it sends the server."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def as_json(self, user_agent: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "endpoint": self.endpoint,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }
        if user_agent is not None:
            body["user_agent"] = user_agent
        return body


@dataclasses.dataclass(frozen=True)
class Delivery:
    token: str
    payload: dict[str, Any]
    ttl: int
    urgency: str | None
    at: float


@dataclasses.dataclass
class _Answer:
    status: int
    retry_after: str | None = None
    forever: bool = False


class PushService:
    """`start()`, `new_subscription(key)`, `script(...)`, then read `deliveries`; `stop()`."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.deliveries: list[Delivery] = []
        self.attempts: dict[str, list[tuple[float, int]]] = {}
        self.refused: list[tuple[str, str]] = []
        self._scripts: dict[str, deque[_Answer]] = {}
        self.delay = 0.0
        """Seconds each answer takes (a push service under load)."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> PushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-body (a killed process): an HTTP
                    # server has no request to answer, and a push service delivers nothing.
                    self.close_connection = True
                    return
                status, headers = service._receive(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def origin(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- what a browser does ------------------------------------------------------

    def new_subscription(self, application_server_key: str) -> BrowserSubscription:
        token = uuid.uuid4().hex
        subscription = BrowserSubscription(
            token=token,
            endpoint=f"{self.origin}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=uuid.uuid4().bytes,
            application_server_key=application_server_key,
        )
        with self._lock:
            self.subscriptions[token] = subscription
        return subscription

    # -- what the test scripts and reads ------------------------------------------

    def script(
        self,
        sub: BrowserSubscription,
        status: int,
        *,
        retry_after: str | None = None,
        times: int = 1,
        forever: bool = False,
    ) -> None:
        """The next `times` messages to `sub` get `status` (then 201 again, unless `forever`)."""
        with self._lock:
            queue = self._scripts.setdefault(sub.token, deque())
            for _ in range(times):
                queue.append(_Answer(status, retry_after, forever))

    def received(self, sub: BrowserSubscription) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.token == sub.token]

    def count(self, sub: BrowserSubscription) -> int:
        return len(self.received(sub))

    def attempts_of(self, sub: BrowserSubscription) -> list[tuple[float, int]]:
        with self._lock:
            return list(self.attempts.get(sub.token, []))

    # -- the push service ----------------------------------------------------------

    def _receive(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        now = time.time()
        if self.delay:
            time.sleep(self.delay)
        token = path.rsplit("/", 1)[-1] if path.startswith("/push/") else ""
        with self._lock:
            sub = self.subscriptions.get(token)
        if sub is None:
            return 404, {}
        lowered = {k.lower(): v for k, v in headers.items()}
        problem = self._check(sub, lowered, now)
        if problem is not None:
            with self._lock:
                self.refused.append((token, problem))
            return (401 if "vapid" in problem else 400), {}
        try:
            plain = http_ece.decrypt(
                body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
            payload = json.loads(plain)
        except Exception as exc:
            with self._lock:
                self.refused.append((token, f"cannot decrypt: {exc!r}"))
            return 400, {}
        with self._lock:
            queue = self._scripts.get(token)
            answer = None
            if queue:
                answer = queue[0]
                if not answer.forever:
                    queue.popleft()
            status = 201 if answer is None else answer.status
            self.attempts.setdefault(token, []).append((now, status))
            if status == 201:
                self.deliveries.append(
                    Delivery(token, payload, int(lowered["ttl"]), lowered.get("urgency"), now)
                )
        out: dict[str, str] = {}
        if status == 201:
            out["Location"] = f"/message/{uuid.uuid4().hex}"
        if answer is not None and answer.retry_after is not None:
            out["Retry-After"] = answer.retry_after
        return status, out

    def _check(self, sub: BrowserSubscription, headers: dict[str, str], now: float) -> str | None:
        if "ttl" not in headers or not headers["ttl"].isdigit():
            return "no TTL"
        if headers.get("content-encoding") != "aes128gcm":
            return "Content-Encoding is not aes128gcm"
        auth = headers.get("authorization", "")
        scheme, _, params = auth.partition(" ")
        if scheme.lower() != "vapid":
            return "vapid: no vapid Authorization"
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if parts.get("k") != sub.application_server_key:
            return "vapid: k is not the subscription's application server key"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
        try:
            claims = jwt.decode(
                parts.get("t", ""),
                key=public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return f"vapid: bad JWT ({exc})"
        if claims["exp"] > now + 24 * 3600:
            return "vapid: exp more than 24 h away"
        return None
