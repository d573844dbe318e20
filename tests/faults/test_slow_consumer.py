"""A client that stops reading among 300 healthy ones (SPEC §9: 4008, nobody else slows down).

The stalled client stops reading its socket at the raw level (a 4 KiB
receive buffer, never read again). The gateway must close it with 4008 within
the configured bound (a small one here), the 300 healthy clients' publish →
frame latency must not suffer (the p99 of the median phase is compared with
the same load without the stalled client: within 20% in the long form,
`FAULTS_LONG=1` / `./run faults`, twice or 50 ms in the short one, see
`P99_TARGET`), and once reconnected with `since` the stalled client has
every `user:` event: none lost, none twice.

The healthy clients run in a process of their own (`feedclients`), as real
clients would. Phases with and without a stalled client carry the same load
(posts, and inbox events for a user) and alternate A B B A A B … (a fresh
stalled client each time) so that both see the same machine on average: the
suite shares two cores with other work.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
import uuid
from statistics import median
from typing import Any

import msgspec
from community_gateway.config import GatewayConfig
from prometheus_client import REGISTRY

from tests.conftest import make_user, open_ws
from tests.faults.delivery import DomainEvents, Tally, fault_line, tally
from tests.faults.rawws import RawWsClient

LONG = os.environ.get("FAULTS_LONG") == "1"
HEALTHY = 300
ROUNDS = 6
BATCHES = 3 if LONG else 2  # the next only when the ones before are inconclusive
POSTS_PER_PHASE = 10
# Below what the machine sustains (so p99 measures delivery, not a backlog
# growing with the machine's other load).
POSTS_PER_SECOND = 5.0
CONTENT = "x" * 1000
BADGE_PADDING = 4000  # inbox frames of ~4 KB: only the stalled client's buffers fill fast
CONFIG = GatewayConfig(outbound_bytes=64 * 1024, stall_seconds=2.0, close_timeout=1.0)
# From the first post of a phase to the recorded 4008: the stalled client's
# and the kernel's buffers fill (~2 s at this rate), the stall deadline, one
# check interval, the close timeout, and slack for a loaded machine.
CLOSE_BOUND = 2.0 + CONFIG.stall_seconds + 0.5 + CONFIG.close_timeout + 2.0
P99_TARGET = 1.20
"""The median phase with a stalled client within 20% of one without (printed
as `within_target`; asserted in the long form, run on its own). Inside the
whole suite, on a shared two-core machine, the phases' own noise from other
processes exceeds 20%, so the short form asserts something coarser:"""
P99_FACTOR, P99_SLACK = 2.0, 0.050
"""within twice the typical p99 or 50 ms more, whichever is more. A client
that holds the others up (the defect: it was never closed) costs seconds."""


class FeedReaders:
    """The healthy clients, in a subprocess (see `tests.faults.feedclients`)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, count: int) -> FeedReaders:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faults.feedclients",
            url,
            str(count),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,  # one answer line holds every arrival of a phase
        )
        readers = cls(process)
        ready = await readers._answer(60)
        assert ready == {"ready": count}
        return readers

    async def collect(self, prefix: str, count: int) -> dict[str, list[float]]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"collect {prefix} {count}\n".encode())
        await self.process.stdin.drain()
        answer: dict[str, list[float]] = await self._answer(70)
        return answer

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def _answer(self, timeout: float) -> Any:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert line, "the feed readers' process ended"
        return msgspec.json.decode(line)


async def publish_phase(
    events: DomainEvents, tag: str, inbox_of: uuid.UUID, badges: list[str] | None = None
) -> dict[str, float]:
    """Publish a phase's load at a steady rate: posts, and a badge for `inbox_of` every other.

    Returns when each post was published; the badge ids go to `badges`.
    """
    sent_at: dict[str, float] = {}
    start = time.monotonic()
    for n in range(POSTS_PER_PHASE):
        await asyncio.sleep(max(0.0, start + n / POSTS_PER_SECOND - time.monotonic()))
        post_id = f"{tag}-{n}-{uuid.uuid4().hex[:6]}"
        sent_at[post_id] = time.monotonic()
        await events.post(post_id, CONTENT)
        if n % 2 == 0:
            badge_id = f"badge-{tag}-{n}-{uuid.uuid4().hex[:6]}"
            await events.badge(inbox_of, badge_id, BADGE_PADDING)
            if badges is not None:
                badges.append(badge_id)
    return sent_at


async def latencies(readers: FeedReaders, tag: str, sent_at: dict[str, float]) -> list[float]:
    arrivals = await readers.collect(tag, len(sent_at))
    assert arrivals.keys() == sent_at.keys()
    assert all(len(times) == HEALTHY for times in arrivals.values()), "a healthy client missed"
    return [t - sent_at[post_id] for post_id, times in arrivals.items() for t in times]


def allowed(baseline_phases: list[float]) -> float:
    """The most the median phase with a stalled client may take at its p99."""
    typical = median(baseline_phases)
    if LONG:
        return typical * P99_TARGET
    return max(typical * P99_FACTOR, typical + P99_SLACK)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def closes(code: int) -> float:
    return REGISTRY.get_sample_value("gateway_closes_total", {"code": str(code)}) or 0.0


@dataclasses.dataclass
class StalledRun:
    user: Any
    client: RawWsClient
    inbox_start: int
    badges: list[str]
    closed_after: float = 0.0


async def stall_one(
    server: Any, events: DomainEvents, tag: str
) -> tuple[StalledRun, dict[str, float]]:
    """A fresh client stops reading during one phase; wait for its 4008."""
    user = make_user()
    inbox = f"user:{user.id}"
    client = await RawWsClient.connect(server.url, user.token)
    await client.recv_until(lambda f: f.get("op") == "hello")
    await client.send({"op": "subscribe", "channel": "feed", "id": "feed"})
    await client.send({"op": "subscribe", "channel": inbox, "id": "inbox"})
    answer = await client.recv_until(lambda f: f.get("id") == "inbox")
    run = StalledRun(user, client, answer["seq"], [])
    # From here on it reads nothing.
    closed_before = closes(4008)
    start = time.monotonic()
    sent_at = await publish_phase(events, tag, user.id, run.badges)
    # A Prometheus counter has nothing to wait on: poll it.
    while closes(4008) == closed_before and time.monotonic() < start + CLOSE_BOUND + 10:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    run.closed_after = time.monotonic() - start
    return run, sent_at


async def recover(server: Any, run: StalledRun) -> tuple[Tally, int]:
    """Read what reached the stalled client, reconnect with `since`, count its inbox events."""
    inbox = f"user:{run.user.id}"
    await run.client.read_to_the_end()
    run.client.abort()
    before = run.client.events(inbox)
    since = before[-1]["seq"] if before else run.inbox_start
    after: list[dict[str, Any]] = []
    async with open_ws(server, run.user.token) as ws:
        answer = await ws.subscribe(inbox, since=since)
        assert answer["op"] == "subscribed"
        got = {f["data"]["id"] for f in before}
        deadline = time.monotonic() + 10
        while not set(run.badges) <= got and time.monotonic() < deadline:
            frames = [*ws.skipped, *await ws.drain(0.3)]
            ws.skipped.clear()
            after += [f for f in frames if f.get("op") == "event" and f["channel"] == inbox]
            got |= {f["data"]["id"] for f in after}
    return tally(run.badges, [*before, *after]), len(before)


async def test_a_stalled_client_is_closed_with_4008_and_slows_nobody(
    gateway_factory: Any, settings_for: Any, nats_client: Any
) -> None:
    server = await gateway_factory(config=CONFIG)
    events = DomainEvents(nats_client.jetstream(), settings_for("gateway"))
    readers = await FeedReaders.start(server.url, HEALTHY)
    baseline: list[float] = []
    with_stalled: list[float] = []
    baseline_phases: list[float] = []  # the p99 of each phase
    stalled_phases: list[float] = []
    runs: list[StalledRun] = []
    try:
        nobody = uuid.uuid4()  # the inbox events of phases without a stalled client
        warmup = await publish_phase(events, "warmup", nobody)
        await latencies(readers, "warmup", warmup)
        # Alternate phases without and with a stalled client. The machine is
        # shared: another process can slow any one phase, so each phase's p99
        # is compared through the median phase, and one more batch of rounds is
        # run when the first batch is inconclusive (a real slowdown shows in
        # every phase, noise in a few).
        for batch in range(BATCHES):
            for n in range(batch * ROUNDS, (batch + 1) * ROUNDS):
                for stalled in (False, True) if n % 2 == 0 else (True, False):
                    if stalled:
                        run, sent_at = await stall_one(server, events, f"stall{n}")
                        runs.append(run)
                        phase = await latencies(readers, f"stall{n}", sent_at)
                        with_stalled += phase
                        stalled_phases.append(p99(phase))
                    else:
                        sent_at = await publish_phase(events, f"base{n}", nobody)
                        phase = await latencies(readers, f"base{n}", sent_at)
                        baseline += phase
                        baseline_phases.append(p99(phase))
            if median(stalled_phases) <= allowed(baseline_phases):
                break
    finally:
        await readers.stop()
    total = Tally()
    before_close = 0
    for run in runs:
        result, before = await recover(server, run)
        total.add(result)
        before_close += before
    codes_seen = sorted({r.client.close.code if r.client.close else 0 for r in runs})
    base_p99, stalled_p99 = p99(baseline), p99(with_stalled)
    print(
        "\n"
        + fault_line(
            "slow_consumer",
            expected=total.expected,
            delivered=total.delivered,
            duplicated=total.duplicated,
            lost=total.lost,
            out_of_order=total.out_of_order,
            stalled_clients=len(runs),
            delivered_before_close=before_close,
            close_codes_seen=",".join(map(str, codes_seen)),
            closed_after_s="/".join(f"{r.closed_after:.1f}" for r in runs),
            close_bound_s=CLOSE_BOUND,
            healthy=HEALTHY,
            p99_baseline_ms=base_p99 * 1000,
            p99_with_stalled_ms=stalled_p99 * 1000,
            phases=len(stalled_phases),
            median_phase_p99_baseline_ms=median(baseline_phases) * 1000,
            median_phase_p99_with_stalled_ms=median(stalled_phases) * 1000,
            within_target=median(stalled_phases) <= median(baseline_phases) * P99_TARGET,
        )
    )
    for run in runs:
        assert run.closed_after <= CLOSE_BOUND, f"4008 after {run.closed_after:.1f}s"
    assert set(codes_seen) <= {0, 4008}  # when the close frame got through, it says 4008
    assert (total.lost, total.duplicated, total.out_of_order) == (0, 0, 0), total
    assert median(stalled_phases) <= allowed(baseline_phases), (
        baseline_phases,
        stalled_phases,
    )
