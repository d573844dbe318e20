"""SIGKILL a service while clients write to it: nothing acknowledged is lost, nothing doubles.

Each service runs as a real process (`python -m community_<name>.app`) on its
own database, subject prefix and key prefix, against the machine's Postgres,
NATS and Redis (only the service process is killed). Writers keep creating
things before, during and after the kill; a write counts as acknowledged when
its 201 arrived. Afterwards:

- every acknowledged write is in the service's table;
- every row in that table (acknowledged or committed while its client saw the
  connection die) has exactly one event in `EVENTS`, and no event id repeats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.isolated import IsolatedDeployment, isolated_deployment, started
from tests.faults.writes import WRITES, Writers, acknowledged_at_least, published

WRITES_EACH_SIDE = 25  # acknowledged writes before the kill, and again after the restart


@pytest.fixture
async def own(infra: Any) -> AsyncIterator[IsolatedDeployment]:
    async for made in isolated_deployment(infra):
        yield made


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_sigkill_mid_writes_loses_no_acknowledged_write_and_doubles_no_event(
    name: str, own: IsolatedDeployment, infra: Any, tmp_path: Path
) -> None:
    write = WRITES[name]
    service = own.component(name, tmp_path)
    await started(service)
    writers = Writers(service, write)
    writers.start()
    try:
        await acknowledged_at_least(writers.tally, WRITES_EACH_SIDE)
        before_kill = len(writers.tally.acknowledged)
        await service.kill()
        restart_seconds = await started(service)
        await acknowledged_at_least(writers.tally, before_kill + WRITES_EACH_SIDE)
    finally:
        await writers.stop()
    try:
        outcome = await published(
            own.database_url, infra.nats_url, own.prefix, write, writers.tally
        )
    finally:
        await service.stop()

    tally = writers.tally
    print(
        f"FAULT service SIGKILL mid-writes ({name}): {outcome.figures()} "
        f"acknowledged_before_kill={before_kill} failed_requests={tally.failed} "
        f"5xx={tally.server_errors} restart_to_ready={restart_seconds:.2f}s "
        f"refusals={dict(tally.refusals)}"
    )
    assert before_kill > 0 and outcome.acknowledged > before_kill
    outcome.assert_exactly_once()
    assert tally.server_errors == 0
