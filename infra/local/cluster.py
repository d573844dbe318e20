"""The clustered topology on one machine (`./run stack --cluster`, SPEC §10).

A three-server NATS cluster on loopback ports (JetStream, every stream with
`NATS_STREAM_REPLICAS` copies, 3 by default), two gateways and two instances
of each service on distinct ports, and, where HAProxy is installed, a load
balancer in front of the gateways for websockets. The same topology as the
compose profile `cluster` (docker-compose.yml, infra/haproxy/haproxy.cfg).

Ports (all shifted by `--port-offset`):

- instance `i` (1, 2, …) of a component whose SPEC port is `P` listens on
  `P + 10 * (i - 1)`: gateways 8000 and 8010, posts 8001 and 8011, …;
- NATS server `n` (1, 2, 3) takes clients on `4321 + n`, routes on
  `6321 + n` and monitoring on `8321 + n` (beside a NATS on 4222);
- the load balancer listens on 8090: `ws://127.0.0.1:8090/ws`.

The NATS stores and the HAProxy configuration are under `.run/`, or
`.run/offset-N/` with `--port-offset N` (`state_dir`).

Settings: `--nats-servers`, `--gateways`, `--instances` (or `CLUSTER_NATS_SERVERS`,
`CLUSTER_GATEWAYS`, `CLUSTER_INSTANCES`); `NATS_STREAM_REPLICAS` (default: 3, or
the number of servers if fewer); `NATS_URL` naming several servers uses that
cluster instead of starting one.

The decisions are plain functions (tested without starting anything); the
I/O is at the bottom and is called by the runner.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

NATS_CLIENT_BASE = 4321
NATS_ROUTE_BASE = 6321
NATS_MONITOR_BASE = 8321
INSTANCE_PORT_STEP = 10
BALANCER_PORT = 8090
CLUSTER_NAME = "community-live"
DEFAULT_REPLICAS = 3


@dataclass(frozen=True)
class ClusterShape:
    """How many of each: the settings of the topology."""

    nats_servers: int = 3
    gateways: int = 2
    instances: int = 2  # of each service
    replicas: int = DEFAULT_REPLICAS
    external_nats: tuple[str, ...] = ()  # an existing cluster's URLs: start none

    def __post_init__(self) -> None:
        if not 1 <= self.nats_servers <= 9:
            raise ValueError("the NATS cluster has 1 to 9 servers")
        if not 1 <= self.gateways <= 8 or not 1 <= self.instances <= 8:
            # A ninth gateway would take the demo page's port (8080).
            raise ValueError("1 to 8 gateways and instances of each service")
        servers = len(self.external_nats) or self.nats_servers
        if not 1 <= self.replicas <= min(servers, 5):
            raise ValueError(f"stream replicas must be between 1 and {min(servers, 5)}")


def shape_from(
    env: Mapping[str, str],
    nats_servers: int | None = None,
    gateways: int | None = None,
    instances: int | None = None,
) -> ClusterShape:
    """The shape from the command line, else the environment, else three servers, two of each."""
    servers = nats_servers or int(env.get("CLUSTER_NATS_SERVERS", "3"))
    urls = [u for u in env.get("NATS_URL", "").replace(",", " ").split() if u]
    external = tuple(urls) if len(urls) > 1 else ()
    replicas = env.get("NATS_STREAM_REPLICAS")
    default_replicas = min(DEFAULT_REPLICAS, len(external) or servers)
    return ClusterShape(
        nats_servers=servers,
        gateways=gateways or int(env.get("CLUSTER_GATEWAYS", "2")),
        instances=instances or int(env.get("CLUSTER_INSTANCES", "2")),
        replicas=int(replicas) if replicas else default_replicas,
        external_nats=external,
    )


@dataclass(frozen=True)
class NatsServer:
    index: int  # 1-based
    client_port: int
    route_port: int
    monitor_port: int

    @property
    def name(self) -> str:
        return f"nats-{self.index}"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def route_url(self) -> str:
        return f"nats://127.0.0.1:{self.route_port}"


def nats_servers(count: int, port_offset: int = 0) -> list[NatsServer]:
    return [
        NatsServer(
            n,
            NATS_CLIENT_BASE + n + port_offset,
            NATS_ROUTE_BASE + n + port_offset,
            NATS_MONITOR_BASE + n + port_offset,
        )
        for n in range(1, count + 1)
    ]


def nats_argv(
    binary: str, server: NatsServer, cluster: Sequence[NatsServer], store: Path
) -> list[str]:
    """One server of the cluster: JetStream in its own store, routes to every other."""
    argv = [binary, "-a", "127.0.0.1", "-p", str(server.client_port), "-n", server.name]
    argv += ["-js", "-sd", str(store / server.name), "-m", str(server.monitor_port)]
    if len(cluster) > 1:
        routes = ",".join(s.route_url for s in cluster if s != server)
        argv += ["--cluster_name", CLUSTER_NAME, "--cluster", server.route_url]
        argv += ["--routes", routes]
    return argv


@dataclass(frozen=True)
class Instance:
    """One process of a component: `gateway-2` on 8010."""

    component: str
    module: str
    index: int  # 1-based
    port: int

    @property
    def name(self) -> str:
        return f"{self.component}-{self.index}"


def instances(
    components: Sequence[tuple[str, str, int]], shape: ClusterShape, port_offset: int = 0
) -> list[Instance]:
    """Every process to start, from (name, module, SPEC port) of each component present."""
    planned = []
    for name, module, port in components:
        count = shape.gateways if name == "gateway" else shape.instances
        for i in range(1, count + 1):
            planned.append(
                Instance(name, module, i, port + INSTANCE_PORT_STEP * (i - 1) + port_offset)
            )
    return planned


def cluster_env(
    base: Mapping[str, str], shape: ClusterShape, servers: Sequence[NatsServer]
) -> dict[str, str]:
    """What every component of the cluster reads besides its `PORT`."""
    urls = shape.external_nats or tuple(s.url for s in servers)
    return {**base, "NATS_URL": ",".join(urls), "NATS_STREAM_REPLICAS": str(shape.replicas)}


def haproxy_config(bind: str, gateways: Sequence[tuple[str, str]], maxconn: int = 10_000) -> str:
    """HAProxy listening on `bind` in front of the gateways: (name, "host:port") of each.

    `leastconn` spreads long-lived connections; `/ready` takes a gateway out
    as soon as it starts draining (it answers 503), so reconnecting clients go
    to the others, and a handshake refused meanwhile (the draining gateway no
    longer listens) is retried on another (`redispatch`); `timeout tunnel`
    keeps idle websockets open (the gateway's pings every 20 s keep them busy
    anyway). `init-addr` lets the
    configuration load before the gateways' names resolve (compose).
    `maxconn` needs twice as many file descriptors (client and gateway side).
    """
    servers = "\n".join(
        f"    server {name} {address} check inter 1s fall 2 rise 2" for name, address in gateways
    )
    return f"""# HAProxy in front of the gateways (websockets), written by haproxy_config() in
# infra/local/cluster.py: for `./run stack --cluster` under .run/, and as
# infra/haproxy/haproxy.cfg for the compose profile `cluster` (a test keeps it current).
global
    maxconn {maxconn}

defaults
    mode http
    option http-server-close
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout client-fin 10s
    timeout http-request 30s

frontend websockets
    bind {bind}
    default_backend gateways

backend gateways
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
    default-server init-addr last,libc,none
{servers}
"""


COMPOSE_GATEWAYS = (("gateway-1", "gateway-1:8000"), ("gateway-2", "gateway-2:8000"))
COMPOSE_BIND = f"*:{BALANCER_PORT}"
"""What infra/haproxy/haproxy.cfg is written from (the compose profile's names)."""


def cluster_summary(
    host: str,
    servers: Sequence[NatsServer],
    shape: ClusterShape,
    started: Sequence[Instance],
    balancer_port: int | None,
) -> str:
    """The topology, printed at start."""
    lines = ["Cluster:"]
    if shape.external_nats:
        lines.append(f"  {'NATS':<14} {', '.join(shape.external_nats)} (not started here)")
    for server in servers:
        monitor = f"http://127.0.0.1:{server.monitor_port}/jsz"
        lines.append(f"  {server.name:<14} {server.url}   (monitoring: {monitor})")
    lines.append(f"  {'stream copies':<14} {shape.replicas} (NATS_STREAM_REPLICAS)")
    for instance in started:
        if instance.component == "gateway":
            lines.append(f"  {instance.name:<14} ws://{host}:{instance.port}/ws")
        else:
            lines.append(f"  {instance.name:<14} http://{host}:{instance.port}")
    if balancer_port is not None:
        lines.append(f"  {'load balancer':<14} ws://{host}:{balancer_port}/ws (HAProxy)")
    return "\n".join(lines)


def state_dir(root: Path, port_offset: int) -> Path:
    """Where a cluster keeps its NATS stores and HAProxy configuration.

    A stack shifted by `--port-offset` gets a directory of its own: two
    clusters side by side must not share a server's store (nor one cluster
    inherit the other's streams).
    """
    return root / ".run" / (f"offset-{port_offset}" if port_offset else "")


# --------------------------------------------------------------------------- I/O


def nats_binary() -> str | None:
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
    )


def balancer_maxconn(open_files_limit: int) -> int:
    """The most connections HAProxy can carry under this process's file limit."""
    return max(100, min(10_000, (open_files_limit - 100) // 2))


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )


async def wait_jetstream(servers: Sequence[NatsServer], within: float = 30.0) -> None:
    """Until every server says JetStream is current (`/healthz`: a meta leader exists)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=1.0) as client:
        for server in servers:
            last = "no answer"
            while True:
                try:
                    response = await client.get(f"http://127.0.0.1:{server.monitor_port}/healthz")
                    if response.status_code == 200:
                        break
                    last = response.text[:200]
                except httpx.HTTPError as exc:
                    last = str(exc) or type(exc).__name__
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server.name} not healthy in time: {last}")
                await asyncio.sleep(0.2)
