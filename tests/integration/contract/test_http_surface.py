"""What a browser and a generic HTTP client see of every service beyond its routes:
the schema pages (offline: no asset from a CDN), `OPTIONS` and CORS (SPEC §1, §3)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from community_posts.app import create_app as create_posts_app
from community_shared.openapi import ASSETS_DIR
from community_shared.settings import Settings, parse_origins
from community_shared.web import _error_response
from litestar import get
from litestar.exceptions import ServiceUnavailableException
from litestar.testing import create_test_client

from tests.conftest import make_user
from tests.integration.contract.support import HTTP_METHODS

ASSET_REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
async def test_schema_pages_load_their_assets_from_the_service(
    posts_client: Any, page: str
) -> None:
    response = await posts_client.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    head = html.split("<body", 1)[0]
    assets = ASSET_REFERENCE.findall(head)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    }
    for asset in assets:
        # Same origin: a path on this host, never a URL of another one.
        assert asset.startswith("/") and not asset.startswith("//"), asset
        loaded = await posts_client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 100, asset
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr|googleapis", head), head
    # The document itself is inlined in the page: nothing else to fetch.
    assert '"openapi":"3.1.0"' in html.replace(" ", "")


def test_the_bundled_swagger_ui_reads_openapi_3_1() -> None:
    # Swagger UI 4 shows "Unable to render this definition" for an OpenAPI 3.1
    # document, which is what Litestar writes; 3.1 needs Swagger UI 5.
    version = re.search(r"swagger-ui-(\d+)\.\d+\.\d+$", str(ASSETS_DIR))
    assert version is not None and int(version.group(1)) >= 5, ASSETS_DIR


async def test_an_unknown_asset_is_a_404(posts_client: Any) -> None:
    assert (await posts_client.get("/schema/assets/index.html")).status_code == 404
    assert (await posts_client.get("/schema/assets/..%2Fpyproject.toml")).status_code == 404


async def test_options_lists_exactly_the_methods_of_each_path(clients: dict[str, Any]) -> None:
    """Every path of every document, as a guest: 204 with every method the path serves,
    even where a guard would refuse the guest."""
    for client in clients.values():
        document = (await client.get("/schema/openapi.json")).json()
        for path, item in document["paths"].items():
            url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
            response = await client.options(url)
            assert response.status_code == 204, (path, response.text)
            allowed = {method.strip() for method in response.headers["allow"].split(",")}
            documented = {method.upper() for method in item if method in HTTP_METHODS}
            assert allowed == documented | {"OPTIONS"}, path


async def test_a_page_may_read_retry_after_from_any_origin(posts_client: Any) -> None:
    origin = {"Origin": "https://some-frontend.example"}
    response = await posts_client.get("/posts", headers=origin)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert "retry-after" in exposed
    preflight = await posts_client.options(
        "/posts",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "*"
    # A rate-limited answer carries the header the page may read.
    student = make_user("student")
    for _ in range(12):
        limited = await posts_client.post(
            "/posts", json={"content": "x"}, headers={**student.headers, **origin}
        )
        if limited.status_code == 429:
            break
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()


async def test_cors_allow_origins_narrows_who_may_call(
    settings_for: Callable[..., Settings],
) -> None:
    app = create_posts_app(settings_for("posts", cors_allow_origins=("https://app.example",)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://posts.test"
    ) as client:
        allowed = await client.get("/health", headers={"Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "retry-after" in allowed.headers["access-control-expose-headers"].lower()
        other = await client.get("/health", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = await client.options(
            "/posts",
            headers={
                "Origin": "https://elsewhere.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert preflight.status_code == 400


def test_cors_allow_origins_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_origins("") == ("*",)
    assert parse_origins("*") == ("*",)
    monkeypatch.delenv("CORS_ALLOW_ORIGINS", raising=False)
    assert Settings.from_env("posts", 8001).cors_allow_origins == ("*",)
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://a.example, https://b.example/")
    assert Settings.from_env("posts", 8001).cors_allow_origins == (
        "https://a.example",
        "https://b.example",
    )


def test_every_503_says_when_to_retry() -> None:
    @get("/starting", sync_to_thread=False)
    def starting() -> None:
        raise ServiceUnavailableException(detail="starting")

    with create_test_client([starting], exception_handlers={Exception: _error_response}) as client:
        response = client.get("/starting")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"status_code": 503, "detail": "starting"}
