"""Real processes a fault test can kill: a private nats-server, gateways, services.

Every process is started by the test that needs it and stopped (SIGTERM, then
SIGKILL) when the test ends. The nats-server is the test's own, on a free port
with its own store directory, so killing it disturbs nobody else; Postgres and
Redis are the suite's shared ones (fresh database and key prefix per run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
NATS_AVAILABLE = os.path.exists(NATS_SERVER)
ROUTES = "now routes events"
"""Logged by a gateway when it takes the router lease."""
STANDS_BY = "standing by"
"""Logged by a gateway that gave the lease up or lost it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _ended(process: asyncio.subprocess.Process, grace: float) -> None:
    """Wait for `process` to exit; SIGKILL it after `grace` seconds."""
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


class NatsProcess:
    """nats-server with JetStream; restartable on the same port and store directory."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            NATS_SERVER,
            *("-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on {self.port} within {timeout}s")

    async def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` and wait for the server to exit (SIGKILL after 5 s)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            await _ended(self.process, 5.0)
            self.process = None


class Component:
    """`python -m <module>` with its own environment; output goes to a log file."""

    def __init__(self, name: str, module: str, env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.module = module
        self.env = dict(env)
        self.log = log
        self.port = int(self.env["PORT"])
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def routes(self) -> bool:
        """Whether this gateway's log says it holds the router lease now."""
        text = self.output()
        return text.rfind(ROUTES) > text.rfind(STANDS_BY)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.output()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout}s:\n{self.output()[-3000:]}")

    async def kill(self) -> None:
        """SIGKILL: no clean-up, no lease release, connections simply drop."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    async def stop(self, grace: float = 10.0) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            await _ended(self.process, grace)


def component_env(base: Mapping[str, str], **values: str) -> dict[str, str]:
    """The test process's environment without `GATEWAY_*` tunables, plus `values`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")}
    env.update(base)
    env.update(values)
    return env
