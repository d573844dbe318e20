"""Authors' taglines (`author.goal`): the name of a student's current goal.

The goals service owns goals; posts asks it over NATS request/reply
(`rpc.goals.profile`). Reading the feed must never depend on goals being up,
so lookups are:

- cached in process: a known answer for `ttl` seconds, an unanswered lookup
  (timeout, no responder, NATS down) for `miss_ttl` seconds, so a goals outage
  costs one short wait per author per `miss_ttl`, not one per request;
- evicted early when goals announces that a student's goal changed
  (`goals.goal.assigned`, `goals.goal.completed`; see `consumers`);
- made in parallel for a whole page, each bounded by `timeout` (a page waits
  at most one timeout), with concurrent lookups of one author shared;
- only made for students: instructors and admins have no goal.

Whatever fails, the answer is `None` (the tagline is simply not shown).
Guaranteed: `lookup` never raises and never waits much longer than `timeout`.
Not guaranteed: freshness within `ttl` if an eviction event is missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable

import msgspec
from community_shared.metrics import DEPENDENCY_ERRORS
from community_shared.rpc import RPC_GOALS_PROFILE, ProfileRequest
from community_shared.settings import Settings
from nats.aio.client import Client as NATS

from community_posts.events import GoalsProfileReply

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
_decode_reply = msgspec.json.Decoder(GoalsProfileReply).decode


class TaglineDirectory:
    def __init__(
        self,
        settings: Settings,
        nats: Callable[[], NATS | None],
        *,
        timeout: float = 0.15,
        ttl: float = 60.0,
        miss_ttl: float = 10.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._subject = settings.subject(RPC_GOALS_PROFILE)
        self._nats = nats
        self._timeout = timeout
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[uuid.UUID, tuple[str | None, float]] = OrderedDict()
        self._inflight: dict[uuid.UUID, asyncio.Task[str | None]] = {}
        self._evictions = 0  # an answer that raced an eviction is not cached

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop a cached tagline (the student's goal changed)."""
        self._cache.pop(user_id, None)
        self._inflight.pop(user_id, None)
        self._evictions += 1

    def _cached(self, user_id: uuid.UUID) -> tuple[bool, str | None]:
        entry = self._cache.get(user_id)
        if entry is None:
            return False, None
        value, expires = entry
        if self._clock() >= expires:
            del self._cache[user_id]
            return False, None
        return True, value

    def _remember(self, user_id: uuid.UUID, value: str | None, ttl: float) -> None:
        self._cache[user_id] = (value, self._clock() + ttl)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    async def lookup(self, authors: Iterable[tuple[uuid.UUID, str]]) -> dict[uuid.UUID, str | None]:
        """Taglines of `(user_id, role)` pairs; None where unknown."""
        found: dict[uuid.UUID, str | None] = {}
        waiting: dict[uuid.UUID, asyncio.Task[str | None]] = {}
        for user_id, role in authors:
            if user_id in found or user_id in waiting:
                continue
            if role != "student":
                found[user_id] = None
                continue
            hit, value = self._cached(user_id)
            if hit:
                found[user_id] = value
                continue
            task = self._inflight.get(user_id)
            if task is None:
                task = asyncio.create_task(self._ask(user_id))
                self._inflight[user_id] = task
                task.add_done_callback(self._settled)
            waiting[user_id] = task
        if waiting:
            # Each `_ask` is bounded by the timeout and never raises; shield so a
            # cancelled request does not cancel a lookup other requests share.
            results = await asyncio.gather(
                *(asyncio.shield(task) for task in waiting.values()), return_exceptions=True
            )
            for user_id, result in zip(waiting, results, strict=True):
                found[user_id] = result if isinstance(result, str) else None
        return found

    def _settled(self, task: asyncio.Task[str | None]) -> None:
        for user_id, current in list(self._inflight.items()):
            if current is task:
                del self._inflight[user_id]

    async def _ask(self, user_id: uuid.UUID) -> str | None:
        nc = self._nats()
        if nc is None or not nc.is_connected:
            return None  # not cached: asking again is free once NATS is back
        evictions = self._evictions
        try:
            msg = await nc.request(
                self._subject, _encode(ProfileRequest(user_id=user_id)), timeout=self._timeout
            )
            reply = _decode_reply(msg.data)
        except Exception as exc:  # timeout, no responders, bad reply: show no tagline
            DEPENDENCY_ERRORS.labels(dependency="rpc", operation="goals.profile").inc()
            log.info("tagline of %s unknown: %s", user_id, type(exc).__name__)
            if evictions == self._evictions:
                self._remember(user_id, None, self._miss_ttl)
            return None
        value = None if reply.error is not None else reply.goal_name
        if evictions == self._evictions:
            self._remember(user_id, value, self._ttl)
        return value
