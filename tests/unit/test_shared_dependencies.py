"""Which errors mean a dependency is down (503 with Retry-After), and which are faults."""

from __future__ import annotations

import asyncpg
import nats.errors
import nats.js.errors
import pytest
import redis.exceptions
from community_shared.dependencies import (
    DependencyUnavailable,
    retry_after_of,
    unavailable_dependency,
)


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (asyncpg.CannotConnectNowError("the database system is starting up"), "postgres"),
        (asyncpg.TooManyConnectionsError("too many clients"), "postgres"),
        (asyncpg.AdminShutdownError("terminating connection"), "postgres"),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), "postgres"),
        (asyncpg.InternalClientError("cannot switch to state 15"), "postgres"),
        (asyncpg.InterfaceError("cannot perform operation: connection is closed"), "postgres"),
        (redis.exceptions.ConnectionError("Connection refused"), "redis"),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), "redis"),
        (redis.exceptions.BusyLoadingError("loading the dataset"), "redis"),
        (nats.errors.NoRespondersError(), "nats"),
        (nats.errors.TimeoutError(), "nats"),
        (nats.errors.ConnectionClosedError(), "nats"),
        (nats.js.errors.ServiceUnavailableError(), "nats"),
        (ConnectionRefusedError(111, "Connect call failed"), "network"),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed"), "network"),
        (TimeoutError(), "network"),  # a pool that waited too long
        (DependencyUnavailable("redis", "rate limits cannot be checked"), "redis"),
    ],
)
def test_dependency_errors_are_recognised(exc: BaseException, dependency: str) -> None:
    assert unavailable_dependency(exc) == dependency


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        asyncpg.InterfaceError("the server does not support the COPY protocol"),
        KeyError("missing"),
        FileNotFoundError(2, "No such file"),
        redis.exceptions.ResponseError("WRONGTYPE"),
        asyncpg.UniqueViolationError("duplicate key"),
        ExceptionGroup("mixed", [redis.exceptions.ConnectionError(), ValueError()]),
    ],
)
def test_other_errors_stay_faults(exc: BaseException) -> None:
    assert unavailable_dependency(exc) is None


def test_a_wrapped_dependency_error_counts() -> None:
    try:
        try:
            raise redis.exceptions.ConnectionError("down")
        except redis.exceptions.ConnectionError as inner:
            raise RuntimeError("could not read the board") from inner
    except RuntimeError as outer:
        assert unavailable_dependency(outer) == "redis"
    group = ExceptionGroup("all down", [asyncpg.CannotConnectNowError(), TimeoutError()])
    assert unavailable_dependency(group) == "network, postgres"


def test_retry_after() -> None:
    assert retry_after_of(redis.exceptions.ConnectionError()) == 1
    assert retry_after_of(DependencyUnavailable("redis", "rebuilding", retry_after=3)) == 3
