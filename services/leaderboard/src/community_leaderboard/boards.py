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

# ARGV[1]: the key prefix of the boards; ARGV[2]: the ops, fixed-size records
# (board index, set/remove, member, score, earned, actions, learn rate);
# ARGV[3..]: the board names by index. Returns (old, new) 0-based ranks as
# int32 pairs, -1 for "not on the board". One packed argument and one packed
# reply keep the client's per-argument encoding out of the hot path.
_APPLY = """
local prefix = ARGV[1]
local blob = ARGV[2]
local boards = {}
for i = 3, #ARGV do boards[i - 3] = prefix .. ARGV[i] .. ':' end
local out = {}
local pos = 1
while pos <= #blob do
  local board, kind, member, score, earned, actions, learn
  board, kind, member, score, earned, actions, learn, pos =
    struct.unpack('<BBc16dddd', blob, pos)
  local key = boards[board]
  local rank_key = key .. 'rank'
  local old = redis.call('ZREVRANK', rank_key, member)
  if kind == 1 then
    redis.call('ZADD', rank_key, score, member)
    redis.call('ZADD', key .. 'earned', earned, member)
    redis.call('ZADD', key .. 'actions', actions, member)
    redis.call('ZADD', key .. 'learn_rate', learn, member)
  elseif old then
    redis.call('ZREM', rank_key, member)
    redis.call('ZREM', key .. 'earned', member)
    redis.call('ZREM', key .. 'actions', member)
    redis.call('ZREM', key .. 'learn_rate', member)
  end
  local new = redis.call('ZREVRANK', rank_key, member)
  out[#out + 1] = struct.pack('<ii', old or -1, new or -1)
end
return table.concat(out)
"""
_OP = struct.Struct("<BB16sdddd")
_BOARD_INDEX = {board: i for i, board in enumerate(BOARDS)}


class BoardEntry(msgspec.Struct, frozen=True):
    """A student's place-defining numbers on one board."""

    score: int
    points: int
    earned_cents: int
    actions: int
    learn_rate: float


class BoardOp(msgspec.Struct, frozen=True):
    """Put `user_id` on `board` with `entry`, or take them off it (`entry` None)."""

    board: str
    user_id: uuid.UUID
    entry: BoardEntry | None


class Move(msgspec.Struct, frozen=True):
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

    @property
    def _key_prefix(self) -> str:
        return self._settings.redis_key("lb:board:")

    def prefix(self, board: str) -> str:
        return f"{self._key_prefix}{board}:"

    def key(self, board: str, metric: str) -> str:
        return f"{self.prefix(board)}{metric}"

    async def apply(self, ops: Sequence[BoardOp]) -> list[Move]:
        """Apply the ops in order; return each op's old and new rank."""
        moves: list[Move] = []
        for start in range(0, len(ops), LUA_CHUNK):
            chunk = ops[start : start + LUA_CHUNK]
            blob = bytearray()
            for op in chunk:
                e = op.entry
                if e is None:
                    blob += _OP.pack(_BOARD_INDEX[op.board], 0, op.user_id.bytes, 0, 0, 0, 0)
                else:
                    blob += _OP.pack(
                        _BOARD_INDEX[op.board],
                        1,
                        op.user_id.bytes,
                        float(e.score),
                        float(e.earned_cents),
                        float(e.actions),
                        e.learn_rate,
                    )
            reply = await self._apply(args=[self._key_prefix, bytes(blob), *BOARDS])
            ranks = struct.unpack(f"<{2 * len(chunk)}i", reply)
            for index, op in enumerate(chunk):
                old, new = ranks[2 * index], ranks[2 * index + 1]
                moves.append(Move(op, old + 1 if old >= 0 else None, new + 1 if new >= 0 else None))
        return moves

    async def page(self, board: str, metric: str, offset: int, limit: int) -> list[uuid.UUID]:
        members = await self._redis.zrevrange(self.key(board, metric), offset, offset + limit - 1)
        return [_member(m) for m in members]

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
