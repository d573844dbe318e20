from __future__ import annotations

from typing import Any

from tests.conftest import make_user


async def test_health_ready_metrics_openapi(posts_client: Any) -> None:
    assert (await posts_client.get("/health")).status_code == 200
    ready = await posts_client.get("/ready")
    assert ready.status_code == 200, ready.text
    metrics = await posts_client.get("/metrics")
    assert metrics.status_code == 200
    assert "community" in metrics.text
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
