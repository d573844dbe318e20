"""The router's pull (`community_gateway.pull.Puller`) against a real JetStream consumer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from community_gateway.pull import Puller
from nats.js.api import AckPolicy, ConsumerConfig

from tests.integration.gateway.conftest import own_prefix, stream

WAIT = 1.0


@dataclass
class Consumer:
    js: Any
    stream: str
    subject: str
    puller: Puller


@pytest.fixture
async def consumer(nats_client: Any) -> AsyncIterator[Consumer]:
    """A stream of its own with one durable pull consumer, and a started puller on it."""
    prefix = own_prefix("pl")
    name = stream(prefix, "PULL")
    js = nats_client.jetstream()
    await js.add_stream(name=name, subjects=[f"{prefix}pull.>"])
    await js.add_consumer(
        name, ConsumerConfig(durable_name="router", ack_policy=AckPolicy.EXPLICIT)
    )
    puller = Puller(nats_client, js._prefix, name, "router")
    await puller.start()
    yield Consumer(js, name, f"{prefix}pull.x", puller)
    await puller.stop()
    await js.delete_stream(name)


async def publish(js: Any, subject: str, bodies: range) -> None:
    for body in bodies:
        await js.publish(subject, str(body).encode())


def bodies(messages: list[Any]) -> list[int]:
    return [int(message.data) for message in messages]


async def test_a_pull_takes_what_is_there_in_order_up_to_the_batch(consumer: Consumer) -> None:
    js, subject, puller = consumer.js, consumer.subject, consumer.puller
    await publish(js, subject, range(250))
    got: list[int] = []
    sizes = []
    while len(got) < 250:
        messages = await puller.pull(100, wait=WAIT)
        sizes.append(len(messages))
        got += bodies(messages)
        for message in messages:
            await message.ack()
    assert got == list(range(250))
    assert max(sizes) == 100
    assert sizes[:2] == [100, 100]


async def test_an_empty_consumer_times_out_after_the_wait_and_leaves_no_request_behind(
    consumer: Consumer,
) -> None:
    js, subject, puller = consumer.js, consumer.subject, consumer.puller
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await puller.pull(100, wait=WAIT)
    waited = time.monotonic() - started
    assert WAIT * 0.9 <= waited < WAIT + 1.0
    # The expired request took nothing: a message published now is in the next pull.
    await publish(js, subject, range(1))
    assert bodies(await puller.pull(100, wait=WAIT)) == [0]


async def test_a_message_published_while_a_pull_waits_is_returned_at_once(
    consumer: Consumer,
) -> None:
    js, subject, puller = consumer.js, consumer.subject, consumer.puller
    pulled = asyncio.create_task(puller.pull(100, wait=5.0))
    await asyncio.sleep(0.3)
    sent = time.monotonic()
    await publish(js, subject, range(1))
    messages = await pulled
    assert bodies(messages) == [0]
    assert time.monotonic() - sent < 1.0  # not the 5 s wait


async def test_what_a_waiting_request_brings_later_is_the_head_of_the_next_pull(
    consumer: Consumer,
) -> None:
    """The request left waiting asked for a batch; after its first message it may bring
    more. Those are delivered to the puller, so the next pull returns them, in order."""
    js, subject, puller = consumer.js, consumer.subject, consumer.puller
    pulled = asyncio.create_task(puller.pull(100, wait=5.0))
    await asyncio.sleep(0.3)
    await publish(js, subject, range(1))
    got = bodies(await pulled)
    await publish(js, subject, range(1, 30))
    while len(got) < 30:
        got += bodies(await puller.pull(100, wait=WAIT))
    assert got == list(range(30))
    info = await js.consumer_info(consumer.stream, "router")
    assert info.num_pending == 0
    assert info.num_ack_pending == 30  # each delivered once, none left unpulled
