"""A rolling restart of two gateways with clients connected: no storm, nothing lost or doubled.

Two gateway processes on a private NATS; clients (in a process of their own)
know both URLs and follow `feed`; posts are published into `EVENTS` at a
steady rate throughout. Gateway A is stopped with SIGTERM (its clients get
1012 spread over `GATEWAY_DRAIN_SECONDS` and move to B, resubscribing with
`since`), started again, then B likewise. Measured: reconnections per second
(peak, in one-second windows, from the handshakes the gateways count in
`/metrics`, sampled every 0.2 s; the clients' own view is printed beside it),
the time each stop took, events lost and duplicates delivered to the
application (seq-deduplicated as the protocol says, then counted by post
id). The clients reconnect at once, with no delay of their own, so the peak
is the gateway's spreading alone.

Short form: 200 clients, a 3 s drain window. `FAULTS_LONG=1` (`./run faults`):
1,000 clients and the default 10 s window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
from community_shared.settings import Settings

from tests.faults.conftest import Deployment
from tests.faults.delivery import DomainEvents
from tests.faults.processes import Component, NatsProcess

LONG = os.environ.get("FAULTS_LONG") == "1"
CLIENTS = 1000 if LONG else 200
DRAIN_SECONDS = 10.0 if LONG else 3.0
MIN_RATE = 100.0 if LONG else 20.0
"""GATEWAY_DRAIN_MIN_RATE: low enough that the window sets the pace."""
RATE = 5.0 if LONG else 10.0
"""Posts per second into `EVENTS` (1,000 clients: 5,000 frames/s for the client process)."""
SETTLE = 1.0
"""Seconds of steady traffic before, between and after the restarts."""


PER_PROCESS = 250
"""Clients per client process: 1,000 clients take four, so they use every core."""


@contextlib.asynccontextmanager
async def followers(count: int, urls: list[str], logs: Path) -> AsyncIterator[list[Any]]:
    """The client processes (tests/faults/rollingclients.py), once every client is subscribed.

    Each process starts its clients on the gateways in turn from the first
    URL; an even number per process keeps the two gateways equally loaded.
    """
    sizes = [min(PER_PROCESS, count - start) for start in range(0, count, PER_PROCESS)]
    processes = []
    try:
        for i, size in enumerate(sizes):
            with (logs / f"followers-{i}.log").open("wb") as errors:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "tests.faults.rollingclients",
                        str(size),
                        *urls,
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=errors,
                        limit=64 * 1024 * 1024,
                    )
                )
        for i, (process, size) in enumerate(zip(processes, sizes, strict=True)):
            line = await asyncio.wait_for(process.stdout.readline(), 90)
            ready = msgspec.json.decode(line or b"{}").get("ready")
            log = logs / f"followers-{i}.log"
            assert ready == size, (await asyncio.to_thread(log.read_text))[-2000:]
        yield processes
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def check(processes: list[Any], expected: set[str], path: Path) -> dict[str, Any]:
    """Every client process's tally, added up."""
    await asyncio.to_thread(path.write_text, "\n".join(sorted(expected)))
    for process in processes:
        process.stdin.write(f"check {path}\n".encode())
        await process.stdin.drain()
    total: dict[str, Any] = {}
    for process in processes:
        line = await asyncio.wait_for(process.stdout.readline(), 150)
        for key, value in msgspec.json.decode(line).items():
            total[key] = total.get(key, 0 if isinstance(value, int) else []) + value
    total["reconnects"] = sorted(total["reconnects"])
    return total


def peak_per_second(instants: list[float]) -> int:
    """The most instants in any one-second window starting at one of them."""
    peak = 0
    start = 0
    for end, at in enumerate(instants):
        while instants[start] <= at - 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


async def publish_steadily(
    events: DomainEvents, published: dict[str, float], stop: asyncio.Event
) -> None:
    next_at = time.monotonic()
    while not stop.is_set():
        post_id = str(uuid.uuid4())
        published[post_id] = time.monotonic()
        await events.post(post_id)
        next_at += 1 / RATE
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def count_handshakes(
    gateways: list[Component], samples: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    """Every 0.2 s: (instant, handshakes accepted so far by all gateways), from /metrics.

    A restarted gateway's counter starts again from 0: only increases count.
    """
    last: dict[str, float] = {}
    total = 0
    async with httpx.AsyncClient(timeout=1.0) as http:
        while not stop.is_set():
            for gateway in gateways:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    text = (await http.get(gateway.base_url + "/metrics")).text
                    match = re.search(r"^gateway_connections_opened_total (\S+)$", text, re.M)
                    if match:
                        value = float(match.group(1))
                        total += int(max(0.0, value - last.get(gateway.name, value)))
                        last[gateway.name] = value
            samples.append((time.monotonic(), total))
            await asyncio.sleep(0.2)


def peak_from_samples(samples: list[tuple[float, int]]) -> int:
    """The most handshakes within any one second, from cumulative samples."""
    peak = 0
    start = 0
    for at, total in samples:
        while samples[start][0] < at - 1.0:
            start += 1
        peak = max(peak, total - samples[start][1])
    return peak


async def restart(gateway: Component) -> tuple[float, float]:
    """SIGTERM, wait for the exit, start again: (seconds to stop, seconds to ready).

    The gateway must exit by itself (code 0) within three windows and 30 s,
    or it is killed and the test fails; a busy machine stretches the drain,
    so the time itself is printed, not bounded more tightly.
    """
    began = time.monotonic()
    await gateway.stop(grace=3 * DRAIN_SECONDS + 30)
    stopped = time.monotonic()
    assert gateway.process is not None and gateway.process.returncode == 0, gateway.output()[-2000:]
    await gateway.start()
    await gateway.wait_ready()
    return stopped - began, time.monotonic() - stopped


async def test_rolling_restart_of_two_gateways_spreads_reconnects_and_loses_nothing(
    deployment: Deployment, nats_proc: NatsProcess, tmp_path: Path
) -> None:
    env = {
        "GATEWAY_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "GATEWAY_DRAIN_MIN_RATE": str(MIN_RATE),
        "LOG_LEVEL": "WARNING",
    }
    gateways = [await deployment.gateway("gateway-a", **env)]
    gateways.append(await deployment.gateway("gateway-b", **env))
    await asyncio.gather(*(g.wait_ready() for g in gateways))
    urls = [g.ws_url for g in gateways]
    nc = await nats.connect(nats_proc.url)
    settings = Settings(service="test", nats_subject_prefix=deployment.prefix)
    published: dict[str, float] = {}
    stop = asyncio.Event()
    timings: list[tuple[float, float]] = []
    async with followers(CLIENTS, urls, tmp_path) as clients:
        publisher = asyncio.create_task(
            publish_steadily(DomainEvents(nc.jetstream(), settings), published, stop)
        )
        samples: list[tuple[float, int]] = []
        counter = asyncio.create_task(count_handshakes(gateways, samples, stop))
        try:
            await asyncio.sleep(SETTLE)
            for gateway in gateways:
                timings.append(await restart(gateway))
                await asyncio.sleep(SETTLE)
        finally:
            stop.set()
            await publisher
            await counter
            await nc.close()
        result = await check(clients, set(published), tmp_path / "expected.txt")

    reconnects: list[float] = result["reconnects"]
    peak = peak_from_samples(samples)  # at the gateways
    peak_seen = peak_per_second(reconnects)  # by the clients (their own stalls bunch it)
    pace = max(CLIENTS / DRAIN_SECONDS, MIN_RATE)  # closes per second (drain.py)
    print(
        f"FAULT rolling-restart: clients={CLIENTS} gateways=2 drain={DRAIN_SECONDS:g}s "
        f"events={len(published)} reconnects={len(reconnects)} "
        f"peak_reconnects_per_s={peak} (as the clients saw them: {peak_seen}) "
        f"drain_pace={pace:.0f}/s "
        f"lost={result['lost']} app_duplicates={result['app_duplicates']} "
        f"wire_duplicates={result['wire_duplicates']} not_recovered={result['not_recovered']} "
        f"failed_attempts={result['failed_attempts']} "
        f"retried_subscribes={result['retried_subscribes']} "
        f"stop_s={'/'.join(f'{s:.1f}' for s, _ in timings)} "
        f"restart_to_ready_s={'/'.join(f'{r:.1f}' for _, r in timings)}"
    )
    assert (result["lost"], result["app_duplicates"], result["not_recovered"]) == (0, 0, 0)
    # Half the clients start on A and move to B; then all of them move off B.
    assert len(reconnects) >= CLIENTS // 2 + CLIENTS
    # Spread: at the drain pace, not all at once (without the window: every client
    # of the instance within a fraction of a second).
    # (Twice the pace leaves room for a stalled event loop on a loaded machine.)
    assert peak <= 2 * pace, f"{peak} reconnects in one second (pace {pace:.0f}/s)"
