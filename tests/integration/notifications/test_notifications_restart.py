"""Stop the notifications service while 200 events are pending and start it again: each
event reaches each subscription once (counted at the local push service).

The service runs as a real process on a copy of the system of its own (database, NATS
prefix, Redis prefix); the events are appended to the gateway's inbox stream as its router
does. Two ways to stop:

- SIGTERM (an orderly stop, a deployment): the pushes in flight finish and are recorded;
  every push arrives exactly once.
- SIGKILL: a push whose request was on the wire when the process died cannot be known to
  have arrived; it is never sent again (at most once) and is recorded `unknown`. Every
  other push arrives exactly once, none twice.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from community_gateway.config import GatewayConfig
from community_gateway.store import ChannelStore

from tests.conftest import make_user
from tests.faults.isolated import IsolatedDeployment, isolated_deployment, started
from tests.integration.notifications.conftest import consumer_exists, publish_inbox_event
from tests.pushservice import PushService

EVENTS = 200
SUBSCRIPTIONS = 2


@pytest.fixture
async def own(infra: Any) -> AsyncIterator[IsolatedDeployment]:
    async for made in isolated_deployment(infra):
        yield made


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_restart_with_200_pending_events_pushes_each_once(
    how: signal.Signals, own: IsolatedDeployment, infra: Any, tmp_path: Path
) -> None:
    pushes = PushService().start()
    pushes.delay = 0.005
    settings = own.settings("gateway")
    nc = await nats.connect(infra.nats_url)
    js = nc.jetstream()
    await ChannelStore(js, settings, GatewayConfig()).ensure_streams()
    service = own.component(
        "notifications",
        tmp_path,
        PUSH_ALLOW_INSECURE_ENDPOINTS="1",
        NOTIFICATIONS_POLL_SECONDS="0.2",
        NOTIFICATIONS_SENDERS="8",
        NOTIFICATIONS_PUSH_TIMEOUT_SECONDS="2",
        NOTIFICATIONS_LEASE_SECONDS="3",
    )
    try:
        await started(service)
        await consumer_exists(
            js, f"{settings.stream_name('INBOX')}", settings.stream_name("notifications_inbox")
        )
        student = make_user("student")
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            key = (await http.get("/notifications/vapid-public-key")).json()["public_key"]
            browsers = [pushes.new_subscription(key) for _ in range(SUBSCRIPTIONS)]
            for browser in browsers:
                answer = await http.post(
                    "/notifications/push-subscriptions",
                    json=browser.as_json(),
                    headers=student.headers,
                )
                assert answer.status_code == 201, answer.text

        began = time.monotonic()
        for n in range(EVENTS):
            await publish_inbox_event(js, settings, student.id, "badge.awarded", {"n": n})
        print(f"published in {time.monotonic() - began:.2f} s")
        # Stop it mid-way: some pushes made, most still pending (recorded or not yet read).
        deadline = time.monotonic() + 20
        while len(pushes.deliveries) < 40:
            assert time.monotonic() < deadline, "no pushes before the stop"
            await asyncio.sleep(0.01)
        print(f"40 pushes {time.monotonic() - began:.2f} s after the first event")
        # The push service slows down as the stop begins, so that most pushes are still
        # pending when the process goes, however fast this machine sends them (an orderly
        # stop takes a second or more, in which 400 quick pushes could all be made).
        pushes.delay = 0.5
        if how is signal.SIGKILL:
            await service.kill()
        else:
            await service.stop()
        print(f"stopped {time.monotonic() - began:.2f} s after the first event")
        at_stop = len(pushes.deliveries)
        pushes.delay = 0.005
        restarted = time.monotonic()
        await started(service)

        expected = EVENTS * SUBSCRIPTIONS
        unknown = 0
        db = await asyncpg.connect(own.database_url)
        try:
            # Generous: a restart on a machine shared with other test runs can take 15 s.
            deadline = time.monotonic() + 60
            while True:
                unknown = await db.fetchval(
                    "SELECT count(*) FROM notifications.deliveries WHERE state = 'unknown'"
                )
                pending = await db.fetchval(
                    "SELECT count(*) FROM notifications.deliveries"
                    " WHERE state IN ('pending', 'sending')"
                )
                if len(pushes.deliveries) + unknown >= expected and pending == 0:
                    break
                assert time.monotonic() < deadline, (len(pushes.deliveries), unknown, pending)
                await asyncio.sleep(0.1)
        finally:
            await db.close()
        settled = time.monotonic() - restarted
        await asyncio.sleep(0.5)  # anything sent twice would arrive now

        counts = collections.Counter((d.token, d.payload["data"]["n"]) for d in pushes.deliveries)
        print(
            f"restart ({how.name}): pushes before the stop {at_stop}, after all"
            f" {len(pushes.deliveries)} of {expected}, unknown {unknown},"
            f" all settled {settled:.1f} s after the restart"
        )
        assert max(counts.values()) == 1, "a push arrived twice"
        assert pushes.refused == []
        assert at_stop < expected
        if how is signal.SIGTERM:
            assert unknown == 0
            assert len(counts) == expected
        else:
            # Only what was on the wire when the process died is in doubt (at most one per
            # sender): it may or may not have arrived, and is not sent again.
            assert unknown <= 8
            assert len(counts) >= expected - unknown
    finally:
        await service.stop()
        await nc.drain()
        pushes.stop()
