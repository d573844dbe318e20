"""The users' inbox read cursors in Redis: one key per user, only ever moved forward.

The cursor is the seq of the last inbox event the user has read (`read` op);
`hello`'s `unread` counts the inbox events above it. A key lives 60 days
after its last move.
"""

from __future__ import annotations

import logging
import uuid
from typing import Final

import redis.asyncio as aioredis
from community_shared.settings import Settings

log = logging.getLogger(__name__)

READ_CURSOR_TTL_SECONDS: Final = 60 * 24 * 3600

# Moves the read cursor forward only: SET key max(current, new).
_ADVANCE_CURSOR: Final = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed > current then current = proposed end
redis.call('SET', KEYS[1], current, 'EX', ARGV[2])
return current
"""


class ReadCursors:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings

    def _key(self, user_id: uuid.UUID) -> str:
        return self._settings.redis_key(f"gw:read:{user_id}")

    async def get(self, user_id: uuid.UUID) -> int | None:
        """The user's cursor (0 if never set); None if Redis does not answer."""
        try:
            raw = await self._redis.get(self._key(user_id))
        except Exception as exc:
            log.warning("redis: cannot read the inbox cursor: %s", exc)
            return None
        return int(raw) if raw else 0

    async def advance(self, user_id: uuid.UUID, cursor: int) -> None:
        """Move the cursor up to `cursor` (never down). Raises when Redis does not answer."""
        await self._redis.eval(
            _ADVANCE_CURSOR, 1, self._key(user_id), str(cursor), str(READ_CURSOR_TTL_SECONDS)
        )
