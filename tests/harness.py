"""Run a service app on the current event loop and talk to it over ASGI.

Litestar's test client hands every request to another thread's event loop and
waits for it, one request at a time: requests gathered with `asyncio.gather`
would not run concurrently, and anything else living on the test's loop (a
websocket client, a gateway) would stand still meanwhile. Here the app's
lifespan (pool, relay, NATS) runs on the test's own loop and requests go
through `httpx.ASGITransport`, so concurrent requests are really concurrent.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar


async def nats_hooks_ran(app: Litestar) -> None:
    """Wait until the app's NATS hooks ran (stream set up, subscriptions made)."""
    await asyncio.wait_for(app.state.runtime.nats_ready.wait(), timeout=15)


class ServiceClient(httpx.AsyncClient):
    """An HTTP client of one in-loop app; `app` gives tests its runtime state."""

    def __init__(self, app: Litestar) -> None:
        super().__init__(
            transport=httpx.ASGITransport(app=app), base_url="http://service.test", timeout=30
        )
        self.app = app


@contextlib.asynccontextmanager
async def serve_in_this_loop(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Run `app` (lifespan included) on the current loop; yield a client for it."""
    async with app.lifespan(), ServiceClient(app) as client:
        yield client


async def serve_for_a_session(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Body of a session-scoped async fixture serving `app` until the session ends.

    The lifespan is entered and exited by one dedicated task (anyio requires
    it; a session fixture's setup and teardown run in different tasks).
    """
    started: asyncio.Future[httpx.AsyncClient] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        try:
            async with serve_in_this_loop(app) as client:
                await nats_hooks_ran(app)
                started.set_result(client)
                await stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    task: asyncio.Task[Any] = asyncio.create_task(serve())
    try:
        yield await started
    finally:
        stop.set()
        await task


class NatsServer:
    """A JetStream-enabled nats-server process that a test can stop and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.store = Path(tempfile.mkdtemp(prefix="test-nats-"))
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            NATS_SERVER,
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise RuntimeError("nats-server did not start")

    async def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), timeout=5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
            self._proc = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
