"""The demo server serves the page and, under `client/`, the JavaScript client's modules."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from infra.demo.server import CLIENT_SOURCES, page_config, serve_in_thread
from infra.demo_data import user


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
    assert '<script type="module" src="app/main.js">' in page
    app = httpx.get(f"{demo_url}/app/main.js").text
    assert 'import { CommunityClient } from "../client/index.js"' in app
    for module in ("index.js", "client.js", "seqs.js"):
        response = httpx.get(f"{demo_url}/client/{module}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert response.text == (CLIENT_SOURCES / module).read_text()


def test_client_paths_do_not_leave_the_client_sources(demo_url: str) -> None:
    assert httpx.get(f"{demo_url}/client/%2e%2e/server.py").status_code == 404
    assert httpx.get(f"{demo_url}/client/nothing.js").status_code == 404


def test_demo_sign_in_is_off_by_default(demo_url: str) -> None:
    assert httpx.get(f"{demo_url}/config.json").json()["sign_in"] is False
    assert httpx.get(f"{demo_url}/dev/people").status_code == 404
    assert httpx.get(f"{demo_url}/dev/token?person=ada-lovelace").status_code == 404


def test_demo_sign_in_when_on_hands_out_fresh_tokens_of_demo_people() -> None:
    secret = "demo-sign-in-secret-of-at-least-32-bytes"
    server = serve_in_thread("127.0.0.1", 0, page_config(sign_in=True), secret)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert httpx.get(f"{url}/config.json").json()["sign_in"] is True
        people = httpx.get(f"{url}/dev/people").json()["items"]
        roles = {(p["role"], p["track"]) for p in people}
        assert {("student", "agency"), ("student", "saas"), ("instructor", None)} <= roles
        assert ("admin", None) in roles
        answer = httpx.get(f"{url}/dev/token?person=ada-lovelace")
        assert answer.status_code == 200
        claims = jwt.decode(answer.json()["token"], secret, algorithms=["HS256"])
        assert claims["sub"] == str(user("Ada Lovelace").id)
        assert (claims["role"], claims["name"]) == ("student", "Ada Lovelace")
        assert claims["exp"] - time.time() > 23 * 3600
        assert httpx.get(f"{url}/dev/token?person=nobody").status_code == 404
        assert httpx.get(f"{url}/dev/token").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
