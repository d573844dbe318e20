"""Presence state in Redis, shared by every gateway instance. Only moves data.

Its keys, and what each holds, are laid out in `community_shared.presencekeys`
(`PresenceKeys`): the notifications service reads the foreground counts under
the same names.

Every change is one Lua script, so the state is always consistent: a user is
in `online` exactly when `presence_rules.is_online` holds (connections counted
in `count`, grace in `leaving`, `hidden`), and every entry or exit of `online`
is appended to `changes`, which the instances tail to keep their views. Times
come from the Redis clock (`TIME`), so instances with skewed clocks agree.

The `fg:<instance>` hashes say who is looking at a page right now: the
notifications service pushes only to users with no foreground connection
(SPEC §12, `community_shared.presencekeys.foreground_connections`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis
from community_shared.presencekeys import PresenceKeys
from community_shared.settings import Settings
from redis.commands.core import AsyncScript

from community_gateway.presence_rules import Member

GUESTS_FIELD = "~guests"
"""The field of an instance's hash counting its guest connections (no user id starts with ~)."""
HIDDEN_SECONDS = 30 * 24 * 3600
"""`visible: false` is remembered this long after it was last set (SPEC §11)."""
CHANGES_MAXLEN = 100_000
"""Changes kept in the stream; an instance further behind resynchronises from `online`."""

_LIB = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Appends to the change stream: kind 'j' (became visible online) or 'l' (stopped being).
local function announce(changes, maxlen, user, kind, profile)
  redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'u', user, 'k', kind, 'p', profile)
end
local function reveal(online, changes, maxlen, user, profile)
  if redis.call('HSETNX', online, user, profile) == 1 then
    announce(changes, maxlen, user, 'j', profile)
  end
end
local function conceal(online, changes, maxlen, user)
  local profile = redis.call('HGET', online, user)
  if profile then
    redis.call('HDEL', online, user)
    announce(changes, maxlen, user, 'l', profile)
  end
end
-- Takes n connections of the user off the live total; at zero the grace starts.
local function uncount(count, leaving, user, n, grace)
  if redis.call('HINCRBY', count, user, -n) <= 0 then
    redis.call('HDEL', count, user)
    redis.call('ZADD', leaving, now + tonumber(grace), user)
  end
end
local function add_guests(key, n)
  if redis.call('INCRBY', key, n) < 0 then redis.call('SET', key, 0) end
end
"""
"""Shared by every script: the Redis clock in ms and the steps the scripts share."""

# KEYS: conns, count, online, leaving, changes, hidden, guests, instances
# ARGV: instance, user ('' for a guest), profile, maxlen
_OPEN = """
redis.call('SADD', KEYS[8], ARGV[1])
if ARGV[2] == '' then
  redis.call('HINCRBY', KEYS[1], '~guests', 1)
  add_guests(KEYS[7], 1)
  return 1
end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('ZREM', KEYS[4], ARGV[2])
if redis.call('EXISTS', KEYS[6]) == 0 then reveal(KEYS[3], KEYS[5], ARGV[4], ARGV[2], ARGV[3]) end
return 1
"""

# KEYS: conns, count, leaving, guests;  ARGV: user ('' for a guest), grace ms
_CLOSE = """
local field = ARGV[1]
if field == '' then field = '~guests' end
local mine = redis.call('HINCRBY', KEYS[1], field, -1)
if mine <= 0 then redis.call('HDEL', KEYS[1], field) end
-- Below zero: this instance was reaped meanwhile and the connection is already uncounted.
if mine < 0 then return 0 end
if ARGV[1] == '' then
  add_guests(KEYS[4], -1)
else
  uncount(KEYS[2], KEYS[3], ARGV[1], 1, ARGV[2])
end
return 1
"""

# KEYS: leaving, count, online, changes;  ARGV: maxlen, batch
_EXPIRE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, user in ipairs(due) do
  redis.call('ZREM', KEYS[1], user)
  if redis.call('HEXISTS', KEYS[2], user) == 0 then conceal(KEYS[3], KEYS[4], ARGV[1], user) end
end
return #due
"""

# KEYS: hidden, online, changes;  ARGV: user, ttl seconds, maxlen
_HIDE = """
redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[2]))
conceal(KEYS[2], KEYS[3], ARGV[3], ARGV[1])
return 1
"""

# KEYS: hidden, online, changes, count, leaving;  ARGV: user, profile, maxlen
_SHOW = """
redis.call('DEL', KEYS[1])
local connected = redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1
if not connected then
  local deadline = redis.call('ZSCORE', KEYS[5], ARGV[1])
  connected = deadline and tonumber(deadline) > now
end
if connected then reveal(KEYS[2], KEYS[3], ARGV[3], ARGV[1], ARGV[2]) end
return 1
"""

# KEYS: hb, conns, count, leaving, guests, instances;  ARGV: instance, grace ms, force
# Drops an instance's connections (its users start their grace) unless its heartbeat is
# alive; `force` (an instance retiring itself) drops the heartbeat first.
_REAP = """
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local rows = redis.call('HGETALL', KEYS[2])
for i = 1, #rows, 2 do
  local field, n = rows[i], tonumber(rows[i + 1])
  if n > 0 then
    if field == '~guests' then
      add_guests(KEYS[5], -n)
    else
      uncount(KEYS[3], KEYS[4], field, n, ARGV[2])
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[6], ARGV[1])
return 1
"""

# KEYS: hb, instances;  ARGV: instance, ttl ms.  0 when the heartbeat had lapsed.
_BEAT = """
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[2]), 'XX') then return 1 end
return 0
"""

# KEYS: hb, instances, conns, count, leaving, online, changes, guests, hidden...
# ARGV: instance, ttl ms, grace ms, maxlen, guests, then (user, connections, profile)...
# Makes this instance's registered connections exactly the given ones and refreshes its
# heartbeat: after Redis was unreachable or lost its data, or after this instance was
# reaped while it stalled.
_RESYNC = """
local old = {}
local rows = redis.call('HGETALL', KEYS[3])
for i = 1, #rows, 2 do old[rows[i]] = tonumber(rows[i + 1]) end
local guests = tonumber(ARGV[5])
add_guests(KEYS[8], guests - (old['~guests'] or 0))
old['~guests'] = nil
redis.call('DEL', KEYS[3])
if guests > 0 then redis.call('HSET', KEYS[3], '~guests', guests) end
local k = 9
for i = 6, #ARGV, 3 do
  local user, n, profile = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local before = old[user] or 0
  old[user] = nil
  redis.call('HSET', KEYS[3], user, n)
  if n ~= before then uncount(KEYS[4], KEYS[5], user, before - n, ARGV[3]) end
  redis.call('ZREM', KEYS[5], user)
  if redis.call('EXISTS', KEYS[k]) == 0 then reveal(KEYS[6], KEYS[7], ARGV[4], user, profile) end
  k = k + 1
end
for user, n in pairs(old) do
  if n > 0 then uncount(KEYS[4], KEYS[5], user, n, ARGV[3]) end
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[2]))
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PresenceStore:
    """The presence scripts and reads of one gateway instance (`instance` is its id)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        instance: str,
        *,
        grace_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        self.redis = redis
        self.instance = instance
        self.grace_ms = str(int(grace_seconds * 1000))
        self.heartbeat_ms = str(max(1, int(heartbeat_seconds * 1000)))

        self.keys = PresenceKeys(settings)
        self._open = redis.register_script(_LIB + _OPEN)
        self._close = redis.register_script(_LIB + _CLOSE)
        self._expire = redis.register_script(_LIB + _EXPIRE)
        self._hide = redis.register_script(_LIB + _HIDE)
        self._show = redis.register_script(_LIB + _SHOW)
        self._reap = redis.register_script(_LIB + _REAP)
        self._beat = redis.register_script(_LIB + _BEAT)
        self._resync = redis.register_script(_LIB + _RESYNC)

    # -- connections (batched by the caller into one pipeline) -----------------

    async def apply_connection_changes(self, changes: Iterable[tuple[bool, Member | None]]) -> None:
        """(opened?, profile or None for a guest) in order, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        mine = self.keys.conns(self.instance)
        for opened, member in changes:
            user = "" if member is None else member.user_id
            if opened:
                hidden = self.keys.hidden(user or "-")
                profile = b"" if member is None else member.encode()
                keys = [mine, self.keys.count, self.keys.online, self.keys.leaving]
                keys += [self.keys.changes, hidden, self.keys.guests, self.keys.instances]
                args = [self.instance, user, profile, CHANGES_MAXLEN]
                await self._call(self._open, keys, args, pipe)
            else:
                keys = [mine, self.keys.count, self.keys.leaving, self.keys.guests]
                await self._call(self._close, keys, [user, self.grace_ms], pipe)
        await pipe.execute()

    async def resync(self, users: Mapping[str, tuple[int, Member]], guests: int) -> None:
        """Register exactly these connections for this instance and refresh its heartbeat."""
        keys = [
            self.keys.heartbeat(self.instance),
            self.keys.instances,
            self.keys.conns(self.instance),
            self.keys.count,
            self.keys.leaving,
            self.keys.online,
            self.keys.changes,
            self.keys.guests,
        ]
        args: list[Any] = [self.instance, self.heartbeat_ms, self.grace_ms, CHANGES_MAXLEN, guests]
        for user_id, (count, member) in users.items():
            keys.append(self.keys.hidden(user_id))
            args += [user_id, count, member.encode()]
        await self._resync(keys=keys, args=args)

    async def beat(self) -> bool:
        """Refresh this instance's heartbeat; False if it had lapsed (then `resync`)."""
        keys = [self.keys.heartbeat(self.instance), self.keys.instances]
        return bool(await self._beat(keys=keys, args=[self.instance, self.heartbeat_ms]))

    async def reap_dead(self) -> int:
        """Drop the connections of every instance whose heartbeat expired; how many were reaped."""
        reaped = 0
        for raw in await self.redis.smembers(self.keys.instances):
            instance = _text(raw)
            if instance != self.instance and await self._reap_one(instance, force=False):
                reaped += 1
        return reaped

    async def retire(self) -> None:
        """This instance stops: its connections are dropped (their users' grace starts)."""
        await self._reap_one(self.instance, force=True)
        await self.redis.delete(self.keys.foreground(self.instance))

    # -- foreground connections -------------------------------------------------

    async def write_foreground(self, counts: Mapping[str, int], *, replace: bool) -> None:
        """Set this instance's foreground counts of these users (0 removes one).

        `replace`: these are all of them (after a resynchronisation), drop any other.
        """
        key = self.keys.foreground(self.instance)
        pipe = self.redis.pipeline(transaction=True)
        if replace:
            pipe.delete(key)
        present = {user: n for user, n in counts.items() if n > 0}
        gone = [user for user, n in counts.items() if n <= 0]
        if present:
            pipe.hset(key, mapping=present)  # type: ignore[arg-type]
        if gone and not replace:
            pipe.hdel(key, *gone)
        await pipe.execute()

    async def _reap_one(self, instance: str, *, force: bool) -> bool:
        keys = [
            self.keys.heartbeat(instance),
            self.keys.conns(instance),
            self.keys.count,
            self.keys.leaving,
            self.keys.guests,
            self.keys.instances,
        ]
        args = [instance, self.grace_ms, "1" if force else "0"]
        return bool(await self._reap(keys=keys, args=args))

    async def expire_leaves(self, batch: int = 1000) -> int:
        """Users whose grace ran out leave `online`; how many graces ended."""
        keys = [self.keys.leaving, self.keys.count, self.keys.online, self.keys.changes]
        return int(await self._expire(keys=keys, args=[CHANGES_MAXLEN, batch]))

    # -- visibility -------------------------------------------------------------

    async def set_visible(self, member: Member, visible: bool) -> None:
        hidden = self.keys.hidden(member.user_id)
        if visible:
            keys = [hidden, self.keys.online, self.keys.changes]
            keys += [self.keys.count, self.keys.leaving]
            await self._show(keys=keys, args=[member.user_id, member.encode(), CHANGES_MAXLEN])
        else:
            keys = [hidden, self.keys.online, self.keys.changes]
            await self._hide(keys=keys, args=[member.user_id, HIDDEN_SECONDS, CHANGES_MAXLEN])

    # -- reads --------------------------------------------------------------------

    async def snapshot(self) -> tuple[dict[str, Member], str, int]:
        """(visible online users, the change stream's last id, guests), read atomically."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(self.keys.online)
        pipe.xrevrange(self.keys.changes, count=1)
        pipe.get(self.keys.guests)
        online, last, guests = await pipe.execute()
        members = {_text(u): Member.decode(_text(u), p) for u, p in online.items()}
        last_id = _text(last[0][0]) if last else "0-0"
        return members, last_id, int(guests or 0)

    async def read_changes(
        self, after: str, *, count: int = 1000
    ) -> tuple[list[tuple[str, Member | None]], str]:
        """Changes after stream id `after` (at most `count`, never waiting), and the last id."""
        answer: Any = await self.redis.xread({self.keys.changes: after}, count=count)
        changes: list[tuple[str, Member | None]] = []
        for _, entries in answer or []:
            for entry_id, fields in entries:
                after = _text(entry_id)
                user = _text(fields.get(b"u", b""))
                if not user:
                    continue
                joined = fields.get(b"k") == b"j"
                member = Member.decode(user, fields.get(b"p", b"{}"))
                changes.append((user, member if joined else None))
        return changes, after

    async def guest_count(self) -> int:
        return int(await self.redis.get(self.keys.guests) or 0)

    @staticmethod
    async def _call(script: AsyncScript, keys: list[str], args: list[Any], pipe: Any) -> None:
        await script(keys=keys, args=args, client=pipe)
