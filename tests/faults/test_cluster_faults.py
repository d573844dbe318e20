"""Faults in the clustered topology (SPEC §10): a NATS server, an instance of each service.

Both tests run on a private three-server NATS cluster (`tests/faults/natscluster.py`,
started as `./run stack --cluster` starts it) with every stream in three
copies (`NATS_STREAM_REPLICAS=3`), and a database, subject prefix and key
prefix of their own.

1. One NATS server SIGKILLed (the leader of `EVENTS`) while writers keep
   creating posts, resources and stories and 200 clients follow `feed`
   through a gateway: every write answered 2xx, every acknowledged write's
   event in `EVENTS` exactly once, every post delivered to every client
   exactly once; the server restarts and every stream's replicas are current
   again (the time that takes is printed).
2. One instance of each service SIGKILLed while writers send each request to
   the next live instance (as a load balancer does): the other instance
   serves, and no outbox row stays unpublished (the relays of both instances
   claim rows with `FOR UPDATE SKIP LOCKED`; the rows the killed one held are
   released with its transaction and published by the other).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from community_gateway.store import CHANNELS_STREAM

from tests.faults.delivery import fault_line
from tests.faults.feed import open_clients, tally, wait_for_all
from tests.faults.isolated import IsolatedDeployment, eventually, isolated_deployment, started
from tests.faults.natscluster import NatsCluster, nats_cluster
from tests.faults.processes import Component, component_env, free_port
from tests.faults.writes import WRITES, Published, Writers, acknowledged_at_least, published

CLIENTS = 200
WRITES_EACH_PHASE = 8
"""Acknowledged writes per service before the kill, during the outage, after healing."""


@pytest.fixture
async def own(infra: Any) -> AsyncIterator[IsolatedDeployment]:
    async for made in isolated_deployment(infra):
        yield made


@pytest.fixture
async def natsc(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    async with nats_cluster(tmp_path / "nats") as started_cluster:
        yield started_cluster


def on_cluster(own: IsolatedDeployment, natsc: NatsCluster) -> None:
    own.env.update(NATS_URL=natsc.url, NATS_STREAM_REPLICAS="3")


def instance(own: IsolatedDeployment, name: str, module: str, logs: Path) -> Component:
    env = component_env(own.env, PORT=str(free_port()))
    return Component(name, module, env, logs / f"{name}.log")


async def all_at_least(writers: dict[str, Writers], counts: dict[str, int]) -> None:
    await asyncio.gather(
        *(acknowledged_at_least(w.tally, counts[n], within=45) for n, w in writers.items())
    )


def acknowledged(writers: dict[str, Writers]) -> dict[str, int]:
    return {name: len(w.tally.acknowledged) for name, w in writers.items()}


async def outcomes(
    own: IsolatedDeployment, natsc: NatsCluster, writers: dict[str, Writers]
) -> dict[str, Published]:
    url = natsc.servers[0].url
    return {
        name: await published(own.database_url, url, own.prefix, WRITES[name], w.tally)
        for name, w in writers.items()
    }


async def test_a_nats_server_killed_mid_writes_loses_and_doubles_nothing(
    own: IsolatedDeployment, natsc: NatsCluster, tmp_path: Path
) -> None:
    on_cluster(own, natsc)
    services = [own.component(name, tmp_path) for name in (*sorted(WRITES), "leaderboard")]
    gateway = instance(own, "gateway", "community_gateway.app", tmp_path)
    await asyncio.gather(*(started(c) for c in (*services, gateway)))
    clients = await open_clients(gateway.ws_url, CLIENTS)
    by_name = {c.name: c for c in services}
    writers = {name: Writers(by_name[name], WRITES[name], count=2) for name in sorted(WRITES)}
    events_stream = own.prefix.replace(".", "_") + "EVENTS"
    for w in writers.values():
        w.start()
    try:
        await all_at_least(writers, dict.fromkeys(writers, WRITES_EACH_PHASE))
        victim = await natsc.stream_leader(events_stream)
        before = acknowledged(writers)
        await natsc.kill(victim)
        await all_at_least(writers, {n: c + WRITES_EACH_PHASE for n, c in before.items()})
        during = acknowledged(writers)
        await natsc.start(victim)
        streams = [events_stream, own.prefix.replace(".", "_") + CHANNELS_STREAM]
        heal = await natsc.healed(streams)
        await all_at_least(writers, {n: c + WRITES_EACH_PHASE for n, c in during.items()})
    finally:
        for w in writers.values():
            await w.stop()
    results = await outcomes(own, natsc, writers)
    post_ids = set(writers["posts"].tally.acknowledged)
    await wait_for_all(clients, post_ids, timeout=30)
    feed = tally(clients, post_ids)
    for client in clients:
        await client.close()
    failed = sum(w.tally.failed for w in writers.values())
    server_errors = sum(w.tally.server_errors for w in writers.values())
    print(
        fault_line(
            "nats-server SIGKILL in a 3-server cluster",
            killed=f"{victim}(EVENTS leader)",
            writes=sum(r.acknowledged for r in results.values()),
            failed_writes=failed,
            server_errors=server_errors,
            events_lost=sum(len(r.lost) + len(r.unpublished) for r in results.values()),
            events_duplicated=sum(r.duplicated for r in results.values()),
            clients=CLIENTS,
            frames_expected=feed.expected,
            delivered=feed.delivered,
            lost=feed.lost,
            duplicated=feed.duplicated,
            healed_in=f"{heal:.2f}s",
        )
    )
    for result in results.values():
        result.assert_exactly_once()
    assert (failed, server_errors) == (0, 0), {n: w.tally for n, w in writers.items()}
    assert (feed.lost, feed.duplicated) == (0, 0)


class Balanced:
    """The instances of a service as a load balancer offers them: each request to the
    next one still running (a balancer's health check does the same, a little later)."""

    def __init__(self, instances: list[Component]) -> None:
        self.instances = instances
        self.turn = 0

    @property
    def base_url(self) -> str:
        live = [c for c in self.instances if c.process is not None and c.process.returncode is None]
        self.turn += 1
        return (live or self.instances)[self.turn % len(live or self.instances)].base_url


async def pending_outbox(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        total = 0
        for schema in ("posts", "resources", "goals", "leaderboard"):
            total += await connection.fetchval(
                f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
            )
        return int(total)
    finally:
        await connection.close()


async def test_one_instance_of_each_service_killed_the_other_serves_and_nothing_stays_behind(
    own: IsolatedDeployment, natsc: NatsCluster, tmp_path: Path
) -> None:
    on_cluster(own, natsc)
    pairs = {
        name: [instance(own, f"{name}-{i}", f"community_{name}.app", tmp_path) for i in (1, 2)]
        for name in (*sorted(WRITES), "leaderboard")
    }
    await asyncio.gather(*(started(c) for pair in pairs.values() for c in pair))
    writers = {
        name: Writers(Balanced(pairs[name]), WRITES[name], count=2)  # type: ignore[arg-type]
        for name in sorted(WRITES)
    }
    for w in writers.values():
        w.start()
    try:
        await all_at_least(writers, dict.fromkeys(writers, WRITES_EACH_PHASE))
        before = acknowledged(writers)
        killed_at = time.monotonic()
        await asyncio.gather(*(pair[0].kill() for pair in pairs.values()))
        await all_at_least(writers, {n: c + 2 * WRITES_EACH_PHASE for n, c in before.items()})
    finally:
        for w in writers.values():
            await w.stop()
    results = await outcomes(own, natsc, writers)
    drained = await eventually(lambda: _no_pending(own.database_url), within=20)
    outbox_clear = time.monotonic() - killed_at
    async with httpx.AsyncClient(timeout=5) as http:
        survivors = {
            name: (await http.get(pair[1].base_url + "/ready")).status_code
            for name, pair in pairs.items()
        }
    failed = sum(w.tally.failed for w in writers.values())
    server_errors = sum(w.tally.server_errors for w in writers.values())
    print(
        fault_line(
            "one instance of each service SIGKILLed (two each, NATS cluster)",
            writes=sum(r.acknowledged for r in results.values()),
            after_kill=sum(acknowledged(writers).values()) - sum(before.values()),
            failed_requests=failed,
            server_errors=server_errors,
            events_lost=sum(len(r.lost) + len(r.unpublished) for r in results.values()),
            events_duplicated=sum(r.duplicated for r in results.values()),
            outbox_pending=await pending_outbox(own.database_url),
            outbox_clear_after_kill=f"{outbox_clear:.2f}s",
            survivors_ready=all(code == 200 for code in survivors.values()),
        )
    )
    for result in results.values():
        result.assert_exactly_once()
    assert drained, "outbox rows left unpublished"
    assert server_errors == 0
    assert survivors == dict.fromkeys(pairs, 200)


async def _no_pending(database_url: str) -> bool:
    return await pending_outbox(database_url) == 0
