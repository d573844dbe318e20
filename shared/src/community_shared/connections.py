"""Connection helpers for Postgres, NATS and Redis.

NATS connections retry forever in the background: a service starts and accepts
writes while NATS is down (the outbox holds the events) and catches up when it
returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import nats
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from community_shared.settings import Settings

log = logging.getLogger(__name__)


SERVER_SETTINGS = {"jit": "off"}
"""Session settings of every service connection. Postgres's JIT compiler pays
off for long analytic queries; for the short statements the services run it
only adds compile time (hundreds of ms on a query the planner overestimates,
such as the leaderboard's per-student window sums), so it is off."""


async def create_pool(settings: Settings, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        timeout=5,  # to connect: a Postgres that does not answer is a 503, not a hang
        server_settings=SERVER_SETTINGS,
    )
    assert pool is not None
    return pool


async def connect_nats(settings: Settings, *, name: str | None = None) -> NATS:
    """Connect to NATS, waiting until it answers; reconnects forever afterwards."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def on_disconnect() -> None:
        log.warning("nats disconnected")

    async def on_reconnect() -> None:
        log.info("nats reconnected")

    options: dict[str, Any] = {
        "servers": settings.nats_servers,
        "name": name or settings.service,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
        "allow_reconnect": True,
        "error_cb": on_error,
        "disconnected_cb": on_disconnect,
        "reconnected_cb": on_reconnect,
        "pending_size": 64 * 1024 * 1024,
    }
    while True:
        try:
            return await nats.connect(**options)
        except Exception as exc:  # not reachable yet: keep trying
            log.warning("nats not reachable at %s (%s); retrying", settings.nats_url, exc)
            await asyncio.sleep(1.0)


def create_redis(settings: Settings) -> aioredis.Redis:
    """A Redis client with a plain (non-blocking) connection pool and short timeouts.

    After Redis restarts, every pooled connection is dead. A command on one is
    retried once on a fresh connection (`retry`), and a connection idle for
    `health_check_interval` seconds is checked with a PING before use, so a
    restart costs no failed request once Redis answers again. While Redis is
    down a command fails within about a second (connect timeout, one retry),
    which the web plumbing answers with 503; redis-py's default (ten retries
    with backoff) would hold a request for seconds.
    """
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        max_connections=200,
        decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        health_check_interval=5,
    )
