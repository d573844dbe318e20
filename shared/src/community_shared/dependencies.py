"""Which failures mean "a dependency is down" (SPEC §3: 503 with Retry-After).

Postgres, Redis or NATS (where a request needs it) being unreachable, restarting
or saturated is not a fault of the service: the request changed nothing, and
the client should try again shortly. `unavailable_dependency` recognises the
errors the client libraries raise for that, so the one error handler of the
shared web plumbing answers 503 for every service alike. A use case that finds
a dependency unusable in its own terms (rate limits that cannot be checked,
boards being rebuilt) raises `DependencyUnavailable`.

Pure: no I/O, only the classification.
"""

from __future__ import annotations

import errno
import socket

import asyncpg
import nats.errors
import nats.js.errors
import redis.exceptions

DEFAULT_RETRY_AFTER = 1
"""Seconds a client is told to wait before retrying (`Retry-After`)."""


class DependencyUnavailable(Exception):
    """`dependency` cannot serve this request now; nothing was changed."""

    def __init__(self, dependency: str, detail: str, *, retry_after: int = DEFAULT_RETRY_AFTER):
        super().__init__(detail)
        self.dependency = dependency
        self.detail = detail
        self.retry_after = retry_after


_POSTGRES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # includes "connection was closed in the middle of operation"
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection the server closed mid-operation (a restart, a failover) is
    # left in a state asyncpg reports as "cannot switch to state ...; another
    # operation is in progress" on its next use, or as "connection is closed".
    asyncpg.InternalClientError,
    asyncpg.ConnectionDoesNotExistError,
)
_REDIS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError
    redis.exceptions.TimeoutError,
)
_NATS: tuple[type[BaseException], ...] = (
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
)


def unavailable_dependency(exc: BaseException) -> str | None:
    """The dependency whose unavailability `exc` reports (`postgres`, `redis`,
    `nats`, or `network` for a bare socket error or timeout), or None when `exc`
    is anything else (a genuine fault). An exception group counts when all its
    members do; an exception raised `from` one that counts, counts."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _classify(current)
        if found is not None:
            return found
        current = current.__cause__
    return None


def _classify(exc: BaseException) -> str | None:
    if isinstance(exc, DependencyUnavailable):
        return exc.dependency
    if isinstance(exc, BaseExceptionGroup):
        kinds = {unavailable_dependency(e) for e in exc.exceptions}
        return None if None in kinds else ", ".join(sorted(k for k in kinds if k))
    if isinstance(exc, _POSTGRES):
        return "postgres"
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return "postgres"
    if isinstance(exc, _REDIS):
        return "redis"
    if isinstance(exc, _NATS):
        return "nats"
    # Refused or reset connections, a pool that waited too long for a
    # connection, a command that timed out: some dependency did not answer.
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return "network"
    if isinstance(exc, OSError) and (exc.errno is None or exc.errno in _NETWORK_ERRNOS):
        return "network"  # e.g. "Multiple exceptions: Connect call failed ..."
    return None


_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def retry_after_of(exc: BaseException) -> int:
    """Whole seconds to tell the client to wait."""
    return exc.retry_after if isinstance(exc, DependencyUnavailable) else DEFAULT_RETRY_AFTER
