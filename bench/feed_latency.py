"""Feed latency: from `POST /posts` returning to the `post.created` frame arriving.

    uv run python bench/feed_latency.py [--clients 1000] [--rate 10] [--duration 30]

In one run it measures two paths with the same listener harness (N websocket
clients in a separate process):

- full: posts service (HTTP → Postgres + outbox → relay → JetStream) → gateway
  (router → channel stream → fan-out) → N clients subscribed to `feed`;
- bare: a minimal relay that subscribes to a core NATS subject and
  `websockets.broadcast`s each message to the same N clients — the floor any
  NATS-to-websocket design pays on this machine.

Latency for the full path is measured from the moment the HTTP response to
`POST /posts` is received; for the bare path from the moment the publish was
flushed to NATS. Prints p50/p90/p99 for both and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import nats
from _harness import Listeners, free_port, latencies, process, python, summary, wait_ready
from community_shared.auth import issue_token
from community_shared.migrations import ensure_database
from community_shared.settings import DEFAULT_JWT_SECRET

MARKER = "bench:"


# ----------------------------------------------------------------- bare relay


async def _bare_relay(port: int, nats_url: str, subject: str, ready: Any) -> None:
    from websockets.asyncio.server import broadcast, serve

    async def handler(ws: Any) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", port, ping_interval=None) as server:
        nc = await nats.connect(nats_url)

        async def on_msg(msg: Any) -> None:
            broadcast(server.connections, msg.data.decode())

        await nc.subscribe(subject, cb=on_msg)
        ready.set()
        await asyncio.Future()


def _bare_relay_main(port: int, nats_url: str, subject: str, ready: Any) -> None:
    import uvloop

    uvloop.install()
    asyncio.run(_bare_relay(port, nats_url, subject, ready))


async def run_bare(args: argparse.Namespace, nats_url: str) -> dict[str, float]:
    subject = f"bench{uuid.uuid4().hex[:8]}.bare"
    port = free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    relay = ctx.Process(target=_bare_relay_main, args=(port, nats_url, subject, ready), daemon=True)
    relay.start()
    try:
        ready.wait(30)
        with Listeners(f"ws://127.0.0.1:{port}", args.clients, None, MARKER) as listeners:
            nc = await nats.connect(nats_url)
            sent: dict[str, float] = {}
            interval = 1 / args.rate
            start = time.perf_counter()
            for i in range(int(args.rate * args.duration)):
                await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
                marker_id = str(uuid.uuid4())
                frame = json.dumps(
                    {
                        "op": "event",
                        "channel": "feed",
                        "seq": i,
                        "type": "post.created",
                        "data": {"id": marker_id, "content": f"{MARKER}{marker_id}"},
                    }
                )
                await nc.publish(subject, frame.encode())
                await nc.flush()
                sent[marker_id] = time.time()
            await nc.close()
            arrivals = listeners.finish()
        result = summary(latencies(sent, arrivals))
        result["expected"] = len(sent) * args.clients
        return result
    finally:
        relay.kill()


# ----------------------------------------------------------------- full path


async def run_full(args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    posts_port, gateway_port = free_port(), free_port()
    with (
        process([python(), "-m", "community_posts.app"], {**env, "PORT": str(posts_port)}),
        process([python(), "-m", "community_gateway.app"], {**env, "PORT": str(gateway_port)}),
    ):
        wait_ready(f"http://127.0.0.1:{posts_port}/ready")
        wait_ready(f"http://127.0.0.1:{gateway_port}/ready")
        subscribe = {"op": "subscribe", "channel": "feed"}
        url = f"ws://127.0.0.1:{gateway_port}/ws"
        secret = env["JWT_SECRET"]
        total = int(args.rate * args.duration)
        # One author per post: the per-user rate limit allows 10 posts an hour.
        tokens = [
            issue_token(sub=uuid.uuid4(), role="student", name=f"Bench {i}", secret=secret)
            for i in range(total + 5)
        ]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{posts_port}") as client:
            for token in tokens[total:]:  # warm-up: connections, caches, JIT-free but still
                await client.post(
                    "/posts",
                    json={"content": "warm-up"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            with Listeners(url, args.clients, subscribe, MARKER) as listeners:
                sent: dict[str, float] = {}
                interval = 1 / args.rate
                start = time.perf_counter()
                for i in range(total):
                    await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
                    marker_id = str(uuid.uuid4())
                    response = await client.post(
                        "/posts",
                        json={"content": f"{MARKER}{marker_id}"},
                        headers={"Authorization": f"Bearer {tokens[i]}"},
                    )
                    if response.status_code != 201:
                        raise RuntimeError(f"POST /posts: {response.status_code} {response.text}")
                    sent[marker_id] = time.time()
                arrivals = listeners.finish()
        result = summary(latencies(sent, arrivals))
        result["expected"] = len(sent) * args.clients
        return result


def _print(name: str, result: dict[str, float]) -> None:
    print(
        f"{name:>5}: frames {int(result['n'])}/{int(result['expected'])}  "
        f"p50 {result['p50']:.1f} ms  p90 {result['p90']:.1f} ms  "
        f"p99 {result['p99']:.1f} ms  max {result['max']:.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="posts per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--only", choices=["full", "bare"], default=None)
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/community")
    database_url = admin.rsplit("/", 1)[0] + f"/bench_feed_{run_id}"
    nats_url = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    env = {
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "JWT_SECRET": os.environ.get("JWT_SECRET", DEFAULT_JWT_SECRET),
        "NATS_SUBJECT_PREFIX": f"bench{run_id}.",
        "REDIS_KEY_PREFIX": f"bench{run_id}:",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
    }
    await ensure_database(database_url)
    print(f"{args.clients} clients on feed, {args.rate:g} posts/s for {args.duration:g} s")
    results: dict[str, dict[str, float]] = {}
    if args.only in (None, "bare"):
        results["bare"] = await run_bare(args, nats_url)
        _print("bare", results["bare"])
    if args.only in (None, "full"):
        results["full"] = await run_full(args, env)
        _print("full", results["full"])
    if len(results) == 2:
        print(
            f"ratio full/bare: p50 {results['full']['p50'] / results['bare']['p50']:.2f}x  "
            f"p99 {results['full']['p99'] / results['bare']['p99']:.2f}x"
        )
    # Clean up the bench database and streams.
    import asyncpg

    conn = await asyncpg.connect(admin.rsplit("/", 1)[0] + "/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "bench_feed_{run_id}" WITH (FORCE)')
    await conn.close()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(f"bench{run_id}"):
            await js.delete_stream(info.config.name)
    await nc.close()


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
