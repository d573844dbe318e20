"""Presence for one gateway instance: registers its connections, keeps a view, sends frames.

The shared state lives in Redis (`presence_store`); the rules in
`presence_rules`. This module runs the instance's part:

- **writer**: connection opens and closes are queued (never awaited by the
  connection) and written in order, many per round trip. After a Redis error,
  or when this instance's heartbeat had lapsed (a stall long enough for others
  to reap it), the next write is a full resynchronisation of this instance's
  connections instead, so Redis ends up exact again without a restart.
- **upkeep** (every third of the heartbeat TTL): refresh the heartbeat, reap
  instances whose heartbeat expired, end graces that ran out, read the guest
  count.
- **tail**: follows the change stream (polled) into the local `PresenceView`; a full
  snapshot is re-read on start, after an error and every
  `RESNAPSHOT_SECONDS` (a stream trimmed past us, or Redis that lost it).
- **frames** (every `TICK_SECONDS`): `PresenceBoard.due_frames`, pushed to
  the local subscribers.

Nothing another instance needs is held only here: the view and the guest
count are copies of Redis, the local connection registry is re-sent to Redis
whenever Redis may have lost it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import redis.asyncio as aioredis
from community_shared.auth import Identity
from community_shared.settings import Settings

from community_gateway.presence_rules import (
    Member,
    PresenceBoard,
    PresenceView,
    may_see_names,
)
from community_gateway.presence_store import PresenceStore

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
"""How often due frames are looked for (still at most one frame per subscriber per interval)."""
POLL_SECONDS = 0.2
"""Pause between two reads of the change stream that found nothing new.

Polling rather than a blocking XREAD: a cancelled blocking read in redis-py's
asyncio client can stay stuck until its socket gives up, which held up
`stop()`; five cheap reads a second per instance cost nothing."""
RESNAPSHOT_SECONDS = 30.0
RETRY_SECONDS = 0.5
STOP_SECONDS = 2.0

Push = Callable[[bytes], Any]


class _Trouble:
    """Logs the first failure of a run and the recovery, not every retry (Redis down)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = False

    def failed(self, exc: Exception) -> None:
        if not self.failing:
            log.warning("presence: %s failed (%s); retrying", self.what, exc)
            self.failing = True

    def cleared(self) -> None:
        if self.failing:
            log.info("presence: %s works again", self.what)
            self.failing = False


class PresenceService:
    """`start()`, then `opened`/`closed` per connection, `watch`/`unwatch`, `set_visible`."""

    def __init__(
        self,
        settings: Settings,
        instance: str,
        *,
        grace_seconds: float,
        heartbeat_seconds: float,
        interval_seconds: float,
        max_members: int,
    ) -> None:
        # Its own client, so that presence traffic (a pipeline of many scripts
        # at a time) never waits behind the gateway's other Redis calls.
        self.redis = aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            decode_responses=False,
        )
        self.store = PresenceStore(
            self.redis,
            settings,
            instance,
            grace_seconds=grace_seconds,
            heartbeat_seconds=heartbeat_seconds,
        )
        self.heartbeat_seconds = heartbeat_seconds
        self.view = PresenceView()
        self.board: PresenceBoard[Hashable] = PresenceBoard(
            self.view, interval=interval_seconds, max_members=max_members
        )
        self.synced = asyncio.Event()
        """Set once the view holds a snapshot (GET /presence and subscriptions wait for it)."""
        self._users: Counter[str] = Counter()
        self._profiles: dict[str, Member] = {}
        self._guests = 0
        self._pending: list[tuple[bool, Member | None]] = []
        self._foreground: Counter[str] = Counter()
        """user id → their connections here in `foreground` mode (what push delivery asks)."""
        self._foreground_changed: set[str] = set()
        self._dirty = True  # the first write registers this instance
        self._wakeup = asyncio.Event()
        self._subscribers: dict[Hashable, tuple[Push, Callable[[], Identity]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._resnapshot = True
        self._last = "0-0"
        self._reading = asyncio.Lock()
        self._written = asyncio.Event()

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        for job in (self._write_loop, self._upkeep_loop, self._tail_loop, self._frame_loop):
            self._tasks.append(asyncio.create_task(job(), name=f"presence-{job.__name__}"))

    async def stop(self) -> None:
        """Flush pending writes, retire this instance (its users' grace starts), stop."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), STOP_SECONDS)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a Redis call being cancelled must not hold up the instance's stop.
            await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.store.retire(), STOP_SECONDS)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    # -- connections --------------------------------------------------------------

    def opened(self, identity: Identity) -> None:
        """A connection opened, in `foreground` mode (never blocks; written to Redis soon after)."""
        member = None if identity.user_id is None else Member.of(identity)
        if member is None:
            self._guests += 1
        else:
            self._users[member.user_id] += 1
            self._profiles[member.user_id] = member
            self._count_foreground(member.user_id, +1)
        self._queue(True, member)

    def closed(self, identity: Identity, *, foreground: bool = True) -> None:
        """The connection `opened` with this identity closed, last in mode `foreground` or not."""
        member = None if identity.user_id is None else Member.of(identity)
        if member is None:
            self._guests = max(0, self._guests - 1)
        else:
            self._users[member.user_id] -= 1
            if self._users[member.user_id] <= 0:
                del self._users[member.user_id]
                self._profiles.pop(member.user_id, None)
            if foreground:
                self._count_foreground(member.user_id, -1)
        self._queue(False, member)

    def mode_changed(self, identity: Identity, *, foreground: bool) -> None:
        """A signed-in connection switched between `foreground` and `background` mode."""
        if identity.user_id is not None:
            self._count_foreground(str(identity.user_id), +1 if foreground else -1)
            self._written.clear()
            self._wakeup.set()

    def _count_foreground(self, user_id: str, delta: int) -> None:
        self._foreground[user_id] += delta
        if self._foreground[user_id] <= 0:
            del self._foreground[user_id]
        self._foreground_changed.add(user_id)

    def _queue(self, opened: bool, member: Member | None) -> None:
        self._pending.append((opened, member))
        self._written.clear()
        self._wakeup.set()

    async def _write_loop(self) -> None:
        trouble = _Trouble("writing connections (resynchronising after)")
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._flush()
                trouble.cleared()
                if not self._pending and not self._foreground_changed:
                    self._written.set()
            except Exception as exc:
                trouble.failed(exc)
                self._dirty = True
                await asyncio.sleep(RETRY_SECONDS)
                self._wakeup.set()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        changed, self._foreground_changed = self._foreground_changed, set()
        if self._dirty:
            # The registry already holds every queued change: one exact resync covers them.
            users = {u: (n, self._profiles[u]) for u, n in self._users.items()}
            await self.store.resync(users, self._guests)
            await self.store.write_foreground(dict(self._foreground), replace=True)
            self._dirty = False
            return
        try:
            if batch:
                await self.store.apply_connection_changes(batch)
            if changed:
                counts = {user: self._foreground.get(user, 0) for user in changed}
                await self.store.write_foreground(counts, replace=False)
        except Exception:
            self._dirty = True
            raise

    # -- upkeep ---------------------------------------------------------------------

    async def _upkeep_loop(self) -> None:
        period = max(0.2, self.heartbeat_seconds / 3)
        trouble = _Trouble("upkeep")
        while True:
            try:
                if not self._dirty and not await self.store.beat():
                    log.warning("presence: this instance's heartbeat had lapsed; resynchronising")
                    self._dirty = True
                    self._wakeup.set()
                await self.store.reap_dead()
                await self.store.expire_leaves()
                self.board.guests = await self.store.guest_count()
                trouble.cleared()
            except Exception as exc:
                trouble.failed(exc)
                self._dirty = True
                self._wakeup.set()
            await asyncio.sleep(min(period, 1.0))

    # -- the view -------------------------------------------------------------------

    async def _tail_loop(self) -> None:
        snapshot_at = 0.0
        trouble = _Trouble("reading the change stream (resnapshot after)")
        while True:
            try:
                if self._resnapshot or time.monotonic() - snapshot_at > RESNAPSHOT_SECONDS:
                    async with self._reading:
                        members, self._last, guests = await self.store.snapshot()
                        self.view.replace(members)
                    self.board.guests = guests
                    snapshot_at = time.monotonic()
                    self._resnapshot = False
                    self.synced.set()
                found = await self._read_changes()
                trouble.cleared()
                if not found:
                    await asyncio.sleep(POLL_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                trouble.failed(exc)
                self._resnapshot = True
                await asyncio.sleep(RETRY_SECONDS)

    async def _read_changes(self) -> int:
        async with self._reading:
            changes, self._last = await self.store.read_changes(self._last)
            for user_id, member in changes:
                self.view.apply(user_id, member)
        return len(changes)

    async def catch_up(self, within: float = 1.0) -> None:
        """Bring the view up to date with this instance's own pending opens and closes.

        A new subscriber's snapshot should include the connection it came on:
        wait (bounded) until the pending writes are in Redis, then read the
        change stream once. Errors are left to the tail loop.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._written.wait(), within)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._read_changes(), within)

    # -- subscribers ------------------------------------------------------------------

    def watch(self, key: Hashable, push: Push, identity: Callable[[], Identity]) -> bytes:
        """Add a subscriber; returns its snapshot frame. `identity()` is read at every frame."""
        self._subscribers[key] = (push, identity)
        return self.board.watch(key, may_see_names(identity()), time.monotonic())

    def unwatch(self, key: Hashable) -> None:
        self._subscribers.pop(key, None)
        self.board.unwatch(key)

    def _sees_names(self, key: Hashable) -> bool:
        subscriber = self._subscribers.get(key)
        return subscriber is not None and may_see_names(subscriber[1]())

    async def _frame_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if not self._subscribers:
                self.view.trim(self.view.version)
                continue
            try:
                for key, payload in self.board.due_frames(time.monotonic(), self._sees_names):
                    subscriber = self._subscribers.get(key)
                    if subscriber is not None:
                        subscriber[0](payload)
            except Exception:
                log.exception("presence: cannot send frames")

    # -- visibility and HTTP ------------------------------------------------------------

    async def set_visible(self, identity: Identity, visible: bool) -> None:
        """Raises on a Redis error (the caller answers `unavailable`)."""
        await self.store.set_visible(Member.of(identity), visible)

    def summary(self, identity: Identity | None) -> dict[str, Any]:
        """`GET /presence`: the counts, and the list for a member (same source as the frames)."""
        online, guests = self.board.counts()
        body: dict[str, Any] = {"online": online, "guests": guests}
        if identity is not None and may_see_names(identity):
            body["members"] = [m.as_json() for m in self.board.listed()]
        return body
