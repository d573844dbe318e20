"""SQL of the notifications service, and nothing but SQL (schema `notifications`)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg
from community_shared.pagination import TimeKey

Row: TypeAlias = asyncpg.Record

_SUBSCRIPTION_COLUMNS = "id, user_id, endpoint, user_agent, created_at, last_used_at"


# --------------------------------------------------------------------------- VAPID key


async def stored_vapid_key(conn: asyncpg.Connection, generated: str) -> str:
    """The kept development key; `generated` becomes it if there is none yet (first one wins)."""
    await conn.execute(
        "INSERT INTO notifications.vapid_key (id, private_key) VALUES (1, $1)"
        " ON CONFLICT (id) DO NOTHING",
        generated,
    )
    key: str = await conn.fetchval("SELECT private_key FROM notifications.vapid_key WHERE id = 1")
    return key


# --------------------------------------------------------------------------- subscriptions


async def upsert_subscription(
    conn: asyncpg.Connection,
    *,
    new_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str,
    member: bool,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str | None,
) -> tuple[Row, bool]:
    """The subscription of `endpoint`, now the caller's with these keys; and whether it is new.

    A browser that subscribes again (new keys, or another user signed in on it) keeps one row
    per endpoint (`UNIQUE (endpoint)`): the last registration wins.
    """
    row = await conn.fetchrow(
        f"""
        INSERT INTO notifications.push_subscriptions
            (id, user_id, role, member, endpoint, p256dh, auth, user_agent)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (endpoint) DO UPDATE SET
            user_id = EXCLUDED.user_id, role = EXCLUDED.role, member = EXCLUDED.member,
            p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
            user_agent = COALESCE(EXCLUDED.user_agent, push_subscriptions.user_agent)
        RETURNING {_SUBSCRIPTION_COLUMNS}, (xmax = 0) AS inserted
        """,
        new_id,
        user_id,
        role,
        member,
        endpoint,
        p256dh,
        auth,
        user_agent,
    )
    assert row is not None
    return row, bool(row["inserted"])


async def list_subscriptions(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    after: TimeKey | None,
    limit: int,
) -> list[Row]:
    """Oldest first (index push_subscriptions_by_user)."""
    if after is None:
        return _rows(
            await conn.fetch(
                f"SELECT {_SUBSCRIPTION_COLUMNS} FROM notifications.push_subscriptions"
                " WHERE user_id = $1 ORDER BY created_at, id LIMIT $2",
                user_id,
                limit,
            )
        )
    return _rows(
        await conn.fetch(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM notifications.push_subscriptions"
            " WHERE user_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4",
            user_id,
            after.at,
            after.id,
            limit,
        )
    )


async def delete_own_subscription(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    status: str = await conn.execute(
        "DELETE FROM notifications.push_subscriptions WHERE id = $1 AND user_id = $2",
        subscription_id,
        user_id,
    )
    return status != "DELETE 0"


async def delete_subscription(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> bool:
    status: str = await conn.execute(
        "DELETE FROM notifications.push_subscriptions WHERE id = $1", subscription_id
    )
    return status != "DELETE 0"


# --------------------------------------------------------------------------- preferences


async def stored_preferences(conn: asyncpg.Connection, user_id: uuid.UUID) -> dict[str, bool]:
    raw = await conn.fetchval(
        "SELECT push FROM notifications.preferences WHERE user_id = $1", user_id
    )
    return {} if raw is None else dict(json.loads(raw))


async def merge_preferences(
    conn: asyncpg.Connection, user_id: uuid.UUID, changes: dict[str, bool]
) -> dict[str, bool]:
    raw = await conn.fetchval(
        """
        INSERT INTO notifications.preferences (user_id, push) VALUES ($1, $2::jsonb)
        ON CONFLICT (user_id) DO UPDATE
            SET push = preferences.push || EXCLUDED.push, updated_at = now()
        RETURNING push
        """,
        user_id,
        json.dumps(changes),
    )
    return dict(json.loads(raw))


# --------------------------------------------------------------------------- recipients


async def recipients_of_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[Row]:
    """The user's subscriptions with their stored choices (index push_subscriptions_by_user)."""
    return _rows(
        await conn.fetch(
            """
        SELECT s.id, s.user_id, s.role, s.member, p.push
        FROM notifications.push_subscriptions s
        LEFT JOIN notifications.preferences p ON p.user_id = s.user_id
        WHERE s.user_id = $1
        """,
            user_id,
        )
    )


async def recipients_moderators(conn: asyncpg.Connection) -> list[Row]:
    """Every instructor's and admin's subscriptions (index push_subscriptions_moderators)."""
    return _rows(
        await conn.fetch(
            """
        SELECT s.id, s.user_id, s.role, s.member, p.push
        FROM notifications.push_subscriptions s
        LEFT JOIN notifications.preferences p ON p.user_id = s.user_id
        WHERE s.role IN ('instructor', 'admin')
        """
        )
    )


# --------------------------------------------------------------------------- deliveries


async def record_deliveries(
    conn: asyncpg.Connection,
    event_key: str,
    event_type: str,
    payload: bytes,
    urgency: str,
    subscription_ids: Sequence[uuid.UUID],
) -> int:
    """One pending push per subscription; an event recorded before (a redelivery) adds none."""
    if not subscription_ids:
        return 0
    status: str = await conn.execute(
        """
        INSERT INTO notifications.deliveries
            (event_key, subscription_id, event_type, payload, urgency)
        SELECT $1, s.id, $2, $3, $4
        FROM notifications.push_subscriptions s WHERE s.id = ANY($5::uuid[])
        ON CONFLICT (event_key, subscription_id) DO NOTHING
        """,
        event_key,
        event_type,
        payload,
        urgency,
        list(subscription_ids),
    )
    return int(status.rsplit(" ", 1)[-1])


async def claim_due(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[Row]:
    """Due pending pushes, now `sending` under this claim (index deliveries_due).

    `SKIP LOCKED`: instances claim disjoint rows; a row is sent by whoever claimed it.
    """
    return _rows(
        await conn.fetch(
            """
        WITH due AS (
            SELECT event_key, subscription_id FROM notifications.deliveries
            WHERE state = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE notifications.deliveries d
            SET state = 'sending', attempts = d.attempts + 1,
                first_attempt_at = COALESCE(d.first_attempt_at, now()),
                lease_until = now() + make_interval(secs => $2)
            FROM due
            WHERE d.event_key = due.event_key AND d.subscription_id = due.subscription_id
            RETURNING d.event_key, d.subscription_id, d.event_type, d.payload, d.urgency,
                      d.attempts, extract(epoch FROM now() - d.first_attempt_at) AS elapsed
        )
        SELECT c.*, s.endpoint, s.p256dh, s.auth
        FROM claimed c JOIN notifications.push_subscriptions s ON s.id = c.subscription_id
        """,
            limit,
            lease_seconds,
        )
    )


async def mark_sent(conn: asyncpg.Connection, event_key: str, subscription_id: uuid.UUID) -> None:
    await conn.execute(
        """
        WITH sent AS (
            UPDATE notifications.deliveries SET state = 'sent', lease_until = NULL
            WHERE event_key = $1 AND subscription_id = $2 RETURNING subscription_id
        )
        UPDATE notifications.push_subscriptions SET last_used_at = now()
        WHERE id IN (SELECT subscription_id FROM sent)
        """,
        event_key,
        subscription_id,
    )


async def mark_failed(conn: asyncpg.Connection, event_key: str, subscription_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE notifications.deliveries SET state = 'failed', lease_until = NULL"
        " WHERE event_key = $1 AND subscription_id = $2",
        event_key,
        subscription_id,
    )


async def schedule_retry(
    conn: asyncpg.Connection, event_key: str, subscription_id: uuid.UUID, delay: float
) -> None:
    await conn.execute(
        """
        UPDATE notifications.deliveries
        SET state = 'pending', lease_until = NULL,
            next_attempt_at = now() + make_interval(secs => $3)
        WHERE event_key = $1 AND subscription_id = $2
        """,
        event_key,
        subscription_id,
        delay,
    )


async def abandon_expired_claims(conn: asyncpg.Connection) -> int:
    """Claims whose sender died mid-request become `unknown` (index deliveries_sending).

    Never sent again: the push may have reached the browser, and a push is at most once.
    """
    status: str = await conn.execute(
        "UPDATE notifications.deliveries SET state = 'unknown', lease_until = NULL"
        " WHERE state = 'sending' AND lease_until < now()"
    )
    return int(status.rsplit(" ", 1)[-1])


async def prune_deliveries(conn: asyncpg.Connection, older_than: dt.timedelta) -> int:
    """Finished rows older than the longest redelivery window (index deliveries_created)."""
    status: str = await conn.execute(
        "DELETE FROM notifications.deliveries WHERE created_at < now() - $1::interval"
        " AND state IN ('sent', 'failed', 'unknown')",
        older_than,
    )
    return int(status.rsplit(" ", 1)[-1])


def _rows(rows: Any) -> list[Row]:
    return list(rows)


def as_dict(row: Row) -> dict[str, Any]:
    return dict(row.items())
