"""Web Push latency: an event in a user's inbox stream → the push decrypted at a push service.

The full path is the real one from the point the gateway's router has written the channel
event: the notifications service (a separate process) reads it from the `INBOX` stream,
looks up the recipient's subscriptions and preferences in Postgres, asks Redis whether the
user has a foreground connection, records one pending push per subscription, claims it,
encrypts it (RFC 8291) and POSTs it with VAPID (RFC 8292) to a local push service, which
verifies the JWT and decrypts the body (`tests/pushservice.py`, in this process).

The floor, in the same run: the same number of messages, at the same rate, sent straight
from this process with the service's own sender (encryption and VAPID included) to the same
push service — what one push costs on this machine without the service around it.

    uv run python bench/notifications_push.py     # --events 500 --rate 50 --subscriptions 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import nats  # noqa: E402
from _harness import free_port, process, python, summary, wait_ready  # noqa: E402
from community_gateway.config import GatewayConfig  # noqa: E402
from community_gateway.store import ChannelStore  # noqa: E402
from community_notifications.webpush import (  # noqa: E402
    PushSender,
    Subscription,
    VapidSigner,
    generate_private_key,
    load_private_key,
    public_key_b64,
)
from community_shared.auth import issue_token  # noqa: E402
from community_shared.channelstreams import (  # noqa: E402
    ChannelEvent,
    encode_channel_message,
    format_ts,
)
from community_shared.migrations import ensure_database  # noqa: E402
from community_shared.settings import DEFAULT_JWT_SECRET, Settings  # noqa: E402

from tests.pushservice import PushService  # noqa: E402


async def full_path(
    args: argparse.Namespace, pushes: PushService, env: dict[str, str]
) -> dict[str, Any]:
    settings = Settings.from_env(
        "gateway",
        0,
        nats_subject_prefix=env["NATS_SUBJECT_PREFIX"],
        redis_key_prefix=env["REDIS_KEY_PREFIX"],
    )
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await ChannelStore(js, settings, GatewayConfig()).ensure_streams()
    port = free_port()
    with process([python(), "-m", "community_notifications.app"], {**env, "PORT": str(port)}):
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_ready, f"{base}/ready")
        user = uuid.uuid4()
        token = issue_token(
            sub=user, role="student", name="Bench", secret=DEFAULT_JWT_SECRET, ttl_seconds=3600
        )
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            key = (await http.get("/notifications/vapid-public-key")).json()["public_key"]
            browsers = [pushes.new_subscription(key) for _ in range(args.subscriptions)]
            for browser in browsers:
                answer = await http.post(
                    "/notifications/push-subscriptions",
                    json=browser.as_json(),
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert answer.status_code == 201, answer.text
        # The consumer reads what comes after it exists.
        durable = settings.stream_name("notifications_inbox")
        while True:
            try:
                await js.consumer_info(settings.stream_name("INBOX"), durable)
                break
            except Exception:
                await asyncio.sleep(0.2)
        sent: dict[int, float] = {}
        channel = f"user:{user}"
        began = time.time()
        for n in range(args.events):
            payload = encode_channel_message(
                ChannelEvent(channel=channel, type="badge.awarded", data={"n": n}),
                format_ts(dt.datetime.now(dt.UTC)),
            )
            sent[n] = time.time()
            await js.publish(
                settings.subject(f"inbox.{user}"),
                payload,
                headers={"Nats-Msg-Id": f"{uuid.uuid4()}:{channel}:badge.awarded"},
            )
            await asyncio.sleep(max(0.0, began + (n + 1) / args.rate - time.time()))
        expected = args.events * args.subscriptions
        deadline = time.time() + 60
        while sum(pushes.count(b) for b in browsers) < expected and time.time() < deadline:
            await asyncio.sleep(0.1)
        tokens = {b.token for b in browsers}
        latencies = [
            (d.at - sent[d.payload["data"]["n"]]) * 1000
            for d in pushes.deliveries
            if d.token in tokens
        ]
    await nc.drain()
    return {"path": "full", "expected": expected, **summary(latencies)}


async def floor(args: argparse.Namespace, pushes: PushService) -> dict[str, Any]:
    key = load_private_key(generate_private_key())
    sender = PushSender(VapidSigner(key, "mailto:bench@example.com"))
    browsers = [pushes.new_subscription(public_key_b64(key)) for _ in range(args.subscriptions)]
    targets = [Subscription(b.endpoint, b.p256dh, b.as_json()["keys"]["auth"]) for b in browsers]
    start = len(pushes.deliveries)
    sent: dict[int, float] = {}
    tasks = []
    began = time.time()
    for n in range(args.events):
        body = json.dumps({"type": "badge.awarded", "data": {"n": n}}).encode()
        sent[n] = time.time()
        for target in targets:
            tasks.append(
                asyncio.create_task(sender.send(target, body, ttl=86400, urgency="normal"))
            )
        await asyncio.sleep(max(0.0, began + (n + 1) / args.rate - time.time()))
    await asyncio.gather(*tasks)
    await sender.aclose()
    latencies = [(d.at - sent[d.payload["data"]["n"]]) * 1000 for d in pushes.deliveries[start:]]
    return {"path": "floor", "expected": args.events * args.subscriptions, **summary(latencies)}


async def main_async(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/community")
    database_url = f"{admin.rpartition('/')[0]}/bench_notify_{run}"
    await ensure_database(database_url)
    env = {
        "DATABASE_URL": database_url,
        "NATS_SUBJECT_PREFIX": f"bn{run}.",
        "REDIS_KEY_PREFIX": f"bn{run}:",
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": DEFAULT_JWT_SECRET,
        "PUSH_ALLOW_INSECURE_ENDPOINTS": "1",
        "NOTIFICATIONS_POLL_SECONDS": "0.5",
    }
    pushes = PushService().start()
    try:
        results = [await floor(args, pushes), await full_path(args, pushes, env)]
    finally:
        pushes.stop()
        await cleanup(env, database_url)
    for result in results:
        print(
            json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()})
        )


async def cleanup(env: dict[str, str], database_url: str) -> None:
    import asyncpg

    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    js = nc.jetstream()
    prefix = env["NATS_SUBJECT_PREFIX"].replace(".", "_")
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(prefix):
            await js.delete_stream(info.config.name)
    await nc.drain()
    base, _, name = database_url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--subscriptions", type=int, default=2)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
