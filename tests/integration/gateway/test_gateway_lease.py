"""The router lease against a real JetStream: exclusive, taken over in time, self-repairing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from community_gateway.lease import Lease
from community_shared.settings import Settings

from tests.conftest import RUN_ID

TTL = 2.0  # renewals time out after TTL / 5: room for a loaded machine


async def two_leases(
    settings_for: Callable[..., Settings], nats_client: Any
) -> tuple[Lease, Lease]:
    settings = settings_for("gateway", nats_subject_prefix=f"{RUN_ID}.ls{uuid.uuid4().hex[:6]}.")
    js = nats_client.jetstream()
    first, second = (Lease(js, settings, TTL, uuid.uuid4().hex) for _ in range(2))
    await first.ensure_stream()
    return first, second


async def test_one_holder_at_a_time_and_takeover_after_expiry(
    settings_for: Callable[..., Settings], nats_client: Any
) -> None:
    first, second = await two_leases(settings_for, nats_client)
    assert await first.try_hold()
    assert not await second.try_hold()
    assert await first.try_hold()  # renewal
    last_renewal = time.monotonic()
    # The holder stops renewing (it died): the other gets the lease once it aged out.
    while not await second.try_hold():
        assert time.monotonic() - last_renewal < TTL + 1.0, "no takeover"
        await asyncio.sleep(second.renew_every)
    waited = time.monotonic() - last_renewal
    assert waited >= TTL * 0.9
    assert not await first.try_hold()
    assert not first.fresh(time.monotonic())


async def test_a_lost_acknowledgement_is_adopted(
    settings_for: Callable[..., Settings], nats_client: Any
) -> None:
    first, second = await two_leases(settings_for, nats_client)
    assert await first.try_hold()
    written = first.seq
    first.seq = None  # as if the acknowledgement of that write had timed out
    assert await first.try_hold()
    assert first.seq is not None and written is not None and first.seq > written
    assert not await second.try_hold()


async def test_a_released_lease_is_free_at_once(
    settings_for: Callable[..., Settings], nats_client: Any
) -> None:
    first, second = await two_leases(settings_for, nats_client)
    assert await first.try_hold()
    await first.release()
    assert await second.try_hold()


async def test_a_deleted_lease_stream_is_created_again(
    settings_for: Callable[..., Settings], nats_client: Any
) -> None:
    first, second = await two_leases(settings_for, nats_client)
    assert await first.try_hold()
    await nats_client.jetstream().delete_stream(first.stream)
    assert await first.try_hold()
    assert not await second.try_hold()
