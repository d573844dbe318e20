"""Fixtures for the real services, written once for the whole suite.

Postgres, NATS (JetStream) and Redis are used at the configured URLs
(`DATABASE_URL`'s server, `NATS_URL`, `REDIS_URL`) when they answer. Otherwise,
where a Docker engine is available, throwaway containers are started with the
`docker` SDK; otherwise the run stops with a message naming the missing service
and how to start it.

Isolation without slowing the suite: one fresh database per test session (every
service migrates its own schema into it once), one NATS subject and stream
prefix per session, one Redis key prefix per session. Tests that need an empty
table truncate it; everything else uses fresh user ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import asyncpg
import msgspec
import nats
import pytest
import redis.asyncio as aioredis
from community_shared.auth import issue_token
from community_shared.settings import Settings

JWT_SECRET = "test-secret-not-for-production-use-only"
# One id per test run, stable even if this module is imported twice.
RUN_ID = os.environ.setdefault("COMMUNITY_TEST_RUN_ID", f"t{uuid.uuid4().hex[:10]}")

SERVICE_PORTS = {
    "posts": 8001,
    "resources": 8002,
    "goals": 8003,
    "leaderboard": 8004,
    "notifications": 8005,
}


# --------------------------------------------------------------------------- infra


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


HOW_TO_START = {
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''",
    "nats": "nats-server -a 127.0.0.1 -p 4222 -js &",
}


@dataclass(frozen=True)
class Infra:
    admin_dsn: str  # a DSN of the server's maintenance database, without the db name
    nats_url: str
    redis_url: str


def _docker_start(missing: list[str]) -> dict[str, str]:
    """Start throwaway containers for the missing services; return their URLs."""
    import docker  # only where a Docker engine is around

    client = docker.from_env()
    client.ping()
    urls: dict[str, str] = {}
    images = {
        "postgres": ("postgres:16-alpine", 5432, {"POSTGRES_HOST_AUTH_METHOD": "trust"}, None),
        "nats": ("nats:2.10-alpine", 4222, {}, ["-js"]),
        "redis": ("redis:7-alpine", 6379, {}, None),
    }
    for name in missing:
        image, port, env, command = images[name]
        container = client.containers.run(
            image,
            command=command,
            environment=env,
            ports={f"{port}/tcp": None},
            detach=True,
            remove=True,
            labels={"community-live-tests": RUN_ID},
        )
        container.reload()
        host_port = container.ports[f"{port}/tcp"][0]["HostPort"]
        scheme = {"postgres": "postgresql://postgres@", "nats": "nats://", "redis": "redis://"}
        urls[name] = f"{scheme[name]}127.0.0.1:{host_port}" + (
            "/postgres" if name == "postgres" else ""
        )
        deadline = time.time() + 30
        while not _answers(urls[name], port) and time.time() < deadline:
            time.sleep(0.3)
        if name == "postgres":
            time.sleep(2)
    return urls


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/community")
    nats_url = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    missing = [
        name
        for name, url, port in (
            ("postgres", database_url, 5432),
            ("nats", nats_url, 4222),
            ("redis", redis_url, 6379),
        )
        if not _answers(url, port)
    ]
    if missing:
        try:
            started = _docker_start(missing)
        except Exception as exc:
            lines = [
                f"  {name}: not reachable; start it with: {HOW_TO_START[name]}" for name in missing
            ]
            pytest.exit(
                "real services missing and no Docker engine to start them "
                f"({type(exc).__name__}):\n" + "\n".join(lines),
                returncode=3,
            )
        database_url = started.get("postgres", database_url)
        nats_url = started.get("nats", nats_url)
        redis_url = started.get("redis", redis_url)
    base = database_url.rsplit("/", 1)[0]
    yield Infra(admin_dsn=base, nats_url=nats_url, redis_url=redis_url)


@pytest.fixture(scope="session")
async def database_url(infra: Infra) -> AsyncIterator[str]:
    """A fresh database for this test session, dropped at the end."""
    name = f"cl_{RUN_ID}"
    admin = await asyncpg.connect(f"{infra.admin_dsn}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield f"{infra.admin_dsn}/{name}"
    admin = await asyncpg.connect(f"{infra.admin_dsn}/postgres")
    with contextlib.suppress(Exception):
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(infra: Infra) -> AsyncIterator[str]:
    """Another database of this session's server, for an app whose data (or outbox)
    must stay apart from the session's; dropped on exit."""
    name = f"cl_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{infra.admin_dsn}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"{infra.admin_dsn}/{name}"
    finally:
        admin = await asyncpg.connect(f"{infra.admin_dsn}/postgres")
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def settings_for(infra: Infra, database_url: str) -> Callable[..., Settings]:
    """Settings for a component of this test session (shared prefixes and database)."""

    def make(service: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "nats_url": infra.nats_url,
            "redis_url": infra.redis_url,
            "jwt_secret": JWT_SECRET,
            "nats_subject_prefix": f"{RUN_ID}.",
            "redis_key_prefix": f"{RUN_ID}:",
            "port": 0,
            "outbox_poll_seconds": 0.5,
            # Many apps share one Postgres in a test run; keep each pool small.
            "db_pool_max_size": 6,
        }
        values.update(overrides)
        return Settings.from_env(service, SERVICE_PORTS.get(service, 8000), **values)

    return make


@pytest.fixture(scope="session")
async def nats_client(infra: Infra) -> AsyncIterator[nats.aio.client.Client]:
    nc = await nats.connect(infra.nats_url)
    yield nc
    js = nc.jetstream()
    # Remove this session's streams (they are all prefixed with RUN_ID).
    with contextlib.suppress(Exception):
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(RUN_ID):
                await js.delete_stream(info.config.name)
    await nc.drain()


@pytest.fixture(scope="session")
async def redis_client(infra: Infra) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(infra.redis_url)
    yield client
    async for key in client.scan_iter(match=f"{RUN_ID}:*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the session database, for assertions on what was (not) written."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def outbox_schema(db: asyncpg.Pool) -> str:
    """A fresh schema with only the tables every service shares (the outbox)."""
    from community_shared.migrations import SHARED_MIGRATIONS, load_migrations, migrate

    name = f"obx_{uuid.uuid4().hex[:12]}"
    async with db.acquire() as conn:
        await migrate(conn, name, load_migrations(SHARED_MIGRATIONS, namespace="shared:"))
    return name


# --------------------------------------------------------------------------- users


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    role: str
    name: str
    token: str
    member: bool = True

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(
    role: str = "student", name: str | None = None, *, member: bool | None = None, ttl: int = 3600
) -> User:
    user_id = uuid.uuid4()
    name = name or f"{role.title()} {user_id.hex[:6]}"
    token = issue_token(
        sub=user_id, role=role, name=name, secret=JWT_SECRET, ttl_seconds=ttl, member=member
    )
    return User(
        id=user_id, role=role, name=name, token=token, member=member if member is not None else True
    )


@pytest.fixture
def student() -> User:
    return make_user("student")


@pytest.fixture
def other_student() -> User:
    return make_user("student")


@pytest.fixture
def non_member() -> User:
    return make_user("student", member=False)


@pytest.fixture
def instructor() -> User:
    return make_user("instructor")


@pytest.fixture
def admin() -> User:
    return make_user("admin")


# --------------------------------------------------------------------------- services


async def _service_client(
    name: str, settings_for: Callable[..., Settings], nats_client: Any, redis_client: Any
) -> AsyncIterator[Any]:
    """Serve a service app on the test's own loop for the whole session.

    Requests go through `httpx.ASGITransport`, so requests gathered with
    `asyncio.gather` really run concurrently, and the app's relay and NATS
    hooks share the loop with the test's websocket clients and gateways.
    """
    from tests.harness import serve_for_a_session

    module = importlib.import_module(f"community_{name}.app")
    async for client in serve_for_a_session(module.create_app(settings_for(name))):
        yield client


@pytest.fixture(scope="session")
async def posts_client(settings_for, nats_client, redis_client):  # type: ignore[no-untyped-def]
    async for client in _service_client("posts", settings_for, nats_client, redis_client):
        yield client


@pytest.fixture(scope="session")
async def goals_client(settings_for, nats_client, redis_client):  # type: ignore[no-untyped-def]
    async for client in _service_client("goals", settings_for, nats_client, redis_client):
        yield client


@pytest.fixture(scope="session")
async def resources_client(settings_for, nats_client, redis_client):  # type: ignore[no-untyped-def]
    async for client in _service_client("resources", settings_for, nats_client, redis_client):
        yield client


@pytest.fixture(scope="session")
async def leaderboard_client(settings_for, nats_client, redis_client):  # type: ignore[no-untyped-def]
    async for client in _service_client("leaderboard", settings_for, nats_client, redis_client):
        yield client


@pytest.fixture(scope="session")
async def notifications_client(settings_for, nats_client, redis_client, gateway):  # type: ignore[no-untyped-def]
    """With the session's gateway, whose router fills the channel streams it reads, and
    `http://` push endpoints on loopback allowed (the local push service)."""
    from community_notifications.app import create_app
    from community_notifications.config import NotificationsConfig

    from tests.harness import serve_for_a_session

    config = NotificationsConfig(allow_insecure_endpoints=True, poll_seconds=0.2)
    async for client in serve_for_a_session(create_app(settings_for("notifications"), config)):
        yield client


@pytest.fixture
def clients(
    posts_client: Any,
    resources_client: Any,
    goals_client: Any,
    leaderboard_client: Any,
    notifications_client: Any,
) -> dict[str, Any]:
    """The session's app of each service, by service name."""
    return {
        "posts": posts_client,
        "resources": resources_client,
        "goals": goals_client,
        "leaderboard": leaderboard_client,
        "notifications": notifications_client,
    }


# --------------------------------------------------------------------------- helpers


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 5.0, interval: float = 0.05
) -> None:
    """Wait until `check()` is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def json_of(payload: bytes) -> Any:
    return msgspec.json.decode(payload)


# --------------------------------------------------------------------------- gateway


@pytest.fixture(scope="session")
async def gateway(settings_for, nats_client, redis_client):  # type: ignore[no-untyped-def]
    """A started gateway instance for the whole session (`gateway.url`, `gateway.port`)."""
    from community_gateway.server import GatewayServer

    server = GatewayServer(settings_for("gateway"))
    await asyncio.wait_for(server.start(), timeout=30)
    yield server
    await server.stop()


@pytest.fixture
async def gateway_factory(settings_for, gateway):  # type: ignore[no-untyped-def]
    """Start extra gateway instances (`await gateway_factory(config=GatewayConfig(...))`).

    They share the session's streams and router with `gateway`; each is stopped
    at the end of the test (stopping one yourself first is fine).
    """
    from community_gateway.server import GatewayServer

    started: list[Any] = []

    async def start(config: Any = None, **settings_overrides: Any) -> Any:
        server = GatewayServer(settings_for("gateway", **settings_overrides), config)
        await asyncio.wait_for(server.start(), timeout=30)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


class WsClient:
    """A test's websocket connection to a gateway; frames are dicts.

    `hello` holds the server's first frame. Frames skipped by `recv_until`
    are kept in `skipped` so a test can still look at them.
    """

    def __init__(self, connection: Any, hello: dict[str, Any]) -> None:
        self.connection = connection
        self.hello = hello
        self.skipped: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(msgspec.json.encode(frame).decode())

    async def send_raw(self, message: str | bytes) -> None:
        await self.connection.send(message)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        try:
            message = await asyncio.wait_for(self.connection.recv(), timeout)
        except TimeoutError:
            raise AssertionError(f"no frame within {timeout}s") from None
        frame: dict[str, Any] = msgspec.json.decode(message)
        return frame

    async def recv_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first frame satisfying `predicate`; earlier frames go to `skipped`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout}s")
            frame = await self.recv(remaining)
            if predicate(frame):
                return frame
            self.skipped.append(frame)

    async def drain(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Every frame that arrives until none has come for `quiet` seconds."""
        frames: list[dict[str, Any]] = []
        while True:
            try:
                message = await asyncio.wait_for(self.connection.recv(), quiet)
            except TimeoutError:
                return frames
            frames.append(msgspec.json.decode(message))

    async def request(self, frame: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an op with a fresh `id` and return the answer carrying that id."""
        op_id = uuid.uuid4().hex[:8]
        await self.send({**frame, "id": op_id})
        return await self.recv_until(lambda f: f.get("id") == op_id, timeout)

    async def subscribe(
        self, channel: str, since: int | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Subscribe and return the answer (`subscribed`, or an `error`)."""
        frame: dict[str, Any] = {"op": "subscribe", "channel": channel}
        if since is not None:
            frame["since"] = since
        return await self.request(frame, timeout)

    async def events(self, channel: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next `count` event frames of `channel` (other frames go to `skipped`)."""
        return [
            await self.recv_until(
                lambda f: f.get("op") == "event" and f.get("channel") == channel, timeout
            )
            for _ in range(count)
        ]

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                await asyncio.wait_for(self.connection.recv(), deadline - time.monotonic())
        except ConnectionClosed:
            pass
        except TimeoutError:
            raise AssertionError(f"connection still open after {timeout}s") from None
        rcvd = self.connection.protocol.close_rcvd
        return None if rcvd is None else int(rcvd.code)


@contextlib.asynccontextmanager
async def open_ws(
    target: Any,
    token: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **connect_options: Any,
) -> AsyncIterator[WsClient]:
    """Connect to a gateway (a started GatewayServer or a ws:// URL) and read its `hello`.

    `token` goes in `?token=`; pass `headers={"Authorization": ...}` for the
    header form. A refused handshake raises websockets' `InvalidStatus`.
    """
    from urllib.parse import quote

    from websockets.asyncio.client import connect

    url = target if isinstance(target, str) else target.url
    if token is not None:
        url = f"{url}?token={quote(token)}"
    connect_options.setdefault("open_timeout", 5)
    async with connect(url, additional_headers=headers, **connect_options) as connection:
        message = await asyncio.wait_for(connection.recv(), 5)
        hello = msgspec.json.decode(message)
        assert hello.get("op") == "hello", hello
        yield WsClient(connection, hello)


@pytest.fixture(scope="session")
def ws_connect() -> Callable[..., Any]:
    """`async with ws_connect(gateway, user.token) as ws:` — see `open_ws`."""
    return open_ws


@pytest.fixture
async def nats_server() -> AsyncIterator[Any]:
    """A throwaway `nats-server -js` on a free port, started; a test may stop and restart it."""
    from tests.harness import NatsServer

    server = NatsServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        shutil.rmtree(server.store, ignore_errors=True)
