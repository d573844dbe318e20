"""Presence at scale: connections joining and leaving across two gateway processes.

    uv run python bench/presence.py [--connections 10000] [--duration 60] [--guests 0.3]

Starts two gateway processes (their own NATS subject prefix and Redis key
prefix, the default 15 s grace) and, from `--workers` client processes, opens
`--connections` websocket connections spread over `--duration` seconds,
alternately on each instance: a `--guests` share of guests, the rest
signed-in users (one connection each). Each connection stays open for a
random 25 to 75 % of the duration (cut at its end), then closes. Meanwhile:

- one signed-in member subscribed to `presence` on each instance records every
  frame (when it came, its size, how many people it names);
- `GET /presence` is read from both instances every 250 ms; for each reading,
  how long before it Redis's `online` had already moved on from the value the
  instance showed (rebuilt from the change stream, to the millisecond) is how
  far that instance lagged, so the two agree within the larger of their lags
  (`guests` is read from Redis every second by design and not measured);
- the CPU time of both gateway processes (from /proc) over the whole run,
  divided by the number of joins and leaves.

At the end it waits until both instances report nobody online (the grace
after the last close) and prints everything as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

import httpx
from _harness import cpu_seconds, free_port, percentile, process, python, wait_ready
from community_shared.auth import issue_token
from community_shared.settings import DEFAULT_JWT_SECRET
from websockets.asyncio.client import connect

Schedule = list[tuple[float, float, str, str | None]]
"""(open at, close at, instance URL, token or None for a guest), seconds from the start."""


def make_schedule(args: argparse.Namespace, urls: list[str], secret: str) -> Schedule:
    rng = random.Random(7)
    schedule: Schedule = []
    for index in range(args.connections):
        opens = rng.uniform(0, args.duration)
        closes = min(args.duration, opens + rng.uniform(0.25, 0.75) * args.duration)
        token = None
        if rng.random() >= args.guests:
            token = issue_token(
                sub=uuid.uuid4(),
                role="student",
                name=f"Bench {index}",
                secret=secret,
                ttl_seconds=3600,
            )
        schedule.append((opens, closes, urls[index % len(urls)], token))
    return schedule


async def _hold(
    start: float, item: tuple[float, float, str, str | None], failures: list[str]
) -> None:
    opens, closes, url, token = item
    await asyncio.sleep(max(0.0, start + opens - time.time()))
    target = url if token is None else f"{url}?token={token}"
    try:
        async with connect(target, open_timeout=30, close_timeout=5, max_queue=None) as ws:
            await ws.recv()  # hello
            await asyncio.sleep(max(0.0, start + closes - time.time()))
    except Exception as exc:
        failures.append(type(exc).__name__)


def _worker(start: float, schedule: Schedule, out: Any) -> None:
    async def run() -> list[str]:
        failures: list[str] = []
        await asyncio.gather(*(_hold(start, item, failures) for item in schedule))
        return failures

    out.put(asyncio.run(run()))


async def watch_presence(
    url: str, token: str, frames: list[dict[str, Any]], stop: asyncio.Event
) -> None:
    async with connect(f"{url}?token={token}", max_queue=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "subscribe", "channel": "presence"}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            frame = json.loads(raw)
            if frame.get("op") == "presence":
                names = sum(len(frame.get(k, [])) for k in ("members", "joined", "left"))
                frames.append(
                    {
                        "at": time.time(),
                        "bytes": len(raw),
                        "names": names,
                        **{k: frame[k] for k in ("online", "guests")},
                    }
                )


Reading = tuple[float, tuple[int, int]]


async def online_history(redis_prefix: str) -> list[Reading]:
    """Every value `online` had in Redis and when (from the change stream, ms exact)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        entries = await client.xrange(f"{redis_prefix}gw:{{pres}}:changes")
    finally:
        await client.aclose()
    history: list[Reading] = [(0.0, (0, 0))]
    online = 0
    for entry_id, fields in entries:
        online += 1 if fields[b"k"] == b"j" else -1
        history.append((int(entry_id.split(b"-")[0]) / 1000, (online, 0)))
    return history


async def sample_instances(
    http_urls: list[str], readings: list[list[Reading]], stop: asyncio.Event
) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            for url, got in zip(http_urls, readings, strict=True):
                answer = (await http.get(f"{url}/presence")).json()
                got.append((time.time(), (answer["online"], answer["guests"])))
            await asyncio.sleep(0.25)


def lags(readings: list[Reading], truth: list[Reading], cap: float = 30.0) -> list[float]:
    """For each reading, how long before it Redis last held the `online` the instance showed
    (0 s when it still was the current value)."""
    out = []
    for at, value in readings:
        before = [(t, v[0]) for t, v in truth if t <= at]
        if before and before[-1][1] == value[0]:
            out.append(0.0)
            continue
        # The value was replaced at the first change after the last time it was held.
        held = [i for i, (_, v) in enumerate(before) if v == value[0]]
        replaced = before[held[-1] + 1][0] if held else at - cap
        out.append(min(cap, at - replaced))
    return out


async def measure(
    args: argparse.Namespace, ports: list[int], pids: dict[str, int]
) -> dict[str, Any]:
    urls = [f"ws://127.0.0.1:{p}/ws" for p in ports]
    http_urls = [f"http://127.0.0.1:{p}" for p in ports]
    schedule = make_schedule(args, urls, DEFAULT_JWT_SECRET)
    watcher = issue_token(
        sub=uuid.uuid4(),
        role="instructor",
        name="Watcher",
        secret=DEFAULT_JWT_SECRET,
        ttl_seconds=3600,
    )
    stop = asyncio.Event()
    frames: list[list[dict[str, Any]]] = [[], []]
    readings: list[list[Reading]] = [[], []]
    tasks = [
        asyncio.create_task(watch_presence(u, watcher, f, stop))
        for u, f in zip(urls, frames, strict=True)
    ]
    tasks.append(asyncio.create_task(sample_instances(http_urls, readings, stop)))
    await asyncio.sleep(3)
    cpu_before = cpu_seconds(pids, ("redis-server",))
    start = time.time() + 2
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(start, schedule[w :: args.workers], out))
        for w in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    failures: list[str] = []
    for _ in workers:
        failures += await asyncio.to_thread(out.get)
    for worker in workers:
        worker.join()
    last_close = start + max(c for _, c, _, _ in schedule)
    # Everyone closed: wait for the grace to end and both instances to say nobody is here.
    deadline = time.time() + 60
    settled_at = None
    while time.time() < deadline:
        latest = [got[-1] for got in readings if got]
        if len(latest) == 2 and all(at > last_close and v == (1, 0) for at, v in latest):
            settled_at = max(at for at, _ in latest)
            break
        await asyncio.sleep(0.25)
    cpu_after = cpu_seconds(pids, ("redis-server",))
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    changes = 2 * (len(schedule) - len(failures))
    gateway_cpu = sum(cpu_after[k] - cpu_before[k] for k in pids)
    end = settled_at or time.time()
    truth = await online_history(args.redis_prefix)
    lag = [v for got in readings for v in lags([r for r in got if start <= r[0] <= end], truth)]
    out_frames: dict[str, Any] = {}
    for name, got in zip(("a", "b"), frames, strict=True):
        live = [f for f in got[1:] if start <= f["at"]]
        gaps = [y["at"] - x["at"] for x, y in itertools.pairwise(got)]
        span = (settled_at or time.time()) - start
        out_frames[name] = {
            "frames": len(live),
            "frames_per_second": round(len(live) / span, 3) if span > 0 else None,
            "min_gap_s": round(min(gaps), 3) if gaps else None,
            "max_bytes": max((f["bytes"] for f in live), default=0),
            "max_names": max((f["names"] for f in live), default=0),
            "peak_online": max((f["online"] for f in live), default=0),
            "peak_guests": max((f["guests"] for f in live), default=0),
        }
    return {
        "connections": len(schedule),
        "failed_connections": len(failures),
        "guests_share": args.guests,
        "duration_s": args.duration,
        "workers": args.workers,
        "joins_and_leaves": changes,
        "gateway_cpu_s": round(gateway_cpu, 2),
        "gateway_cpu_ms_per_join_or_leave": round(1000 * gateway_cpu / changes, 3)
        if changes
        else None,
        "redis_cpu_s_all_clients": round(
            cpu_after.get("redis-server", 0) - cpu_before.get("redis-server", 0), 2
        ),
        "subscriber": out_frames,
        "online_lag_behind_redis_s": {
            "readings": len(lag),
            "p50": round(percentile(lag, 50), 3),
            "p99": round(percentile(lag, 99), 3),
            "max": round(max(lag, default=0.0), 3),
        },
        "empty_after_last_close_s": round(settled_at - last_close, 2) if settled_at else None,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--guests", type=float, default=0.3, help="share of guest connections")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    env = {
        "NATS_SUBJECT_PREFIX": f"bp{run}.",
        "REDIS_KEY_PREFIX": f"bp{run}:",
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": DEFAULT_JWT_SECRET,
    }
    ports = [free_port(), free_port()]
    gateway = [python(), "-m", "community_gateway.app"]
    with (
        process(gateway, {**env, "PORT": str(ports[0])}) as first,
        process(gateway, {**env, "PORT": str(ports[1])}) as second,
    ):
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}/ready")
        args.redis_prefix = env["REDIS_KEY_PREFIX"]
        pids = {"gateway_a": first.pid, "gateway_b": second.pid}
        result = asyncio.run(measure(args, ports, pids))
    print(json.dumps(result, indent=2))
    asyncio.run(cleanup(env))


async def cleanup(env: dict[str, str]) -> None:
    """Drop the run's streams and keys."""
    import nats
    import redis.asyncio as aioredis

    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    js = nc.jetstream()
    prefix = env["NATS_SUBJECT_PREFIX"].replace(".", "_")
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(prefix):
            await js.delete_stream(info.config.name)
    await nc.drain()
    client = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    async for key in client.scan_iter(match=f"{env['REDIS_KEY_PREFIX']}*", count=1000):
        await client.delete(key)
    await client.aclose()


if __name__ == "__main__":
    main()
