"""Hostile input to every service is a 4xx, never a 500 (SPEC §2, §3).

The routes are read from the apps themselves, so a route added later is
covered without touching this file.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from websockets.exceptions import InvalidStatus

from tests.conftest import JWT_SECRET, User, make_user
from tests.hostile import DEEP_BODIES, malformed_claim_tokens

SERVICES = ["posts", "resources", "goals", "leaderboard", "notifications"]
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def write_routes(app: Litestar) -> list[tuple[str, str, bool]]:
    """(method, concrete path, takes a body) of every write route, path ids filled in."""
    routes = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        concrete = route.path
        for param in route.path_parameters.values():
            concrete = concrete.replace("{" + param.full + "}", str(uuid.uuid4()))
        for handler in route.route_handlers:
            takes_body = "data" in handler.parsed_fn_signature.parameters
            for method in sorted(handler.http_methods):
                if method in WRITE_METHODS:
                    routes.append((method, concrete, takes_body))
    return routes


def callers() -> dict[str, User | None]:
    return {"guest": None, "student": make_user("student"), "instructor": make_user("instructor")}


async def outbox_sizes(db: asyncpg.Pool) -> dict[str, int]:
    """Events written by the services whose outbox only requests fill."""
    sizes = {}
    async with db.acquire() as conn:
        for schema in ("posts", "resources", "goals"):
            sizes[schema] = await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")
    return sizes


@pytest.mark.parametrize("service", SERVICES)
async def test_deeply_nested_json_is_a_400_on_every_body_route(
    service: str, clients: dict[str, Any], db: asyncpg.Pool
) -> None:
    client = clients[service]
    routes = write_routes(client.app)
    assert any(takes_body for _, _, takes_body in routes)
    before = await outbox_sizes(db)
    for method, path, takes_body in routes:
        answers: dict[str, int] = {}
        for who, user in callers().items():
            headers = {"Content-Type": "application/json", **(user.headers if user else {})}
            for kind, body in DEEP_BODIES.items():
                response = await client.request(method, path, content=body, headers=headers)
                where = f"{method} {path} as {who} with {kind}"
                assert response.status_code < 500, (where, response.text)
                error = response.json()
                if response.status_code >= 400:
                    assert error["status_code"] == response.status_code, where
                    assert error["detail"], where
                answers[who] = response.status_code
                if takes_body:
                    # Only a guard (401/403, before the body is read) may answer otherwise.
                    assert response.status_code in (400, 401, 403), (where, response.text)
        if takes_body:
            assert 400 in answers.values(), (method, path, answers)
    assert await outbox_sizes(db) == before


async def test_a_guest_download_with_a_deep_body_is_a_400(resources_client: Any) -> None:
    """The one body route a guest may call: nesting is refused before anything is looked up."""
    for body in DEEP_BODIES.values():
        response = await resources_client.post(
            f"/resources/{uuid.uuid4()}/download",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert "nested" in response.json()["detail"]


async def test_deep_bodies_do_not_count_against_the_post_rate_limit(posts_client: Any) -> None:
    author = make_user("student")
    for _ in range(3):
        for body in DEEP_BODIES.values():
            response = await posts_client.post("/posts", content=body, headers=author.headers)
            assert response.status_code == 400, response.text
    for n in range(10):  # the whole hourly allowance is still there
        created = await posts_client.post(
            "/posts", json={"content": f"{n}"}, headers=author.headers
        )
        assert created.status_code == 201, created.text


GUARDED_ROUTES = {
    "posts": [("POST", "/posts"), ("GET", "/posts")],
    "resources": [("POST", "/resources"), ("GET", "/resources")],
    "goals": [("GET", "/goals/me"), ("GET", "/goals/tracks")],
    "leaderboard": [("GET", "/leaderboard/me"), ("GET", "/leaderboard")],
    "notifications": [
        ("POST", "/notifications/push-subscriptions"),
        ("GET", "/notifications/vapid-public-key"),
    ],
}


@pytest.mark.parametrize("service", SERVICES)
async def test_signed_tokens_with_malformed_claims_are_401(
    service: str, clients: dict[str, Any]
) -> None:
    client = clients[service]
    for case, token in malformed_claim_tokens(JWT_SECRET).items():
        for method, path in GUARDED_ROUTES[service]:
            response = await client.request(
                method,
                path,
                headers={"Authorization": f"Bearer {token}"},
                json={"content": "x"} if method == "POST" else None,
            )
            assert response.status_code == 401, (case, method, path, response.text)
            assert response.json()["status_code"] == 401


async def test_malformed_claims_are_refused_at_the_gateway_handshake(
    gateway: Any, ws_connect: Any
) -> None:
    for case, token in malformed_claim_tokens(JWT_SECRET).items():
        for form in ("query", "header"):
            with pytest.raises(InvalidStatus) as refused:
                if form == "query":
                    async with ws_connect(gateway, token):
                        pass
                else:
                    async with ws_connect(gateway, headers={"Authorization": f"Bearer {token}"}):
                        pass
            assert refused.value.response.status_code == 401, (case, form)
    # The gateway is still serving.
    async with ws_connect(gateway, make_user().token) as ws:
        assert ws.hello["role"] == "student"
    await asyncio.sleep(0)
