"""Stopping tasks and waiting on events keep every cancellation (community_shared.tasks)."""

from __future__ import annotations

import asyncio

from community_shared.tasks import stop_tasks, wait_set


async def test_stop_tasks_cancels_again_a_task_that_dropped_its_cancellation() -> None:
    dropped = 0

    async def stubborn() -> None:
        nonlocal dropped
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if dropped == 0:  # what 3.11's wait_for does in a race
                    dropped += 1
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await stop_tasks(task, recancel_every=0.05)
    assert task.cancelled() and dropped == 1


async def test_a_cancelled_stop_tasks_propagates_and_the_task_still_ends() -> None:
    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.1)  # clean-up after the cancellation

    task = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop_tasks(task))
    await asyncio.sleep(0)
    stopper.cancel()
    await asyncio.wait({stopper}, timeout=5)
    assert stopper.cancelled()
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled()


async def test_wait_set_keeps_a_cancellation_that_races_the_event() -> None:
    event = asyncio.Event()
    waiter = asyncio.create_task(wait_set(event, 30))
    await asyncio.sleep(0)
    event.set()
    waiter.cancel()  # in the same loop turn as the wake-up
    await asyncio.wait({waiter}, timeout=5)
    assert waiter.cancelled()


async def test_wait_set_answers_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 0.01) is True
