"""`./run stack --cluster` for real, as a user runs it: the clustered topology comes up,
keeps every stream in three copies, delivers through the load balancer and stops on SIGTERM.

The command itself (`./run stack --cluster`: uv, then the runner) runs as a
subprocess in a process group of its own, with a database, NATS subject prefix,
Redis key prefix and ports of its own (`isolation`, `free_port_offset`); its
three NATS servers are its own, their stores under `.run/offset-N/` (removed
after). What the runner prints names the processes and their addresses; the
test checks that:

- the three NATS servers route to each other as one cluster, and `EVENTS` and
  the gateway's `CHANNELS` have three copies, one on each server, all current;
- both gateways and both instances of each service answer `/ready`;
- a post created through `posts-2` arrives as a `feed` event on a client
  connected through HAProxy and on a client connected to each gateway directly;
- SIGTERM to the command stops every process the runner started (process
  groups included) and frees every port, within `stop_and_check`'s bound.

It runs without the demo seed (`--no-seed`), which `test_runner.py` covers and which
would double the start-up here. Its figures (start-up, post to frame, stop) are
printed on a `STACK cluster:` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from community_gateway.store import CHANNELS_STREAM
from community_shared.auth import issue_token
from community_shared.settings import Settings
from community_shared.streams import EVENTS_STREAM
from nats.js.api import StreamInfo

from infra.demo.server import DEMO_PORT
from infra.local import cluster, runner
from tests.conftest import _answers, open_ws
from tests.integration.infra.test_runner import (
    READY,
    ROOT,
    free_port_offset,
    running_stack,
    stop_and_check,
    wait_for_line,
)

pytestmark = [
    pytest.mark.skipif(
        cluster.haproxy_binary() is None,
        reason="haproxy is not installed (apt-get install haproxy): the cluster's load balancer",
    ),
    pytest.mark.skipif(
        cluster.nats_binary() is None,
        reason="nats-server is not installed: the cluster's NATS servers",
    ),
]

COMMAND = (str(ROOT / "run"), "stack", "--cluster", "--no-seed")
"""Without the demo seed: `test_runner.py` covers it, and here it would double the start-up."""
SHAPE = cluster.ClusterShape()
PLANNED = cluster.instances([(c.name, c.module, c.port) for c in runner.COMPONENTS], SHAPE)
"""Two gateways and two instances of each service."""
PORTS = (
    *(instance.port for instance in PLANNED),
    *(
        port
        for server in cluster.nats_servers(SHAPE.nats_servers)
        for port in (server.client_port, server.route_port, server.monitor_port)
    ),
    DEMO_PORT,
    cluster.BALANCER_PORT,
)
"""Every port the cluster listens on, before the offset."""
OFFSETS = range(12_000, 24_000, 100)
"""Offsets that keep every port under 32768, below the kernel's ephemeral ports."""
START_WITHIN = 120.0
"""Seconds for three NATS servers and twelve Python processes on two busy cores."""


@dataclass(frozen=True)
class Topology:
    """What the runner's "Cluster:" summary names."""

    nats: dict[str, tuple[str, str]]  # nats-1 -> (client URL, monitoring URL)
    instances: dict[str, str]  # gateway-1, posts-2, ... -> http://host:port
    balancer: str  # ws://host:port/ws

    @classmethod
    def printed(cls, output: str) -> Topology:
        summary = output[output.index("\nCluster:\n") :]
        servers = r"^  (nats-\d+) +(nats://\S+) +\(monitoring: (http://[\d.]+:\d+)/jsz\)$"
        processes = r"^  ([a-z]+-\d+) +(?:ws|http)://([\d.]+:\d+)(?:/ws)?$"
        balancer = re.search(r"^  load balancer +(ws://\S+/ws) \(HAProxy\)$", summary, re.M)
        assert balancer is not None, summary
        return cls(
            nats={m[1]: (m[2], m[3]) for m in re.finditer(servers, summary, re.M)},
            instances={m[1]: f"http://{m[2]}" for m in re.finditer(processes, summary, re.M)},
            balancer=balancer[1],
        )

    def websocket(self, name: str) -> str:
        return self.instances[name].replace("http://", "ws://") + "/ws"


async def routed_as_one_cluster(topology: Topology) -> None:
    """Every NATS server is in the runner's cluster and routes to each of the others."""
    async with httpx.AsyncClient(timeout=5) as client:
        for name, (_, monitor) in topology.nats.items():
            varz = (await client.get(f"{monitor}/varz")).json()
            assert varz["cluster"]["name"] == cluster.CLUSTER_NAME, (name, varz["cluster"])
            routes = (await client.get(f"{monitor}/routez")).json().get("routes") or []
            # One peer per server (NATS 2.10 may pool several routes to each).
            assert len({r["remote_id"] for r in routes}) == len(topology.nats) - 1, (name, routes)


def three_copies(info: StreamInfo, servers: set[str]) -> bool:
    """A copy on every server (the leader's and the replicas'), every replica current."""
    placed = info.cluster
    if placed is None or placed.leader is None or info.config.num_replicas != len(servers):
        return False
    replicas = placed.replicas or []
    return {placed.leader, *(r.name for r in replicas)} == servers and all(
        r.current and not r.offline for r in replicas
    )


async def replicated(topology: Topology, streams: list[str], within: float = 20.0) -> None:
    """Until every stream has a copy on each server, all current (the gateway creates
    `CHANNELS` as it starts, and a new replica may still be catching up)."""
    servers = set(topology.nats)
    nc = await nats.connect(servers=[url for url, _ in topology.nats.values()], connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        deadline = time.monotonic() + within
        seen: dict[str, Any] = {}
        while True:
            for stream in streams:
                with contextlib.suppress(nats.errors.Error):
                    seen[stream] = await js.stream_info(stream)
            if all(s in seen and three_copies(seen[s], servers) for s in streams):
                return
            assert time.monotonic() < deadline, f"not in {len(servers)} copies: {seen}"
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def all_ready(topology: Topology) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for name, base in topology.instances.items():
            ready = await client.get(f"{base}/ready")
            assert ready.status_code == 200, (name, ready.text)


def token(secret: str, name: str) -> str:
    return issue_token(sub=uuid.uuid4(), role="student", name=name, secret=secret, ttl_seconds=600)


async def post_to_feeds(topology: Topology, secret: str) -> dict[str, float]:
    """Seconds from sending a post to `posts-2` until each client has it as a `feed` event."""
    reader = token(secret, "Cluster Reader")
    targets = {"balancer": topology.balancer}
    targets |= {name: topology.websocket(name) for name in topology.instances if "gateway" in name}
    async with contextlib.AsyncExitStack() as opened:
        clients = {
            name: await opened.enter_async_context(open_ws(url, reader))
            for name, url in targets.items()
        }
        for name, ws in clients.items():
            assert (await ws.subscribe("feed"))["op"] == "subscribed", name
        content = f"through the cluster {uuid.uuid4().hex}"
        headers = {"Authorization": f"Bearer {token(secret, 'Cluster Author')}"}
        sent = time.monotonic()
        async with httpx.AsyncClient(base_url=topology.instances["posts-2"], timeout=10) as posts:
            created = await posts.post(
                "/posts", json={"content": content, "visibility": "public"}, headers=headers
            )
        assert created.status_code == 201, created.text
        post_id = created.json()["id"]

        async def arrival(ws: Any) -> float:
            frame = await ws.recv_until(
                lambda f: (
                    f.get("type") == "post.created" and (f.get("data") or {}).get("id") == post_id
                ),
                timeout=10,
            )
            assert frame["op"] == "event" and frame["channel"] == "feed", frame
            assert frame["data"]["content"] == content
            return time.monotonic() - sent

        took = await asyncio.gather(*(arrival(ws) for ws in clients.values()))
    return dict(zip(clients, took, strict=True))


async def check(topology: Topology, env: dict[str, str]) -> dict[str, float]:
    await routed_as_one_cluster(topology)
    names = Settings(service="test", nats_subject_prefix=env["NATS_SUBJECT_PREFIX"])
    await replicated(
        topology, [names.stream_name(EVENTS_STREAM), names.stream_name(CHANNELS_STREAM)]
    )
    await all_ready(topology)
    return await post_to_feeds(topology, env["JWT_SECRET"])


def group_gone(pgid: int, within: float = 5.0) -> bool:
    """No process left in the group (its last ones may need a moment to be reaped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def listening(port: int) -> bool:
    return _answers(f"tcp://127.0.0.1:{port}", port)


def test_cluster_comes_up_replicates_delivers_through_the_balancer_and_stops_on_sigterm(
    isolation: dict[str, str], tmp_path: Path
) -> None:
    # Ten service processes share the machine's Postgres with everything else.
    env = {**isolation, "DB_POOL_MAX_SIZE": "4"}
    offset = free_port_offset(PORTS, OFFSETS)
    began = time.monotonic()
    try:
        with running_stack(env, tmp_path / "cluster.log", offset, COMMAND) as stack:
            wait_for_line(stack, READY, within=START_WITHIN)
            ready = time.monotonic() - began
            topology = Topology.printed(stack.output())
            started = stack.started()
            assert sorted(topology.nats) == ["nats-1", "nats-2", "nats-3"]
            expected = {instance.name for instance in PLANNED}
            assert set(topology.instances) == expected
            assert set(started) == expected | set(topology.nats) | {"haproxy"}

            delivery = asyncio.run(check(topology, env))

            stopping = time.monotonic()
            stop_and_check(stack)
            stopped = time.monotonic() - stopping
            for name, pid in started.items():
                assert group_gone(pid), f"a process of {name}'s group (pid {pid}) is left"
            assert group_gone(stack.process.pid), "a process of the command's group is left"
            assert not [p + offset for p in PORTS if listening(p + offset)]
    finally:
        shutil.rmtree(cluster.state_dir(ROOT, offset), ignore_errors=True)
    figures = " ".join(f"{name}={seconds * 1000:.0f}ms" for name, seconds in delivery.items())
    print(
        f"STACK cluster: ready in {ready:.1f} s; "
        f"post to feed frame: {figures}; stopped in {stopped:.1f} s"
    )
