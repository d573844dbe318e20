"""Run a gateway instance: `python -m community_gateway.app`, the one way to start one.

Reads the shared settings (`NATS_URL`, `REDIS_URL`, `JWT_SECRET`, `HOST`,
`PORT` — default 8000 — and the prefixes) and the `GATEWAY_*` tunables
(config.py), serves until SIGINT or SIGTERM, then closes every client with
1012 so that they reconnect to another instance and recover with `since`.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from community_shared.collector import freeze_startup, tune_collector
from community_shared.logs import configure_logging
from community_shared.settings import Settings

from community_gateway.config import GatewayConfig
from community_gateway.server import run_until_stopped

DEFAULT_PORT = 8000


async def serve(settings: Settings, config: GatewayConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_until_stopped(settings, config, stop)


def main() -> None:
    settings = Settings.from_env("gateway", DEFAULT_PORT)
    config = GatewayConfig.from_env()
    configure_logging("gateway", settings.log_level)
    # One line per connection opened and closed is noise at this scale; the
    # metrics count them.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    tune_collector()
    freeze_startup()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists
        asyncio.run(serve(settings, config))
    else:
        uvloop.run(serve(settings, config))


if __name__ == "__main__":
    main()
