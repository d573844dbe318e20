"""Stopping background tasks, and waiting with a deadline, without losing a cancellation.

Two asyncio habits lose cancellations, and a lost cancellation is a process
that never finishes starting or stopping:

- On Python 3.11, `asyncio.wait_for(aw, timeout)` returns `aw`'s result when
  `aw` completes in the same loop turn as the waiting task is cancelled: the
  cancellation is dropped (3.12 rebuilt `wait_for` on `asyncio.timeout`). A
  loop that idles in `wait_for(event.wait(), poll)` and is woken just as it is
  cancelled carries on, and whoever awaits it waits forever.
- `task.cancel(); with suppress(CancelledError): await task` also swallows the
  cancellation of the caller: a `stop()` that is itself cancelled (a shutdown
  that gives up) returns as if it had finished.

`wait_set` waits for an event with `asyncio.timeout`, which keeps a
cancellation. `stop_tasks` cancels tasks and returns once they have ended,
cancelling again any task that dropped its cancellation; the caller's own
cancellation goes through at once. Everything that stops a background task
uses it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

RECANCEL_SECONDS = 1.0
"""How long a cancelled task may take to end before it is cancelled again."""


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True if it is set.

    A cancellation of the caller always propagates (unlike 3.11's `wait_for`)."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def stop_tasks(
    *tasks: asyncio.Task[Any] | None, recancel_every: float = RECANCEL_SECONDS
) -> None:
    """Cancel `tasks` and return once every one of them has ended.

    Guarantees: a task that drops its cancellation is cancelled again every
    `recancel_every` seconds until it ends; the tasks' own outcomes are not
    raised (an exception is logged); if the caller is cancelled meanwhile, its
    `CancelledError` propagates at once (the tasks, already cancelled, end on
    their own). `None` entries are skipped.
    """
    wanted = [t for t in tasks if t is not None]
    pending = {t for t in wanted if not t.done()}
    for task in pending:
        task.cancel()
    while pending:
        # asyncio.wait neither cancels the tasks when the caller is cancelled
        # nor confuses their cancellation with the caller's.
        _, pending = await asyncio.wait(pending, timeout=recancel_every)
        for task in pending:
            log.warning("task %s did not end when cancelled; cancelling it again", task.get_name())
            task.cancel()
    for task in wanted:
        if not task.cancelled() and task.exception() is not None:
            log.warning("task %s ended with an error", task.get_name(), exc_info=task.exception())
