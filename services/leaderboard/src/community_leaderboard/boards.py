"""The boards in Redis: one sorted set per board and sort.

For every board (`<window>:<track>`) four sorted sets hold its members (the
16 bytes of the student's UUID): `rank` (score = points with the tie-break of
`rules.board_score`), `earned` (cents), `actions` and `learn_rate`. Postgres is
the source of truth; these sets are a projection that `replace_all` can
rebuild at any time.

`apply` moves students with one Lua script per chunk, so each student's old
and new rank are read around their own update atomically and in order: a
student who moves gets exactly one (old, new) pair, and the students they
passed are not reported.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence

import msgspec
import redis.asyncio as aioredis
from community_shared.settings import Settings

from community_leaderboard.rules import BOARDS

METRICS: tuple[str, ...] = ("rank", "earned", "actions", "learn_rate")
LUA_CHUNK = 4000

# One packed argument and one packed reply per call keep the client's
# per-argument encoding out of the hot path.
#
# ARGV[1]: key prefix of the boards; ARGV[2]: "live" or "defer"; ARGV[3]: the
# hash of moves kept while a backlog is worked through; ARGV[4]: the ops, fixed
# records (board index, flags, member, score, earned, actions, learn rate);
# ARGV[5..]: board names by index. Flags: 1 = put on the board (else take off),
# 2 = earned may have changed, 4 = learn rate may have changed (a student
# already on the board keeps the other sort scores untouched).
#
# Taking off a student who is not on the board costs one ZSCORE (in a batch,
# most removals are of students with no days in a window yet).
#
# live: returns (old, new) 0-based ranks as int32 pairs, -1 = not on the board.
# defer: returns nothing; the first time a student's place on a board changes
# during the backlog, their rank before it is kept in the hash (field: board
# index byte + member), to announce the net move later.
_APPLY = """
local prefix = ARGV[1]
local defer = ARGV[2] == 'defer'
local pending = ARGV[3]
local blob = ARGV[4]
local rank_keys, actions_keys, earned_keys, learn_keys, tags = {}, {}, {}, {}, {}
for i = 5, #ARGV do
  local key = prefix .. ARGV[i] .. ':'
  rank_keys[i - 5], actions_keys[i - 5] = key .. 'rank', key .. 'actions'
  earned_keys[i - 5], learn_keys[i - 5] = key .. 'earned', key .. 'learn_rate'
  tags[i - 5] = string.char(i - 5)
end
local out = {}
local pos = 1
while pos <= #blob do
  local board, flags, member, score, earned, actions, learn
  board, flags, member, score, earned, actions, learn, pos =
    struct.unpack('<BBc16dddd', blob, pos)
  local rank_key = rank_keys[board]
  if flags % 2 == 0 and not redis.call('ZSCORE', rank_key, member) then
    -- taking off a student who is not on the board (most often: no figures in
    -- the window yet): nothing moves
    if not defer then out[#out + 1] = struct.pack('<ii', -1, -1) end
  else
    local field = defer and (tags[board] .. member)
    local old = false
    local kept = defer and redis.call('HEXISTS', pending, field) == 1
    if not kept then old = redis.call('ZREVRANK', rank_key, member) end
    local changed = 0
    if flags % 2 == 1 then
      local present
      if kept then
        -- the move is already kept: only whether the student was on the board matters
        present = redis.call('ZADD', rank_key, score, member) == 0
      else
        present = old ~= false
        changed = redis.call('ZADD', rank_key, 'CH', score, member)
      end
      redis.call('ZADD', actions_keys[board], actions, member)
      if not present or math.floor(flags / 2) % 2 == 1 then
        redis.call('ZADD', earned_keys[board], earned, member)
      end
      if not present or math.floor(flags / 4) % 2 == 1 then
        redis.call('ZADD', learn_keys[board], learn, member)
      end
    else
      changed = redis.call('ZREM', rank_key, member)
      if changed == 1 then
        redis.call('ZREM', earned_keys[board], member)
        redis.call('ZREM', actions_keys[board], member)
        redis.call('ZREM', learn_keys[board], member)
      end
    end
    if defer then
      if changed == 1 and not kept then
        redis.call('HSET', pending, field, old or -1)
      end
    else
      local new = redis.call('ZREVRANK', rank_key, member)
      out[#out + 1] = struct.pack('<ii', old or -1, new or -1)
    end
  end
end
return table.concat(out)
"""

# Take up to ARGV[1] kept moves: returns [field, old rank, ...]; they are
# deleted by `_FORGET` once announced.
_TAKE = """
return redis.call('HRANDFIELD', KEYS[1], tonumber(ARGV[1]), 'WITHVALUES')
"""
_OP = struct.Struct("<BB16sdddd")
_BOARD_INDEX = {board: i for i, board in enumerate(BOARDS)}
PUT, EARNED_CHANGED, LEARN_CHANGED = 1, 2, 4
ALL_CHANGED = EARNED_CHANGED | LEARN_CHANGED


class BoardEntry(msgspec.Struct, frozen=True, gc=False):
    """A student's place-defining numbers on one board."""

    score: int
    points: int
    earned_cents: int
    actions: int
    learn_rate: float


class BoardOp(msgspec.Struct, frozen=True, gc=False):
    """Put `user_id` on `board` with `entry`, or take them off it (`entry` None).

    `changed` says which sort scores may have moved (`EARNED_CHANGED`,
    `LEARN_CHANGED`); points and actions are always written."""

    board: str
    user_id: uuid.UUID
    entry: BoardEntry | None
    changed: int = ALL_CHANGED


class Move(msgspec.Struct, frozen=True, gc=False):
    op: BoardOp
    old_rank: int | None  # 1-based; None = was not on the board
    new_rank: int | None

    @property
    def moved(self) -> bool:
        return self.old_rank != self.new_rank


class Boards:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._apply = redis.register_script(_APPLY)
        self._take = redis.register_script(_TAKE)

    @property
    def _key_prefix(self) -> str:
        return self._settings.redis_key("lb:board:")

    def prefix(self, board: str) -> str:
        return f"{self._key_prefix}{board}:"

    def key(self, board: str, metric: str) -> str:
        return f"{self.prefix(board)}{metric}"

    @property
    def _pending_key(self) -> str:
        return self._settings.redis_key("lb:pending_moves")

    def _pack(self, chunk: Sequence[BoardOp]) -> bytes:
        blob = bytearray()
        for op in chunk:
            e = op.entry
            if e is None:
                blob += _OP.pack(_BOARD_INDEX[op.board], 0, op.user_id.bytes, 0, 0, 0, 0)
            else:
                blob += _OP.pack(
                    _BOARD_INDEX[op.board],
                    PUT | op.changed,
                    op.user_id.bytes,
                    float(e.score),
                    float(e.earned_cents),
                    float(e.actions),
                    e.learn_rate,
                )
        return bytes(blob)

    async def apply(self, ops: Sequence[BoardOp]) -> list[Move]:
        """Apply the ops in order; return each op's old and new rank."""
        moves: list[Move] = []
        for start in range(0, len(ops), LUA_CHUNK):
            chunk = ops[start : start + LUA_CHUNK]
            args: list[bytes | str] = [
                self._key_prefix,
                "live",
                self._pending_key,
                self._pack(chunk),
                *BOARDS,
            ]
            reply = await self._apply(args=args)
            ranks = struct.unpack(f"<{2 * len(chunk)}i", reply)
            for index, op in enumerate(chunk):
                old, new = ranks[2 * index], ranks[2 * index + 1]
                moves.append(Move(op, old + 1 if old >= 0 else None, new + 1 if new >= 0 else None))
        return moves

    async def apply_deferred(self, ops: Sequence[BoardOp]) -> None:
        """Apply the ops, keeping each student's rank from before their first move
        on each board (for `take_pending`), without reporting moves now."""
        for start in range(0, len(ops), LUA_CHUNK):
            chunk = ops[start : start + LUA_CHUNK]
            args: list[bytes | str] = [
                self._key_prefix,
                "defer",
                self._pending_key,
                self._pack(chunk),
                *BOARDS,
            ]
            await self._apply(args=args)

    async def has_pending(self) -> bool:
        found: int = await self._redis.exists(self._pending_key)
        return found > 0

    async def pending_count(self) -> int:
        count: int = await self._redis.hlen(self._pending_key)
        return count

    async def take_pending(
        self, limit: int
    ) -> list[tuple[bytes, str, uuid.UUID, int | None, int | None, float | None]]:
        """Up to `limit` kept moves, with where each student is now:
        (field, board, user, old rank, new rank, score); forget them with
        `forget_pending` once announced."""
        raw = await self._take(keys=[self._pending_key], args=[limit])
        if not raw:
            return []
        fields = [bytes(raw[i]) for i in range(0, len(raw), 2)]
        olds = [int(raw[i]) for i in range(1, len(raw), 2)]
        places = [(BOARDS[f[0]], uuid.UUID(bytes=f[1:17])) for f in fields]
        now = await self.positions(places)
        return [
            (field, board, user, old + 1 if old >= 0 else None, rank, score)
            for field, (board, user), old, (rank, score) in zip(
                fields, places, olds, now, strict=True
            )
        ]

    async def forget_pending(self, fields: Sequence[bytes]) -> None:
        for start in range(0, len(fields), 10_000):
            await self._redis.hdel(self._pending_key, *fields[start : start + 10_000])

    async def clear_pending(self) -> None:
        await self._redis.delete(self._pending_key)

    async def page(self, board: str, metric: str, offset: int, limit: int) -> list[uuid.UUID]:
        members = await self._redis.zrevrange(self.key(board, metric), offset, offset + limit - 1)
        return [_member(m) for m in members]

    async def first_pages(self, boards: Sequence[str], size: int) -> dict[str, list[uuid.UUID]]:
        """The first `size` members by rank of each board, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for board in boards:
            pipe.zrevrange(self.key(board, "rank"), 0, size - 1)
        found = await pipe.execute()
        return {
            board: [_member(m) for m in members]
            for board, members in zip(boards, found, strict=True)
        }

    async def total(self, board: str) -> int:
        count: int = await self._redis.zcard(self.key(board, "rank"))
        return count

    async def ranks(self, board: str, user_ids: Sequence[uuid.UUID]) -> list[int | None]:
        if not user_ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zrevrank(self.key(board, "rank"), user_id.bytes)
        found = await pipe.execute()
        return [int(r) + 1 if r is not None else None for r in found]

    async def positions(
        self, places: Sequence[tuple[str, uuid.UUID]]
    ) -> list[tuple[int | None, float | None]]:
        """(1-based rank, score) of each (board, student); (None, None) if not on it."""
        found: list[tuple[int | None, float | None]] = []
        for start in range(0, len(places), 5000):
            pipe = self._redis.pipeline(transaction=False)
            for board, user_id in places[start : start + 5000]:
                pipe.zrevrank(self.key(board, "rank"), user_id.bytes)
                pipe.zscore(self.key(board, "rank"), user_id.bytes)
            replies = await pipe.execute()
            for i in range(0, len(replies), 2):
                rank, score = replies[i], replies[i + 1]
                found.append((int(rank) + 1 if rank is not None else None, score))
        return found

    async def ranks_everywhere(self, user_id: uuid.UUID) -> dict[str, int | None]:
        pipe = self._redis.pipeline(transaction=False)
        for board in BOARDS:
            pipe.zrevrank(self.key(board, "rank"), user_id.bytes)
        found = await pipe.execute()
        return {
            b: int(r) + 1 if r is not None else None for b, r in zip(BOARDS, found, strict=True)
        }

    async def snapshot(self) -> dict[str, list[tuple[bytes, float]]]:
        """Every board and sort, in order (tests and the rebuild check)."""
        pipe = self._redis.pipeline(transaction=False)
        keys = [self.key(b, m) for b in BOARDS for m in METRICS]
        for key in keys:
            pipe.zrevrange(key, 0, -1, withscores=True)
        found = await pipe.execute()
        return {
            key: [(bytes(m), float(s)) for m, s in entries]
            for key, entries in zip(keys, found, strict=True)
        }

    def staging(self) -> Staging:
        """Build a complete new set of boards beside the live ones (see `Staging`)."""
        return Staging(self)


class Staging:
    """New boards staged under temporary keys, then swapped in with one MULTI,
    so readers see either the old boards or the new ones, never a mix."""

    def __init__(self, boards: Boards) -> None:
        self._boards = boards
        self._redis = boards._redis
        self._token = uuid.uuid4().hex[:8]
        self._filled: set[str] = set()

    def _temp(self, board: str, metric: str) -> str:
        return f"{self._boards.key(board, metric)}:staging:{self._token}"

    async def add(self, entries: Sequence[tuple[str, uuid.UUID, BoardEntry]]) -> None:
        by_key: dict[str, dict[bytes, float]] = {}
        for board, user_id, e in entries:
            self._filled.add(board)
            for metric in METRICS:
                by_key.setdefault(self._temp(board, metric), {})[user_id.bytes] = _metric_score(
                    e, metric
                )
        pipe = self._redis.pipeline(transaction=False)
        for key, mapping in by_key.items():
            pipe.zadd(key, mapping)
        await pipe.execute()

    async def commit(self) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for board in BOARDS:
            for metric in METRICS:
                final = self._boards.key(board, metric)
                if board in self._filled:
                    pipe.rename(self._temp(board, metric), final)
                else:
                    pipe.delete(final)
        await pipe.execute()

    async def discard(self) -> None:
        await self._redis.delete(*(self._temp(b, m) for b in BOARDS for m in METRICS))


def _member(value: object) -> uuid.UUID:
    if isinstance(value, bytes | bytearray | memoryview):
        return uuid.UUID(bytes=bytes(value))
    raise TypeError(f"unexpected board member {value!r}")


def _metric_score(e: BoardEntry, metric: str) -> float:
    if metric == "rank":
        return float(e.score)
    if metric == "earned":
        return float(e.earned_cents)
    if metric == "actions":
        return float(e.actions)
    return e.learn_rate
