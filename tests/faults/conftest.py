"""Fixtures of the fault tests: a private nats-server and processes started against it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import JWT_SECRET, RUN_ID, Infra, fresh_database
from tests.faults.processes import NATS_AVAILABLE, Component, NatsProcess, component_env, free_port


@pytest.fixture
async def nats_proc(tmp_path: Path) -> AsyncIterator[NatsProcess]:
    """A started nats-server of this test alone (JetStream, store under `tmp_path`)."""
    if not NATS_AVAILABLE:
        pytest.skip("nats-server binary not available for fault tests")
    server = NatsProcess(tmp_path / "jetstream")
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@dataclass
class Deployment:
    """Components of one test on its private NATS, with their own subject prefix."""

    nats: NatsProcess
    env: dict[str, str]
    logs: Path
    components: list[Component] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.env["NATS_SUBJECT_PREFIX"]

    async def start(self, name: str, module: str, **env: str) -> Component:
        component = Component(
            name,
            module,
            component_env(self.env, PORT=str(free_port()), **env),
            self.logs / f"{name}.log",
        )
        self.components.append(component)
        await component.start()
        return component

    async def gateway(self, name: str, **env: str) -> Component:
        return await self.start(name, "community_gateway.app", **env)

    async def posts(self, name: str = "posts", **env: str) -> Component:
        return await self.start(name, "community_posts.app", **env)

    async def router_among(self, gateways: list[Component], timeout: float = 10.0) -> Component:
        """The one gateway whose log says it routes, once exactly one does."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            routing = [
                g for g in gateways if g.process and g.process.returncode is None and g.routes()
            ]
            if len(routing) == 1:
                return routing[0]
            if asyncio.get_running_loop().time() > deadline:
                names = [g.name for g in routing]
                raise AssertionError(f"not exactly one router after {timeout}s: {names}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def deployment(
    nats_proc: NatsProcess, infra: Infra, tmp_path: Path
) -> AsyncIterator[Deployment]:
    # A database of its own: a service of this session running in the test
    # process shares nothing with the deployment (its outbox relay would
    # otherwise publish the deployment's events to the session's NATS).
    async with fresh_database(infra) as database_url:
        async for deployed in _deploy(nats_proc, infra, database_url, tmp_path):
            yield deployed


async def _deploy(
    nats_proc: NatsProcess, infra: Infra, database_url: str, tmp_path: Path
) -> AsyncIterator[Deployment]:
    tag = uuid.uuid4().hex[:6]
    env = {
        "NATS_URL": nats_proc.url,
        "REDIS_URL": infra.redis_url,
        "DATABASE_URL": database_url,
        "JWT_SECRET": JWT_SECRET,
        "NATS_SUBJECT_PREFIX": f"{RUN_ID}.f{tag}.",
        "REDIS_KEY_PREFIX": f"{RUN_ID}:f{tag}:",
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
        "DB_POOL_MAX_SIZE": "4",
        "OUTBOX_POLL_SECONDS": "0.5",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    deployed = Deployment(nats_proc, env, logs)
    try:
        yield deployed
    finally:
        # The logs stay in `tmp_path` for a look after a failure.
        await asyncio.gather(*(c.stop() for c in deployed.components), return_exceptions=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The `FAULT …` figure lines the fault tests print, gathered after the run
    (docs/reliability.md holds those of a full run)."""
    lines = [
        line
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", "") == "call"
        for line in getattr(report, "capstdout", "").splitlines()
        if line.startswith("FAULT ")
    ]
    if lines:
        terminalreporter.section("fault figures")
        for line in lines:
            terminalreporter.write_line(line)
