"""A private three-server NATS cluster (JetStream) that a fault test may SIGKILL a server of.

The servers are started as `./run stack --cluster` starts them
(`infra.local.cluster.nats_argv`), on free ports, each with its store under
the test's temporary directory; a killed server restarts on its ports and
store and rejoins.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
from nats.js.api import StreamInfo

from infra.local import cluster
from tests.faults.processes import NATS_AVAILABLE, NATS_SERVER, free_port


class NatsCluster:
    def __init__(self, store: Path, size: int = 3) -> None:
        self.store = store
        self.servers = [
            cluster.NatsServer(n, free_port(), free_port(), free_port()) for n in range(1, size + 1)
        ]
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    @property
    def url(self) -> str:
        """`NATS_URL` of the components: every server, comma-separated."""
        return ",".join(s.url for s in self.servers)

    def server(self, name: str) -> cluster.NatsServer:
        return next(s for s in self.servers if s.name == name)

    async def start(self, name: str) -> None:
        server = self.server(name)
        self.processes[name] = await asyncio.create_subprocess_exec(
            *cluster.nats_argv(NATS_SERVER, server, self.servers, self.store),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def start_all(self) -> None:
        for server in self.servers:
            await self.start(server.name)
        await cluster.wait_jetstream(self.servers)

    async def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()

    async def stop_all(self) -> None:
        for name in list(self.processes):
            await self.kill(name)

    async def stream_leader(self, stream: str) -> str:
        info = await self.stream_info(stream)
        assert info.cluster is not None and info.cluster.leader, info
        return info.cluster.leader

    async def stream_info(self, stream: str) -> StreamInfo:
        alive = [s.url for s in self.servers if s.name in self.processes]
        nc = await nats.connect(servers=alive, connect_timeout=2)
        try:
            return await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()

    async def healed(self, streams: list[str], within: float = 30.0) -> float:
        """Seconds until every replica of every stream is current (and a leader exists)."""
        began = time.monotonic()
        deadline = began + within
        while True:
            with contextlib.suppress(Exception):
                infos = [await self.stream_info(stream) for stream in streams]
                if all(
                    i.cluster is not None
                    and i.cluster.leader
                    and len(i.cluster.replicas or []) == len(self.servers) - 1
                    and all(r.current and not r.offline for r in i.cluster.replicas or [])
                    for i in infos
                ):
                    return time.monotonic() - began
            assert time.monotonic() < deadline, f"streams not healed within {within}s"
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def nats_cluster(store: Path) -> AsyncIterator[NatsCluster]:
    if not NATS_AVAILABLE:
        import pytest

        pytest.skip("nats-server binary not available for fault tests")
    started = NatsCluster(store)
    try:
        await started.start_all()
        yield started
    finally:
        await started.stop_all()
