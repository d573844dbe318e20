"""The boards in Redis: one sorted set per board and sort.

For every board (`<window>:<track>`) four sorted sets hold its members (the
16 bytes of the student's UUID): `rank` (score = points with the tie-break of
`rules.board_score`), `earned` (cents; for a student who hides their
earnings, the lower bound of their range), `actions` and `learn_rate`. Postgres is
the source of truth; these sets are a projection that `replace_all` can
rebuild at any time.

`apply` moves students with one Lua script per chunk, so each student's old
and new rank are read around their own update atomically and in order: a
student who moves gets exactly one (old, new) pair, and the students they
passed are not reported.

Redis may lose the boards (a restart without persistence) while the service
runs. A complete set of boards is marked by the key `lb:boards:generation`,
written in the same atomic step that swaps a rebuilt set in. Every read checks
it in the same pipeline and every move in the same script: without it they
raise `BoardsMissing` (a 503 to the client; the event is applied again later)
and set `lost`, so the keeper (keeper.py) rebuilds from Postgres at once,
instead of serving, or adding to, boards that hold only whoever moved since.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from community_shared.dependencies import DependencyUnavailable
from community_shared.settings import Settings
from redis.asyncio.client import Pipeline

from community_leaderboard.planner import PUT, BoardOp, Move
from community_leaderboard.rules import BOARDS
from community_leaderboard.standing import BoardEntry

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
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('BOARDS_MISSING') end
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
# Swap staged boards in, and mark the set complete, in one atomic step; refuse if
# Redis lost anything staged (the staging token or a filled board) meanwhile.
# KEYS[1]: the staging token, KEYS[2]: the generation marker; ARGV[1]: the new
# generation; then (staged key, live key, "1" if filled) triplets.
_COMMIT = """
local lost = redis.call('EXISTS', KEYS[1]) == 0
for i = 2, #ARGV, 3 do
  if ARGV[i + 2] == '1' and redis.call('EXISTS', ARGV[i]) == 0 then lost = true end
end
if lost then return redis.error_reply('BOARDS_MISSING staging lost') end
for i = 2, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    redis.call('RENAME', ARGV[i], ARGV[i + 1])
  else
    redis.call('DEL', ARGV[i + 1])
  end
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""
_OP = struct.Struct("<BB16sdddd")
_BOARD_INDEX = {board: i for i, board in enumerate(BOARDS)}


class BoardsMissing(DependencyUnavailable):
    """Redis does not hold a complete set of boards (lost, being rebuilt)."""

    def __init__(self) -> None:
        super().__init__("redis", "the leaderboard is being rebuilt; retry shortly", retry_after=2)


def _missing(exc: redis.exceptions.ResponseError) -> bool:
    return str(exc).startswith("BOARDS_MISSING")


class Boards:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._apply = redis.register_script(_APPLY)
        self._take = redis.register_script(_TAKE)
        self._commit = redis.register_script(_COMMIT)
        self.lost = asyncio.Event()
        """Set when a read or a move found the boards missing."""

    @property
    def marker_key(self) -> str:
        return self._settings.redis_key("lb:boards:generation")

    async def generation(self) -> bytes | None:
        """The generation of the complete set of boards Redis holds; None if it holds none."""
        found = await self._redis.get(self.marker_key)
        return found.encode() if isinstance(found, str) else found

    def _gone(self) -> BoardsMissing:
        self.lost.set()
        return BoardsMissing()

    async def _checked(self, fill: Callable[[Pipeline], object]) -> list[Any]:
        """Run the reads `fill` queues, in one pipeline after the marker check."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(self.marker_key)
        fill(pipe)
        found = await pipe.execute()
        if not found[0]:
            raise self._gone()
        return list(found[1:])

    async def _run_apply(self, args: list[bytes | str]) -> Any:
        try:
            return await self._apply(keys=[self.marker_key], args=args)
        except redis.exceptions.ResponseError as exc:
            if _missing(exc):
                raise self._gone() from exc
            raise

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
            reply = await self._run_apply(args)
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
            await self._run_apply(args)

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
        if limit <= 0:  # ZREVRANGE key N N-1 would be the rest of the board
            return []
        [members] = await self._checked(
            lambda pipe: pipe.zrevrange(self.key(board, metric), offset, offset + limit - 1)
        )
        return [_member(m) for m in members]

    async def page_and_total(
        self, board: str, metric: str, offset: int, limit: int
    ) -> tuple[list[uuid.UUID], int]:
        """A page of a board and how many are on it, read together."""

        def fill(pipe: Pipeline) -> None:
            pipe.zrevrange(self.key(board, metric), offset, offset + limit - 1)
            pipe.zcard(self.key(board, "rank"))

        members, total = await self._checked(fill)
        return [_member(m) for m in members], int(total)

    async def first_pages(self, boards: Sequence[str], size: int) -> dict[str, list[uuid.UUID]]:
        """The first `size` members by rank of each board, in one round trip."""

        def fill(pipe: Pipeline) -> None:
            for board in boards:
                pipe.zrevrange(self.key(board, "rank"), 0, size - 1)

        found = await self._checked(fill)
        return {
            board: [_member(m) for m in members]
            for board, members in zip(boards, found, strict=True)
        }

    async def total(self, board: str) -> int:
        [count] = await self._checked(lambda pipe: pipe.zcard(self.key(board, "rank")))
        return int(count)

    async def ranks(self, board: str, user_ids: Sequence[uuid.UUID]) -> list[int | None]:
        if not user_ids:
            return []

        def fill(pipe: Pipeline) -> None:
            for user_id in user_ids:
                pipe.zrevrank(self.key(board, "rank"), user_id.bytes)

        found = await self._checked(fill)
        return [int(r) + 1 if r is not None else None for r in found]

    async def positions(
        self, places: Sequence[tuple[str, uuid.UUID]]
    ) -> list[tuple[int | None, float | None]]:
        """(1-based rank, score) of each (board, student); (None, None) if not on it."""
        found: list[tuple[int | None, float | None]] = []
        for start in range(0, len(places), 5000):
            chunk = places[start : start + 5000]

            def fill(pipe: Pipeline, chunk: Sequence[tuple[str, uuid.UUID]] = chunk) -> None:
                for board, user_id in chunk:
                    pipe.zrevrank(self.key(board, "rank"), user_id.bytes)
                    pipe.zscore(self.key(board, "rank"), user_id.bytes)

            replies = await self._checked(fill)
            for i in range(0, len(replies), 2):
                rank, score = replies[i], replies[i + 1]
                found.append((int(rank) + 1 if rank is not None else None, score))
        return found

    async def ranks_everywhere(self, user_id: uuid.UUID) -> dict[str, int | None]:
        def fill(pipe: Pipeline) -> None:
            for board in BOARDS:
                pipe.zrevrank(self.key(board, "rank"), user_id.bytes)

        found = await self._checked(fill)
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

    @property
    def _token_key(self) -> str:
        return self._boards._settings.redis_key(f"lb:staging:{self._token}")

    def _temp(self, board: str, metric: str) -> str:
        return f"{self._boards.key(board, metric)}:staging:{self._token}"

    async def begin(self) -> None:
        """Mark the staging as under way: if Redis loses it (a restart), `commit`
        refuses rather than swap in the part staged since."""
        await self._redis.set(self._token_key, b"1", ex=3600)

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

    async def commit(self) -> bytes:
        """Swap the staged boards in and mark them complete; return their generation.
        Raises `BoardsMissing` if Redis lost part of the staging."""
        generation = uuid.uuid4().hex.encode()
        args: list[bytes | str] = [generation]
        for board in BOARDS:
            for metric in METRICS:
                filled = "1" if board in self._filled else "0"
                args += [self._temp(board, metric), self._boards.key(board, metric), filled]
        try:
            await self._boards._commit(keys=[self._token_key, self._boards.marker_key], args=args)
        except redis.exceptions.ResponseError as exc:
            if _missing(exc):
                raise BoardsMissing() from exc
            raise
        return generation

    async def discard(self) -> None:
        await self._redis.delete(
            self._token_key, *(self._temp(b, m) for b in BOARDS for m in METRICS)
        )


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
