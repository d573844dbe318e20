"""A pull from a durable JetStream consumer that waits once per batch, not once per message.

nats-py's `fetch` awaits every message of a batch through `next_msg`, which
starts two tasks and draws a uuid per message: at the router's rates that was
an eighth of its time. `Puller` asks the same consumer the same way (a pull
request on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` answered on an
inbox of its own) and reads the answers from the inbox's queue, waiting only
when the queue is empty, under one deadline for the whole batch.

A pull takes what JetStream holds now (`no_wait`); only when that is nothing
does it leave a request waiting for the next message, up to the timeout.
What that request brings after the pull returned stays in the queue and is
the head of the next pull, so nothing is left to the ack wait and the order
of the stream is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

STATUS = "Status"
HEARTBEAT = "100"
"""An idle heartbeat or flow control message: no answer to a pull, nothing to route."""
EXPIRES_MARGIN_SECONDS = 0.01
"""A waiting request expires this much before the pull gives up, so that none outlives it."""


class Puller:
    """Pulls batches of messages from one durable pull consumer."""

    def __init__(self, nc: NATS, api_prefix: str, stream: str, consumer: str) -> None:
        self.nc = nc
        self.next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.inbox = nc.new_inbox()
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        # No callback: the messages wait in the subscription's queue for `pull`.
        self._subscription = await self.nc.subscribe(self.inbox)

    async def stop(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def pull(self, batch: int, wait: float) -> list[Msg]:
        """Up to `batch` messages, in stream order; `TimeoutError` if none came within `wait` s."""
        subscription = self._subscription
        if subscription is None:
            raise RuntimeError("the puller is not started")
        queue: asyncio.Queue[Msg] = subscription._pending_queue
        messages = self._take_queued(subscription, queue, batch)
        if messages:
            return messages
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        await self._request({"batch": batch, "no_wait": True})
        async with asyncio.timeout_at(deadline):
            # What JetStream holds now, up to `batch`, then its "no messages" status
            # (none after a full batch).
            while len(messages) < batch:
                message = await self._next(subscription, queue)
                status = _status(message)
                if status is None:
                    messages.append(message)
                elif status != HEARTBEAT:
                    break
            if messages:
                return messages
            expires = deadline - loop.time() - EXPIRES_MARGIN_SECONDS
            if expires <= 0:
                raise TimeoutError
            # Nothing now: wait for the first message, then take what came with it.
            await self._request({"batch": batch, "expires": int(expires * 1e9)})
            while not messages:
                message = await self._next(subscription, queue)
                if _status(message) is None:
                    messages.append(message)
            messages.extend(self._take_queued(subscription, queue, batch - 1))
            return messages

    async def _request(self, request: dict[str, object]) -> None:
        await self.nc.publish(self.next_subject, json.dumps(request).encode(), reply=self.inbox)

    @staticmethod
    async def _next(subscription: Subscription, queue: asyncio.Queue[Msg]) -> Msg:
        message = queue.get_nowait() if not queue.empty() else await queue.get()
        subscription._pending_size -= len(message.data)
        queue.task_done()
        return message

    @staticmethod
    def _take_queued(subscription: Subscription, queue: asyncio.Queue[Msg], most: int) -> list[Msg]:
        """The messages already in the queue, up to `most` (earlier requests' answers dropped)."""
        messages: list[Msg] = []
        while len(messages) < most and not queue.empty():
            message = queue.get_nowait()
            subscription._pending_size -= len(message.data)
            queue.task_done()
            if _status(message) is None:
                messages.append(message)
        return messages


def _status(message: Msg) -> str | None:
    headers = message.headers
    return headers.get(STATUS) if headers else None
