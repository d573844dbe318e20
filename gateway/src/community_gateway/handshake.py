"""The plain HTTP side of the websocket port: its answers, and who a handshake is.

`identity_of(request, secret)` is the `/ws` handshake's one token check: the
`Authorization: Bearer` header (through `community_shared.auth`, as every
service reads it) or else `?token=`, decoded once; no token is a guest. The
answers are JSON (the services' error shape) with `Connection: close`,
because the server closes the connection after every plain HTTP answer:
without it a keep-alive client may send its next request on a connection
that is already closing and see it dropped unanswered.
"""

from __future__ import annotations

import http
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from community_shared.auth import (
    GUEST,
    Identity,
    InvalidToken,
    decode_token,
    identity_from_authorization,
)
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


def http_response(status: int, content_type: str, payload: bytes) -> Response:
    """A plain HTTP answer on the websocket port (`Connection: close`, see above)."""
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, payload)


def json_response(status: int, body: dict[str, Any]) -> Response:
    return http_response(status, "application/json", json.dumps(body).encode())


def error_response(status: int, detail: str) -> Response:
    return json_response(status, {"status_code": status, "detail": detail})


def unauthorized(exc: InvalidToken) -> Response:
    response = error_response(401, f"invalid token: {exc}")
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def head_size(request: Request) -> int:
    """The size of a request head as sent: request line and header lines."""
    return len(request.path) + sum(len(k) + len(v) + 4 for k, v in request.headers.raw_items())


def request_path(request: Request) -> str:
    return urlsplit(request.path).path


def bearer_identity(request: Request, secret: str) -> Identity:
    """The identity of the request's `Authorization` header (guest without one).

    Raises `InvalidToken` for a header that is not a valid `Bearer` token.
    """
    return identity_from_authorization(request.headers.get("Authorization"), secret)


def identity_of(request: Request, secret: str) -> Identity:
    """Who opens a websocket: the `Authorization` header wins over `?token=`; an empty
    `?token=` is no token. Raises `InvalidToken` for a token that is present and refused."""
    if request.headers.get("Authorization"):
        return bearer_identity(request, secret)
    token = parse_qs(urlsplit(request.path).query).get("token")
    if token and token[0]:
        return decode_token(token[0], secret)
    return GUEST
