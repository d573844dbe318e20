"""Serve the demo page (`python -m infra.demo.server`, also run by `./run stack`).

A static file server for this folder plus one generated file, `config.json`,
which tells the page on which ports the gateway and the services listen. The
page combines those ports with the host name it was loaded from, so it works
the same on a laptop, behind a port forward and under docker compose.

`client/` serves the JavaScript client's ES modules (`clients/js/src`) as they
are in the repository: the page imports `client/index.js`, with no build step.
"""

from __future__ import annotations

import argparse
import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


def page_config(port_offset: int = 0) -> dict[str, Any]:
    """What `config.json` says: the component ports of this stack."""
    return {"ports": {name: port + port_offset for name, port in DEFAULT_PORTS.items()}}


class DemoHandler(SimpleHTTPRequestHandler):
    config: bytes = b"{}"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.config)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

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


def make_server(host: str, port: int, config: dict[str, Any]) -> ThreadingHTTPServer:
    handler = type("ConfiguredDemoHandler", (DemoHandler,), {"config": json.dumps(config).encode()})
    server = ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(HERE)))
    server.daemon_threads = True
    return server


def serve_in_thread(host: str, port: int, config: dict[str, Any]) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; stop with `server.shutdown()`."""
    server = make_server(host, port, config)
    threading.Thread(target=server.serve_forever, name="demo-page", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.demo.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEMO_PORT)
    parser.add_argument("--port-offset", type=int, default=0, help="added to every component port")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, page_config(args.port_offset))
    print(f"demo page on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
