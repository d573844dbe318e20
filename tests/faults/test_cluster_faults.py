"""Faults in the clustered topology (SPEC §10): a NATS server, then an instance of each service.

On a private three-server NATS cluster (`tests/faults/natscluster.py`, started
as `./run stack --cluster` starts it) with every stream in three copies
(`NATS_STREAM_REPLICAS=3`), a database, subject prefix and key prefix of its
own: two instances of each service, a gateway with 200 clients following
`feed`, and a writer per service creating posts, resources and stories, each
request sent to the next live instance (as a load balancer does). One
deployment, two faults in turn (starting it once keeps the test short):

1. The NATS server leading `EVENTS` is SIGKILLed and kept down for 2 s while
   the writes go on, then started again: every write answered 2xx, and the
   cluster heals (every replica of `EVENTS` and `CHANNELS` current again; the
   time it took is printed).
2. One instance of each service is SIGKILLed: the other serves, and no outbox
   row stays unpublished (the relays of both instances claim rows with
   `FOR UPDATE SKIP LOCKED`; the rows the killed one held are released with
   its transaction and published by the other).

Then every acknowledged write's event is in `EVENTS` exactly once, and every
post reached every client exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from community_shared.channelstreams import CHANNELS_STREAM

from tests.faults.delivery import fault_line
from tests.faults.feed import open_clients, tally, wait_for_all
from tests.faults.isolated import IsolatedDeployment, eventually, isolated_deployment, started
from tests.faults.natscluster import NatsCluster, nats_cluster
from tests.faults.processes import Component, component_env, free_port
from tests.faults.writes import WRITES, Published, Writers, acknowledged_at_least, published

CLIENTS = 200
WRITES_EACH_PHASE = 5
"""Acknowledged writes per service in each phase (before, during and after each fault)."""
OUTAGE = 2.0
"""Seconds the NATS server stays down."""


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
    found: dict[str, Published] = {}
    for name, w in writers.items():
        for attempt in range(3):  # a JetStream API call may time out on a loaded machine
            url = natsc.servers[attempt].url
            try:
                found[name] = await published(
                    own.database_url, url, own.prefix, WRITES[name], w.tally
                )
                break
            except nats.errors.TimeoutError:
                if attempt == 2:
                    raise
    return found


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


@pytest.fixture
async def components() -> AsyncIterator[list[Component]]:
    """The processes a test starts, stopped when it ends (before the NATS cluster),
    whether it passed or not: none is left running after the suite."""
    running: list[Component] = []
    yield running
    await asyncio.gather(*(c.stop(grace=5) for c in running), return_exceptions=True)


async def test_a_nats_server_then_an_instance_of_each_service_killed_mid_writes(
    own: IsolatedDeployment, natsc: NatsCluster, tmp_path: Path, components: list[Component]
) -> None:
    on_cluster(own, natsc)
    pairs = {
        name: [instance(own, f"{name}-{i}", f"community_{name}.app", tmp_path) for i in (1, 2)]
        for name in (*sorted(WRITES), "leaderboard")
    }
    gateway = instance(own, "gateway", "community_gateway.app", tmp_path)
    components.extend([gateway, *(c for p in pairs.values() for c in p)])
    began = time.monotonic()
    await asyncio.gather(*(started(c) for c in (gateway, *(c for p in pairs.values() for c in p))))
    ready = time.monotonic() - began
    clients = await open_clients(gateway.ws_url, CLIENTS)
    writers = {
        name: Writers(Balanced(pairs[name]), WRITES[name], count=1)  # type: ignore[arg-type]
        for name in sorted(WRITES)
    }
    events_stream = own.prefix.replace(".", "_") + "EVENTS"
    streams = [events_stream, own.prefix.replace(".", "_") + CHANNELS_STREAM]
    for w in writers.values():
        w.start()
    try:
        await all_at_least(writers, dict.fromkeys(writers, WRITES_EACH_PHASE))
        # 1. A NATS server: the one leading EVENTS.
        victim = await natsc.stream_leader(events_stream)
        before = acknowledged(writers)
        killed_at = time.monotonic()
        await natsc.kill(victim)
        await all_at_least(writers, {n: c + WRITES_EACH_PHASE for n, c in before.items()})
        await asyncio.sleep(max(0.0, killed_at + OUTAGE - time.monotonic()))
        during_outage = sum(acknowledged(writers).values()) - sum(before.values())
        await natsc.start(victim)
        heal = await natsc.healed(streams)
        after_heal = acknowledged(writers)
        await all_at_least(writers, {n: c + WRITES_EACH_PHASE for n, c in after_heal.items()})
        failed_nats = sum(w.tally.failed for w in writers.values())
        # 2. One instance of each service.
        before_kill = acknowledged(writers)
        instances_killed_at = time.monotonic()
        await asyncio.gather(*(pair[0].kill() for pair in pairs.values()))
        await all_at_least(writers, {n: c + WRITES_EACH_PHASE for n, c in before_kill.items()})
    finally:
        for w in writers.values():
            await w.stop()
    after_kill = sum(acknowledged(writers).values()) - sum(before_kill.values())
    drained = await eventually(lambda: _no_pending(own.database_url), within=20)
    outbox_clear = time.monotonic() - instances_killed_at
    results = await outcomes(own, natsc, writers)
    post_ids = set(writers["posts"].tally.acknowledged)
    await wait_for_all(clients, post_ids, timeout=30)
    feed = tally(clients, post_ids)
    for client in clients:
        await client.close()
    async with httpx.AsyncClient(timeout=5) as http:
        survivors = {
            name: (await http.get(pair[1].base_url + "/ready")).status_code
            for name, pair in pairs.items()
        }
    failed = sum(w.tally.failed for w in writers.values())
    server_errors = sum(w.tally.server_errors for w in writers.values())
    events = {
        "events_lost": sum(len(r.lost) + len(r.unpublished) for r in results.values()),
        "events_duplicated": sum(r.duplicated for r in results.values()),
    }
    print(
        fault_line(
            "cluster: nats-server SIGKILL (3 servers, 3 copies)",
            killed=f"{victim}(EVENTS leader)",
            down=f"{OUTAGE:g}s",
            writes_while_down=during_outage,
            failed_writes=failed_nats,
            server_errors=server_errors,
            healed_in=f"{heal:.2f}s",
            clients=CLIENTS,
            frames_expected=feed.expected,
            delivered=feed.delivered,
            lost=feed.lost,
            duplicated=feed.duplicated,
            **events,
        )
    )
    print(
        fault_line(
            "cluster: one of two instances of each service SIGKILLed",
            writes=sum(r.acknowledged for r in results.values()),
            after_kill=after_kill,
            requests_cut_by_the_kill=failed - failed_nats,
            server_errors=server_errors,
            outbox_pending=await pending_outbox(own.database_url),
            outbox_clear_after_kill=f"{outbox_clear:.2f}s",
            survivors_ready=all(code == 200 for code in survivors.values()),
            start_to_ready=f"{ready:.1f}s",
            total=f"{time.monotonic() - began:.1f}s",
            **events,
        )
    )
    for result in results.values():
        result.assert_exactly_once()
    assert (failed_nats, server_errors) == (0, 0), {n: w.tally for n, w in writers.items()}
    assert (feed.lost, feed.duplicated) == (0, 0)
    assert drained, "outbox rows left unpublished"
    assert survivors == dict.fromkeys(pairs, 200)


async def _no_pending(database_url: str) -> bool:
    return await pending_outbox(database_url) == 0
