"""NATS goes down under writes to every service that creates things, and comes back.

Posts, goals and resources run as processes on a deployment of their own whose
NATS is the test's private nats-server. Writers create posts, success stories
and resources throughout; the nats-server is SIGKILLed for a few seconds and
started again on the same store. The services keep accepting writes while NATS
is down (the outbox holds the events); once it is back every acknowledged
write is stored and has exactly one event in `EVENTS`, and nothing else does.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.isolated import IsolatedDeployment, isolated_deployment, started
from tests.faults.processes import NatsProcess
from tests.faults.writes import WRITES, Writers, acknowledged_at_least, published

OUTAGE_SECONDS = 3.0


@pytest.fixture
async def own(infra: Any, nats_proc: NatsProcess) -> AsyncIterator[IsolatedDeployment]:
    async for made in isolated_deployment(infra):
        made.env["NATS_URL"] = nats_proc.url
        yield made


async def test_nats_outage_under_writes_to_every_service_loses_and_doubles_nothing(
    own: IsolatedDeployment, nats_proc: NatsProcess, tmp_path: Path
) -> None:
    names = sorted(WRITES)
    services = {name: own.component(name, tmp_path) for name in names}
    await asyncio.gather(*(started(service) for service in services.values()))
    writers = {name: Writers(services[name], WRITES[name], count=3) for name in names}
    for group in writers.values():
        group.start()
    try:
        await asyncio.gather(*(acknowledged_at_least(w.tally, 10) for w in writers.values()))
        await nats_proc.kill(signal.SIGKILL)
        down_at = time.monotonic()
        before = {name: len(w.tally.acknowledged) for name, w in writers.items()}
        await asyncio.sleep(OUTAGE_SECONDS)
        during = {name: len(w.tally.acknowledged) - before[name] for name, w in writers.items()}
        await nats_proc.start()
        outage = time.monotonic() - down_at
        await asyncio.gather(
            *(
                acknowledged_at_least(w.tally, before[n] + during[n] + 10)
                for n, w in writers.items()
            )
        )
    finally:
        for group in writers.values():
            await group.stop()
    try:
        outcomes = {
            name: await published(
                own.database_url, nats_proc.url, own.prefix, WRITES[name], writers[name].tally
            )
            for name in names
        }
    finally:
        await asyncio.gather(*(service.stop() for service in services.values()))

    for name in names:
        tally = writers[name].tally
        print(
            f"FAULT nats-outage ({name}): {outcomes[name].figures()} "
            f"acknowledged_while_down={during[name]} outage={outage:.1f}s "
            f"5xx={tally.server_errors} failed_requests={tally.failed}"
        )
    for name in names:
        assert during[name] > 0, f"{name} accepted no write while NATS was down"
        outcomes[name].assert_exactly_once()
        assert writers[name].tally.server_errors == 0
