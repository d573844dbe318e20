from __future__ import annotations

from typing import Any


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
