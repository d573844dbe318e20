"""The demo server serves the Web Push service worker and its registration module, and
tells the page where the notifications service listens."""

from __future__ import annotations

import httpx

from infra.demo.server import page_config, serve_in_thread


def test_the_service_worker_and_its_registration_are_served() -> None:
    server = serve_in_thread("127.0.0.1", 0, page_config(10))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for name in ("sw.js", "push.js"):
            response = httpx.get(f"{url}/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"].startswith("text/javascript")
        # A service worker controls what lies below its own path: at the root, the page.
        assert httpx.get(f"{url}/config.json").json()["ports"]["notifications"] == 8015
    finally:
        server.shutdown()
        server.server_close()
