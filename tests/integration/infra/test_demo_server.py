"""The demo server serves the page and, under `client/`, the JavaScript client's modules."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.demo.server import CLIENT_SOURCES, page_config, serve_in_thread


@pytest.fixture
def demo_url() -> Iterator[str]:
    server = serve_in_thread("127.0.0.1", 0, page_config())
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_imports_the_client_the_server_serves(demo_url: str) -> None:
    page = httpx.get(f"{demo_url}/").text
    assert 'import { CommunityClient } from "./client/index.js"' in page
    for module in ("index.js", "client.js", "seqs.js"):
        response = httpx.get(f"{demo_url}/client/{module}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert response.text == (CLIENT_SOURCES / module).read_text()


def test_client_paths_do_not_leave_the_client_sources(demo_url: str) -> None:
    assert httpx.get(f"{demo_url}/client/%2e%2e/server.py").status_code == 404
    assert httpx.get(f"{demo_url}/client/nothing.js").status_code == 404
