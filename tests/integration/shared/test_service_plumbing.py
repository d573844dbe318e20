from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.conftest import make_user


async def test_health_ready_metrics_openapi(posts_client: Any) -> None:
    assert (await posts_client.get("/health")).status_code == 200
    ready = await posts_client.get("/ready")
    assert ready.status_code == 200, ready.text
    await posts_client.get("/posts")  # one request the metrics must count
    metrics = await posts_client.get("/metrics")
    assert metrics.status_code == 200
    # SPEC §1: Prometheus text format — `# HELP`/`# TYPE` lines, then samples.
    assert metrics.headers["content-type"].startswith("text/plain")
    assert re.search(r"^# TYPE community_\w+ (counter|gauge|histogram)$", metrics.text, re.M)
    assert re.search(
        r'^community_requests_total\{[^}]*path="/posts"[^}]*\} [1-9]', metrics.text, re.M
    ), metrics.text[:2000]
    schema = await posts_client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"].startswith("Community Live")


async def test_request_id_is_echoed(posts_client: Any) -> None:
    response = await posts_client.get("/health", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"


async def test_a_body_that_is_not_utf8_is_a_400(posts_client: Any) -> None:
    response = await posts_client.post(
        "/posts",
        content=b'{"content": "\xed\xa0\x80"}',
        headers={"Content-Type": "application/json", **make_user("student").headers},
    )
    assert response.status_code == 400, response.text


async def test_the_token_is_verified_once_per_request(
    posts_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route's guard and its `identity` dependency share one decoded identity."""
    from community_shared import web

    calls: list[str | None] = []
    verify = web.identity_from_authorization

    def counting(header: str | None, secret: str) -> Any:
        calls.append(header)
        return verify(header, secret)

    monkeypatch.setattr(web, "identity_from_authorization", counting)
    student = make_user("student")
    response = await posts_client.delete(f"/posts/{uuid.uuid4()}", headers=student.headers)
    assert response.status_code == 404  # guarded (signed in) and the use case ran
    assert len(calls) == 1
