"""Every service's OpenAPI document is true (SPEC §1 last bullet, §3).

For each service:
- the document declares every status SPEC says each operation can answer
  (the table below), each error with the error body, 429 and 503 with
  `Retry-After`, and the bearer scheme: optional on the routes guests may
  call, required elsewhere;
- requests built to draw errors out (each role, a bad token, unknown ids, an
  empty body, a limit out of range) get only declared statuses;
- schemathesis, run against the real app on a real port (real Postgres, NATS
  and Redis), finds no 5xx and nothing undeclared: statuses, content types,
  headers, bodies, `Allow` on `OPTIONS` and on 405.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from community_shared.settings import Settings

from tests.conftest import Infra, make_user
from tests.integration.contract.support import (
    error_bodies_are_described,
    probes_for,
    provoked_statuses,
    run_schemathesis,
    security_of,
    served_alone,
    undeclared,
)

SERVICES = ("posts", "resources", "goals", "leaderboard", "notifications")


def answers(success: int, *errors: int) -> set[int]:
    """What an operation can answer: its success, its errors, and 503 (a dependency down)."""
    return {success, *errors, 503}


# What each operation can answer, from SPEC: 400 bad input, 401 no or bad token,
# 403 without the right, 404 missing or hidden, 409 state conflict, 413 body too
# large, 429 rate limited.
EXPECTED: dict[str, dict[str, set[int]]] = {
    "posts": {
        "POST /posts": answers(201, 400, 401, 403, 413, 429),
        "GET /posts": answers(200, 400, 401),
        "GET /posts/{post_id}": answers(200, 401, 404),
        "PATCH /posts/{post_id}": answers(200, 400, 401, 403, 404, 413),
        "DELETE /posts/{post_id}": answers(204, 401, 403, 404),
        "PUT /posts/{post_id}/like": answers(200, 401, 403, 404, 429),
        "DELETE /posts/{post_id}/like": answers(200, 401, 403, 404),
        "POST /posts/{post_id}/replies": answers(201, 400, 401, 403, 404, 413, 429),
        "PATCH /posts/{post_id}/replies/{reply_id}": answers(200, 400, 401, 403, 404, 413),
        "DELETE /posts/{post_id}/replies/{reply_id}": answers(204, 401, 403, 404),
        "PUT /posts/{post_id}/pin": answers(200, 401, 403, 404),
        "DELETE /posts/{post_id}/pin": answers(200, 401, 403, 404),
        "POST /posts/{post_id}/reports": answers(201, 400, 401, 403, 404, 409, 413),
        "GET /reports": answers(200, 400, 401, 403),
        "POST /reports/{report_id}/resolve": answers(200, 400, 401, 403, 404, 409, 413),
    },
    "resources": {
        "POST /resources": answers(201, 400, 401, 403, 413),
        "GET /resources": answers(200, 400, 401, 403),
        "GET /resources/{resource_id}": answers(200, 400, 401, 404),
        "PATCH /resources/{resource_id}": answers(200, 400, 401, 403, 404, 409, 413),
        "DELETE /resources/{resource_id}": answers(204, 400, 401, 403, 404),
        "POST /resources/{resource_id}/links": answers(201, 400, 401, 403, 404, 409, 413),
        "GET /resources/linked/{entity_type}/{entity_id}": answers(200, 400, 401),
        "DELETE /resources/{resource_id}/links/{link_id}": answers(204, 400, 401, 403, 404),
        "POST /resources/{resource_id}/download": answers(200, 400, 401, 403, 404, 413),
        "PUT /resources/{resource_id}/rating": answers(200, 400, 401, 404, 409, 413),
    },
    "goals": {
        "GET /goals/tracks": answers(200, 401),
        "GET /goals/me": answers(200, 401, 403),
        "PUT /goals/me/goal": answers(200, 400, 401, 403, 409, 413),
        "POST /goals/me/submissions": answers(201, 400, 401, 403, 409, 413),
        "GET /goals/me/submissions": answers(200, 400, 401, 403),
        "GET /goals/reviews": answers(200, 400, 401, 403),
        "POST /goals/reviews/{review_id}/approve": answers(200, 401, 403, 404, 409),
        "POST /goals/reviews/{review_id}/reject": answers(200, 400, 401, 403, 404, 409, 413),
        "GET /goals/students/{user_id}": answers(200, 401, 403, 404),
        "POST /goals/stories": answers(201, 400, 401, 403, 413),
        "GET /goals/stories": answers(200, 400, 401, 403),
        "POST /goals/stories/{story_id}/publish": answers(200, 401, 403, 404, 409),
    },
    "leaderboard": {
        "GET /leaderboard": answers(200, 400, 401),
        "GET /leaderboard/me": answers(200, 401, 403),
        "PUT /leaderboard/me/privacy": answers(200, 400, 401, 403, 413),
        "GET /leaderboard/stats": answers(200, 401),
        "GET /leaderboard/activity": answers(200, 400, 401),
    },
    "notifications": {
        "GET /notifications/vapid-public-key": answers(200, 401),
        "POST /notifications/push-subscriptions": answers(201, 200, 400, 401, 413, 422),
        "GET /notifications/push-subscriptions": answers(200, 400, 401),
        "DELETE /notifications/push-subscriptions/{subscription_id}": answers(204, 401, 404),
        "GET /notifications/preferences": answers(200, 401),
        "PUT /notifications/preferences": answers(200, 400, 401, 413),
    },
}

GUEST_CALLABLE: dict[str, set[str]] = {
    "posts": {"GET /posts", "GET /posts/{post_id}"},
    "resources": {
        "GET /resources",
        "GET /resources/{resource_id}",
        "GET /resources/linked/{entity_type}/{entity_id}",
        "POST /resources/{resource_id}/download",
    },
    "goals": {"GET /goals/tracks", "GET /goals/stories"},
    "leaderboard": {"GET /leaderboard", "GET /leaderboard/stats", "GET /leaderboard/activity"},
    "notifications": {"GET /notifications/vapid-public-key"},
}


async def document_of(clients: dict[str, Any], service: str) -> tuple[Any, Any]:
    client = clients[service]
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    return client, response.json()


@pytest.mark.parametrize("service", SERVICES)
async def test_the_document_declares_what_each_operation_answers(
    clients: dict[str, Any], service: str
) -> None:
    _, document = await document_of(clients, service)
    assert undeclared(document, EXPECTED[service]) == {}
    assert error_bodies_are_described(document) == []
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    for name, security in security_of(document).items():
        guests = name in GUEST_CALLABLE[service]
        assert security == ([{}, {"bearer": []}] if guests else [{"bearer": []}]), name


@pytest.mark.parametrize("service", SERVICES)
async def test_what_the_code_answers_is_declared(clients: dict[str, Any], service: str) -> None:
    client, document = await document_of(clients, service)
    callers = [
        None,
        {"Authorization": "Bearer not-a-token"},
        make_user("student").headers,
        make_user("student", member=False).headers,
        make_user("instructor").headers,
    ]
    assert await provoked_statuses(client, document, probes_for(document, callers)) == []


SCHEMATHESIS_AT_ONCE = 2
"""Services fuzzed at the same time: each schemathesis run is a process of its own
and waits on its service about half the time, so two at once take about half as long."""


@pytest.fixture(scope="module")
async def schemathesis_runs(
    infra: Infra,
    settings_for: Callable[..., Settings],
    nats_client: Any,  # its teardown removes the session's streams, these runs' too,
    redis_client: Any,  # and this one the session's keys
) -> dict[str, tuple[int, str] | BaseException]:
    """Every service fuzzed, each alone in its data, two at a time: service → (status,
    output), or what went wrong around the run (raised again by that service's test)."""
    slots = asyncio.Semaphore(SCHEMATHESIS_AT_ONCE)

    async def fuzz(service: str) -> tuple[int, str]:
        callers = [None, make_user("student"), make_user("instructor")]
        async with slots, served_alone(service, infra, settings_for) as target:
            return await run_schemathesis(target, callers)

    results = await asyncio.gather(*(fuzz(service) for service in SERVICES), return_exceptions=True)
    return dict(zip(SERVICES, results, strict=True))


@pytest.mark.parametrize("service", SERVICES)
async def test_schemathesis_finds_nothing_undeclared(
    schemathesis_runs: dict[str, tuple[int, str] | BaseException], service: str
) -> None:
    result = schemathesis_runs[service]
    if isinstance(result, BaseException):
        raise result
    status, output = result
    assert status == 0, output
