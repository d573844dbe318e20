"""Idempotency keys: a retried create answers what the first attempt answered.

A `POST` that creates something may carry an `Idempotency-Key` header (SPEC
§3). The first request with a key, per caller and route, creates; the same
caller repeating the key on the same route within `RETENTION` gets the first
response again (status and body, byte for byte) and nothing is written or
published twice; the key with another body is refused (`KeyReused`, 422).

The use case calls `claim` first in its transaction and `remember` with its
answer last, on the same connection as the write and its outbox events:

- the key and the stored response commit with the write or not at all, so a
  committed write always has its key, and a refused or failed request (any
  4xx, a 503) leaves no key behind: its retry runs the use case again;
- `claim` takes a transaction-scoped advisory lock on (schema, caller, route,
  key) before it looks for a stored answer. Of two concurrent requests with
  one key, the second waits until the first commits or rolls back, then
  replays the first's answer, or runs itself if the first failed. The primary
  key on (user_id, route, key) is the backstop: a second row for a key can
  never commit (`KeyInUse`, 409, should the lock ever be bypassed).

`claim` raises `Replay` to answer a repeat: the exception rolls back the
(empty) transaction and the service's exception handler turns it into the
stored response with `Idempotent-Replayed: true`.

Keys older than `RETENTION` are ignored by `claim` (a late retry creates
again), overwritten by `remember`, and deleted by `delete_expired`, which the
services run periodically (`expire_keys`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass

import asyncpg
import msgspec
from litestar.serialization import encode_json

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x20-\x7e]+$"
"""Printable ASCII (space included); the length, 1..128, is checked beside it."""
MAX_KEY_LENGTH = 128
RETENTION = dt.timedelta(hours=24)
CLEANUP_SECONDS = 600.0


@dataclass(frozen=True)
class IdempotencyKey:
    """A request's key, scoped to its caller and route, with its body's fingerprint."""

    user_id: uuid.UUID
    route: str
    key: str
    fingerprint: bytes


def fingerprint(body: bytes) -> bytes:
    """The identity of a request body: the same JSON value gives the same fingerprint,
    whatever its spacing or key order. A body that is not JSON counts byte for byte
    (the request is refused by validation anyway)."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    except (msgspec.MsgspecError, RecursionError, ValueError, OverflowError):
        # Not JSON, or nested deeper than the decoder goes: validation refuses it.
        canonical = b"raw:" + body
    return hashlib.sha256(canonical).digest()


class Replay(Exception):
    """The request repeats an earlier one: answer the stored response."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__(f"replay of a {status_code} response")
        self.status_code = status_code
        self.body = body


class KeyReused(Exception):
    """The key was used by this caller on this route for a different body (422)."""


class KeyInUse(Exception):
    """Another transaction stored an answer for the key meanwhile (409; see module doc)."""


def _lock_name(schema: str, request: IdempotencyKey) -> str:
    return f"idempotency:{schema}:{request.user_id}:{request.route}:{request.key}"


async def claim(conn: asyncpg.Connection, schema: str, request: IdempotencyKey | None) -> None:
    """Make the key this transaction's, or raise `Replay` / `KeyReused`.

    Call first inside the use case's transaction (before any lock the use case
    takes, so locks are always taken in the same order). No key: nothing to do.
    """
    if request is None:
        return
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", _lock_name(schema, request)
    )
    # A new statement after the lock sees what the holder committed (READ COMMITTED).
    row = await conn.fetchrow(
        f"""SELECT fingerprint, status_code, body FROM {schema}.idempotency_keys
            WHERE user_id = $1 AND route = $2 AND key = $3 AND created_at > now() - $4::interval""",
        request.user_id,
        request.route,
        request.key,
        RETENTION,
    )
    if row is None:
        return
    if bytes(row["fingerprint"]) != request.fingerprint:
        raise KeyReused
    raise Replay(row["status_code"], bytes(row["body"]))


async def remember(
    conn: asyncpg.Connection,
    schema: str,
    request: IdempotencyKey | None,
    response: object,
    *,
    status_code: int = 201,
) -> None:
    """Store the answer of a successful write; call last, inside the same transaction.

    `response` is encoded as Litestar encodes a handler's return value, so a
    replay is byte for byte what the first request received.
    """
    if request is None:
        return
    stored = await conn.fetchval(
        f"""INSERT INTO {schema}.idempotency_keys AS k
                (user_id, route, key, fingerprint, status_code, body)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (user_id, route, key) DO UPDATE
               SET fingerprint = EXCLUDED.fingerprint, status_code = EXCLUDED.status_code,
                   body = EXCLUDED.body, created_at = now()
             WHERE k.created_at <= now() - $7::interval
            RETURNING true""",
        request.user_id,
        request.route,
        request.key,
        request.fingerprint,
        status_code,
        encode_json(response),
        RETENTION,
    )
    if stored is None:  # a live answer exists: only possible if `claim` was skipped
        raise KeyInUse


async def delete_expired(pool: asyncpg.Pool, schema: str) -> int:
    """Delete keys older than `RETENTION` (index `idempotency_keys_created_at`)."""
    status: str = await pool.execute(
        f"DELETE FROM {schema}.idempotency_keys WHERE created_at <= now() - $1::interval",
        RETENTION,
    )
    return int(status.rsplit(" ", 1)[-1])


async def expire_keys(pool: asyncpg.Pool, schema: str, every: float = CLEANUP_SECONDS) -> None:
    """Run `delete_expired` now and every `every` seconds, until cancelled.

    Each pass deletes at most `every` seconds' worth of keys; several service
    instances doing it at once is harmless.
    """
    while True:
        try:
            deleted = await delete_expired(pool, schema)
        except Exception:
            log.warning("cannot delete expired idempotency keys of %s", schema, exc_info=True)
        else:
            if deleted:
                log.info("deleted %d expired idempotency keys of %s", deleted, schema)
        await asyncio.sleep(every)
