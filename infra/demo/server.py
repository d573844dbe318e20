"""Serve the demo page (`python -m infra.demo.server`, also run by `./run stack`).

A static file server for this folder plus one generated file, `config.json`,
which tells the page on which ports the gateway and the services listen. The
page combines those ports with the host name it was loaded from, so it works
the same on a laptop, behind a port forward and under docker compose.

`client/` serves the JavaScript client's ES modules (`clients/js/src`) as they
are in the repository: the page imports `client/index.js`, with no build step.

Sign-in for the demo (development only, off unless asked for): with
`--demo-sign-in` (what `./run stack` does when it runs with the demo data),
`GET /dev/people` lists the demo community's people and
`GET /dev/token?person=<key>` answers `{"token": …}`, a fresh 24-hour token
for that person, signed with `JWT_SECRET`. The page then offers a person
picker and links such as `/?as=ada-lovelace`, which never go stale. Without
the flag both routes are 404 and `config.json` says `"sign_in": false`.
"""

from __future__ import annotations

import argparse
import functools
import json
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from community_shared.auth import issue_token
from community_shared.settings import Settings

from infra.demo_data import EVERYONE, DemoUser

HERE = Path(__file__).resolve().parent
CLIENT_SOURCES = HERE.parents[1] / "clients" / "js" / "src"
CLIENT_PREFIX = "/client/"
DEFAULT_PORTS = {
    "gateway": 8000,
    "posts": 8001,
    "resources": 8002,
    "goals": 8003,
    "leaderboard": 8004,
    "notifications": 8005,
}
DEMO_PORT = 8080
TOKEN_TTL_SECONDS = 24 * 3600


def page_config(port_offset: int = 0, *, sign_in: bool = False) -> dict[str, Any]:
    """What `config.json` says: the component ports of this stack, and whether
    the demo sign-in (`/dev/people`, `/dev/token`) is on."""
    ports = {name: port + port_offset for name, port in DEFAULT_PORTS.items()}
    return {"ports": ports, "sign_in": sign_in}


def person_key(person: DemoUser) -> str:
    """`Ada Lovelace` → `ada-lovelace`: the `?as=` of a demo link."""
    return person.name.lower().replace(" ", "-")


PEOPLE: dict[str, DemoUser] = {person_key(person): person for person in EVERYONE}


def people_listing() -> dict[str, Any]:
    return {
        "items": [
            {"key": key, "name": p.name, "role": p.role, "track": p.track}
            for key, p in PEOPLE.items()
        ]
    }


class DemoHandler(SimpleHTTPRequestHandler):
    config: bytes = b"{}"
    sign_in: bool = False
    jwt_secret: str = ""

    def _json(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        route, _, query = self.path.partition("?")
        if route == "/config.json":
            self._json(200, self.config)
            return
        if route.startswith("/dev/") and self.sign_in:
            self._dev(route, urllib.parse.parse_qs(query))
            return
        super().do_GET()

    def _dev(self, route: str, query: dict[str, list[str]]) -> None:
        if route == "/dev/people":
            self._json(200, json.dumps(people_listing()).encode())
            return
        person = PEOPLE.get((query.get("person") or [""])[0])
        if route != "/dev/token" or person is None:
            self._json(404, b'{"detail": "no such demo person"}')
            return
        token = issue_token(
            sub=person.id,
            role=person.role,
            name=person.name,
            secret=self.jwt_secret,
            ttl_seconds=TOKEN_TTL_SECONDS,
        )
        self._json(200, json.dumps({"token": token}).encode())

    def translate_path(self, path: str) -> str:
        """`client/…` comes from the JavaScript client's sources, the rest from this folder."""
        route = path.split("?", 1)[0].split("#", 1)[0]
        if route.startswith(CLIENT_PREFIX):
            # The base class resolves the path safely ('..' dropped) under HERE.
            inside = super().translate_path("/" + route[len(CLIENT_PREFIX) :])
            return str(CLIENT_SOURCES / Path(inside).relative_to(HERE))
        return super().translate_path(path)

    def end_headers(self) -> None:
        # The page changes while one works on it; never serve a stale copy.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the runner's terminal is for the components' logs."""


def make_server(
    host: str, port: int, config: dict[str, Any], jwt_secret: str | None = None
) -> ThreadingHTTPServer:
    """The demo sign-in is on when `config["sign_in"]` is; it signs with `jwt_secret`
    (default: `JWT_SECRET` from the environment)."""
    sign_in = bool(config.get("sign_in"))
    secret = jwt_secret or (Settings.from_env("demo", 0).jwt_secret if sign_in else "")
    attributes = {"config": json.dumps(config).encode(), "sign_in": sign_in, "jwt_secret": secret}
    handler = type("ConfiguredDemoHandler", (DemoHandler,), attributes)
    server = ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(HERE)))
    server.daemon_threads = True
    return server


def serve_in_thread(
    host: str, port: int, config: dict[str, Any], jwt_secret: str | None = None
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; stop with `server.shutdown()`."""
    server = make_server(host, port, config, jwt_secret)
    threading.Thread(target=server.serve_forever, name="demo-page", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.demo.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEMO_PORT)
    parser.add_argument("--port-offset", type=int, default=0, help="added to every component port")
    parser.add_argument(
        "--demo-sign-in",
        action="store_true",
        help="serve /dev/people and /dev/token (development only: anyone may sign in as anyone)",
    )
    args = parser.parse_args(argv)
    config = page_config(args.port_offset, sign_in=args.demo_sign_in)
    server = make_server(args.host, args.port, config)
    print(f"demo page on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
