"""A gateway instance in a process of its own, as deployed (`python -m community_gateway.app`).

A fault test that puts hundreds of reconnections per second through an
instance runs it in its own process (uvloop, its own core) so that the test's
clients, proxy and services do not share its event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator

import httpx
from community_shared.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def gateway_process(settings: Settings, **gateway_env: str) -> AsyncIterator[int]:
    """Start a gateway on the session's NATS/Redis prefixes; yields its port once ready.

    `gateway_env` adds `GATEWAY_*` variables. Stopped with SIGTERM (clients
    get 1012), killed if it does not stop within 15 s.
    """
    port = _free_port()
    env = {
        **os.environ,
        "NATS_URL": settings.nats_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "DATABASE_URL": settings.database_url,
        "NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **gateway_env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "community_gateway.app", env=env
    )
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as http:
            while True:
                assert process.returncode is None, "the gateway process ended"
                with contextlib.suppress(httpx.HTTPError):
                    ready = await http.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                    if ready.status_code == 200:
                        break
                assert time.monotonic() < deadline, "the gateway process did not get ready"
                await asyncio.sleep(0.1)
        yield port
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
