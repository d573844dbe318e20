"""Presence in Redis: the keys the gateway writes, and the one read others make of them.

The gateway's presence store (its Lua scripts) is the only writer. The
notifications service reads the foreground counts (`foreground_connections`):
it pushes only to users with no foreground connection (SPEC §12). Both take
the key names from `PresenceKeys`, so they cannot drift apart.

Keys (under the deployment's `REDIS_KEY_PREFIX`; the `{pres}` hash tag keeps
them in one slot, so the scripts also run on a Redis Cluster):

| key | type | holds |
|---|---|---|
| `gw:{pres}:hb:<instance>` | string, expiring | the instance is alive (refreshed often) |
| `gw:{pres}:instances` | set | instances that registered connections |
| `gw:{pres}:conns:<instance>` | hash | user id → its connections there; `~guests` → guests' |
| `gw:{pres}:count` | hash | user id → open connections on live instances (absent when 0) |
| `gw:{pres}:guests` | string | open guest connections on live instances |
| `gw:{pres}:leaving` | sorted set | user id → when the grace ends (ms, Redis clock) |
| `gw:{pres}:online` | hash | user id → profile, for every visible online user |
| `gw:{pres}:changes` | stream | `u` user, `k` `j`/`l` (joined/left `online`), `p` profile; capped |
| `gw:{pres}:hidden:<user>` | string, 30 days | the user chose `visible: false` |
| `gw:{pres}:fg:<instance>` | hash | user id → their `foreground` connections there (or absent) |

The `fg:<instance>` hashes say who is looking at a page right now. They count
only while the instance's heartbeat lives (`foreground_connections`), so a dead
instance's users stop counting as foreground without anyone cleaning up after it.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from community_shared.settings import Settings


class PresenceKeys:
    """The presence keys of one deployment (its `REDIS_KEY_PREFIX`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.instances = self.key("instances")
        self.count = self.key("count")
        self.guests = self.key("guests")
        self.leaving = self.key("leaving")
        self.online = self.key("online")
        self.changes = self.key("changes")

    def key(self, name: str) -> str:
        return self._settings.redis_key(f"gw:{{pres}}:{name}")

    def heartbeat(self, instance: str) -> str:
        return self.key(f"hb:{instance}")

    def conns(self, instance: str) -> str:
        return self.key(f"conns:{instance}")

    def hidden(self, user_id: str) -> str:
        return self.key(f"hidden:{user_id}")

    def foreground(self, instance: str) -> str:
        return self.key(f"fg:{instance}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def foreground_connections(
    redis: aioredis.Redis, settings: Settings, user_ids: Iterable[str]
) -> dict[str, int]:
    """Each user's `foreground` connections on the live gateway instances (two round trips).

    An instance whose heartbeat expired counts for nobody (it died; its hash is left
    for its successor under the same id, or for the gateway's `PresenceStore.retire`).
    """
    users = list(user_ids)
    totals = dict.fromkeys(users, 0)
    if not users:
        return totals
    keys = PresenceKeys(settings)
    instances = [_text(raw) for raw in await redis.smembers(keys.instances)]
    if not instances:
        return totals
    pipe = redis.pipeline(transaction=False)
    for instance in instances:
        pipe.exists(keys.heartbeat(instance))
        pipe.hmget(keys.foreground(instance), users)
    answers = await pipe.execute()
    for alive, counts in zip(answers[::2], answers[1::2], strict=True):
        if not alive:
            continue
        for user, count in zip(users, counts, strict=True):
            if count is not None:
                totals[user] += int(count)
    return totals
