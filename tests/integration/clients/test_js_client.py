"""The JavaScript client (`clients/js/`) against the real gateway and services.

The client's tests are written in JavaScript (`node --test`, in
`clients/js/test/`); this module runs them with the suite. The unit tests need
nothing; the integration tests get a real stack: a gateway process, the posts
and goals services as processes, all on free ports, on this session's
database, NATS subject prefix and Redis key prefix. Each test file runs as one
pytest test with the stack's URLs and the JWT secret in the environment; its
output is streamed, and it passes when node exits 0. The restart tests start
further gateway processes themselves with the same environment (`CL_PYTHON`).

`CL_LONG=1` runs the long form of the fault tests (60 s of connection cuts
instead of 30 s). The test is skipped when `node` is not installed; it runs
`npm ci` first when `clients/js/node_modules` is missing.
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
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import httpx
import pytest
from community_shared.settings import Settings

from tests.conftest import JWT_SECRET

ROOT = Path(__file__).resolve().parents[3]
CLIENT_DIR = ROOT / "clients" / "js"
NODE_TIMEOUT = 300.0  # seconds per test file; the longest takes about a minute on a loaded machine

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _component_env(settings: Settings) -> dict[str, str]:
    """The environment of a component process running on this session's servers."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "OUTBOX_POLL_SECONDS": "0.5",
        "DB_POOL_MAX_SIZE": "4",
        "PYTHONUNBUFFERED": "1",
        # A short presence grace keeps the presence test quick (15 s by default).
        "GATEWAY_PRESENCE_GRACE_SECONDS": "2",
    }


class Component:
    """One component as a child process, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, module: str, env: Mapping[str, str]) -> None:
        self.name = name
        self.module = module
        self.port = _free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.process: asyncio.subprocess.Process | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, env=self.env, cwd=ROOT
        )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.http_url}/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready within {timeout}s")
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def running(components: list[Component]) -> AsyncIterator[list[Component]]:
    try:
        await asyncio.gather(*(component.start() for component in components))
        yield components
    finally:
        for component in reversed(components):
            await component.stop()


async def _npm_ci(directory: Path = CLIENT_DIR) -> None:
    """`npm ci` in `directory` unless its `node_modules` is there."""
    if (directory / "node_modules").is_dir():
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is not installed"
    process = await asyncio.create_subprocess_exec(
        npm, "ci", "--no-audit", "--no-fund", cwd=directory
    )
    assert await asyncio.wait_for(process.wait(), timeout=300) == 0, "npm ci failed"


async def _run_node(files: list[str], env: Mapping[str, str]) -> int:
    """`node --test` on some of the client's test files, output streamed line by line."""
    process = await asyncio.create_subprocess_exec(
        "node",
        "--test",
        "--test-concurrency=1",
        "--test-reporter=spec",
        *files,
        cwd=CLIENT_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None

    async def stream() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            print(line.decode(errors="replace"), end="", flush=True)

    try:
        await asyncio.wait_for(asyncio.gather(stream(), process.wait()), timeout=NODE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"node --test did not finish within {NODE_TIMEOUT}s") from None
    assert process.returncode is not None
    return process.returncode


@pytest.fixture(scope="module")
async def stack(
    settings_for: Callable[..., Settings], nats_client: object, redis_client: object
) -> AsyncIterator[dict[str, str]]:
    """A gateway, posts and goals as processes; the environment node's tests read."""
    await _npm_ci()
    env = _component_env(settings_for("gateway"))
    gateway = Component("gateway", "community_gateway.app", env)
    posts = Component("posts", "community_posts.app", env)
    goals = Component("goals", "community_goals.app", env)
    async with running([gateway, posts, goals]):
        node_env = {
            **env,
            "CL_GATEWAY_PORT": str(gateway.port),
            "CL_GATEWAY_URL": f"ws://127.0.0.1:{gateway.port}/ws",
            "CL_POSTS_URL": posts.http_url,
            "CL_GOALS_URL": goals.http_url,
            "CL_JWT_SECRET": JWT_SECRET,
            "CL_PYTHON": sys.executable,
            "CL_ROOT": str(ROOT),
        }
        node_env.pop("PORT", None)
        yield node_env


async def test_js_client_unit_and_package() -> None:
    """The pure parts (backoff, seqs, close-code policy, inbox, tokens) and `npm pack`."""
    await _npm_ci()
    files = sorted(str(p.relative_to(CLIENT_DIR)) for p in CLIENT_DIR.glob("test/unit/*.test.js"))
    code = await _run_node(files, os.environ)
    assert code == 0, f"node --test failed (exit {code}); its output is above"


@pytest.mark.parametrize("name", ["live", "tokens", "faults", "restart", "presence"])
async def test_js_client_against_the_real_gateway(name: str, stack: dict[str, str]) -> None:
    """`clients/js/test/integration/<name>.test.js` against the processes of `stack`."""
    code = await _run_node([f"test/integration/{name}.test.js"], stack)
    assert code == 0, f"node --test failed (exit {code}); its output is above"
