"""HTTP plumbing shared by the services: the app factory and its runtime.

`create_service_app` builds a Litestar app with everything a service has in
common: the lifespan that opens the Postgres pool, applies migrations,
connects NATS in the background (a service accepts writes while NATS is down;
the outbox keeps the events), runs the outbox relay, and closes everything on
shutdown; `/health`, `/ready` and `/metrics`; the identity dependency; request
ids; JSON errors that never turn a client's mistake into a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ASGIApp, ControllerRouterHandler, Receive, Scope, Send
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from community_shared.auth import Identity, InvalidToken, identity_from_authorization
from community_shared.collector import freeze_startup, tune_collector
from community_shared.connections import connect_nats, create_pool, create_redis
from community_shared.dependencies import (
    DependencyUnavailable,
    retry_after_of,
    unavailable_dependency,
)
from community_shared.logs import configure_logging, request_id_var
from community_shared.metrics import DEPENDENCY_ERRORS
from community_shared.migrations import migrate, migrations_for, pending
from community_shared.outbox import OutboxRelay, jetstream_publisher
from community_shared.settings import Settings
from community_shared.streams import ensure_event_stream
from community_shared.tasks import stop_tasks

log = logging.getLogger(__name__)

NatsHook = Callable[["Runtime"], Awaitable[None]]


@dataclass
class Runtime:
    """What a running service holds: settings and its live connections."""

    settings: Settings
    schema: str
    migrations_dir: Path
    pool: asyncpg.Pool | None = None
    nats: NATS | None = None
    js: JetStreamContext | None = None
    redis: aioredis.Redis | None = None
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    readiness: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    """A service's own readiness conditions: name → why not ready (None: ready)."""
    nats_ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "the service is not started"
        return self.pool

    def jetstream(self) -> JetStreamContext:
        if self.js is None:
            raise ConnectionError("NATS is not connected")
        return self.js


def runtime_of(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


async def provide_runtime(state: State) -> Runtime:
    return runtime_of(state)


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    """The caller: a verified token's identity, or the guest. Bad token → 401."""
    runtime = runtime_of(connection.app.state)
    try:
        return identity_from_authorization(
            connection.headers.get("authorization"), runtime.settings.jwt_secret
        )
    except InvalidToken as exc:
        raise NotAuthorizedException(detail=f"invalid token: {exc}") from exc


async def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    return identity_of(request)


# Route guards: they refuse before the request body is even read, so a caller
# without the right gets 401/403 whatever the body holds.


def students_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """401 for guests, 403 for instructors and admins."""
    require_student(identity_of(connection))


def moderators_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """401 for guests, 403 for students."""
    require_moderator(identity_of(connection))


def signed_in_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """401 for guests."""
    require_user(identity_of(connection))


def require_user(identity: Identity) -> uuid.UUID:
    """401 for guests; the caller's id otherwise."""
    if identity.user_id is None:
        raise NotAuthorizedException(detail="authentication required")
    return identity.user_id


def require_member(identity: Identity) -> uuid.UUID:
    """401 for guests, 403 for students without an active membership."""
    user_id = require_user(identity)
    if not identity.is_member:
        raise PermissionDeniedException(detail="an active membership is required")
    return user_id


def require_moderator(identity: Identity) -> uuid.UUID:
    """401 for guests, 403 unless instructor or admin."""
    user_id = require_user(identity)
    if not identity.is_moderator:
        raise PermissionDeniedException(detail="instructors and admins only")
    return user_id


def require_student(identity: Identity) -> uuid.UUID:
    """401 for guests, 403 for instructors and admins (student-only routes)."""
    user_id = require_user(identity)
    if not identity.is_student:
        raise PermissionDeniedException(detail="students only")
    return user_id


class RequestIdMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"x-request-id", b"")[:64]
        request_id = raw.decode("latin-1") if raw else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Turn any exception into the JSON error shape of SPEC §3.

    HTTP exceptions keep their status; anything else is a genuine server fault,
    logged with its traceback.
    """
    if isinstance(exc, HTTPException):
        body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(
            body, status_code=exc.status_code, headers=exc.headers, media_type=MediaType.JSON
        )
    if isinstance(exc, UnicodeDecodeError | msgspec.DecodeError | msgspec.ValidationError):
        # A body that is not UTF-8 JSON of the expected shape, caught outside a
        # handler's own validation: the client's mistake, never a 500.
        return Response(
            {"status_code": 400, "detail": f"invalid request body: {exc}"},
            status_code=400,
            media_type=MediaType.JSON,
        )
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        # Postgres, Redis or NATS is down, restarting or saturated: nothing was
        # applied, try again (SPEC §3). One mapping for every service.
        log.warning(
            "%s unavailable on %s %s: %s",
            dependency,
            request.method,
            request.url.path,
            str(exc) or type(exc).__name__,
        )
        DEPENDENCY_ERRORS.labels(dependency=dependency, operation="request").inc()
        detail = (
            exc.detail
            if isinstance(exc, DependencyUnavailable)
            else f"service temporarily unavailable ({dependency}), retry shortly"
        )
        return Response(
            {"status_code": 503, "detail": detail},
            status_code=503,
            headers={"Retry-After": str(retry_after_of(exc))},
            media_type=MediaType.JSON,
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(
        {"status_code": 500, "detail": "internal server error"},
        status_code=500,
        media_type=MediaType.JSON,
    )


def _health_handlers(uses_redis: bool) -> list[ControllerRouterHandler]:
    @get("/health", include_in_schema=False, sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", include_in_schema=False)
    async def ready(state: State) -> Response[dict[str, Any]]:
        runtime = runtime_of(state)
        failing: dict[str, str] = {}
        try:
            async with runtime.db.acquire(timeout=1) as conn:
                todo = await pending(conn, runtime.schema, migrations_for(runtime.migrations_dir))
            if todo:
                failing["migrations"] = f"pending: {', '.join(todo)}"
        except Exception as exc:
            failing["postgres"] = str(exc) or type(exc).__name__
        if runtime.nats is None or not runtime.nats.is_connected:
            failing["nats"] = "not connected"
        if uses_redis:
            try:
                assert runtime.redis is not None
                await runtime.redis.ping()
            except Exception as exc:
                failing["redis"] = str(exc) or type(exc).__name__
        for name, why_not in runtime.readiness.items():
            problem = why_not()
            if problem is not None:
                failing[name] = problem
        if failing:
            return Response(
                {
                    "status": "unavailable",
                    "failing": failing,
                    "status_code": 503,
                    "detail": "not ready: " + ", ".join(sorted(failing)),
                },
                status_code=503,
            )
        return Response({"status": "ready"}, status_code=200)

    return [health, ready]


def create_service_app(
    settings: Settings,
    *,
    schema: str,
    migrations_dir: Path,
    route_handlers: Sequence[ControllerRouterHandler],
    title: str,
    uses_redis: bool = False,
    on_nats_ready: Sequence[NatsHook] = (),
    on_startup: Sequence[Callable[[Runtime], Awaitable[None]]] = (),
    dependencies: dict[str, Provide] | None = None,
) -> Litestar:
    """Build a service app. Nothing connects until the app's lifespan starts.

    `on_nats_ready` hooks (consumers, RPC responders) run once NATS answers,
    which may be after start-up; `on_startup` hooks run after migrations.
    Background tasks and closers registered on the runtime are stopped on
    shutdown.
    """
    configure_logging(settings.service, settings.log_level)
    runtime = Runtime(settings=settings, schema=schema, migrations_dir=migrations_dir)

    async def connect_nats_in_background() -> None:
        nc = await connect_nats(settings)
        runtime.nats = nc
        js = nc.jetstream()
        while True:
            try:
                await ensure_event_stream(js, settings)
                break
            except Exception:
                log.warning("cannot set up the event stream yet; retrying", exc_info=True)
                await asyncio.sleep(1)
        runtime.js = js
        for hook in on_nats_ready:
            await hook(runtime)
        runtime.nats_ready.set()
        if runtime.relay is not None:
            runtime.relay.wake()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.runtime = runtime
        runtime.pool = await create_pool(settings, min_size=1, max_size=settings.db_pool_max_size)
        if settings.run_migrations:
            async with runtime.pool.acquire() as conn:
                applied = await migrate(conn, schema, migrations_for(migrations_dir))
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        if uses_redis:
            runtime.redis = create_redis(settings)

        async def publish(subject: str, payload: bytes, msg_id: str) -> None:
            await jetstream_publisher(runtime.jetstream(), settings)(subject, payload, msg_id)

        runtime.relay = OutboxRelay(
            runtime.pool,
            schema,
            publish,
            listen_dsn=settings.database_url,
            poll_seconds=settings.outbox_poll_seconds,
        )
        await runtime.relay.start()
        runtime.tasks.append(asyncio.create_task(connect_nats_in_background()))
        for hook in on_startup:
            await hook(runtime)
        try:
            yield
        finally:
            tasks, runtime.tasks = runtime.tasks, []
            await stop_tasks(*tasks)
            for close in reversed(runtime.closers):
                with contextlib.suppress(Exception):
                    await close()
            runtime.closers.clear()
            await runtime.relay.stop()
            if runtime.nats is not None:
                with contextlib.suppress(Exception):
                    await runtime.nats.drain()
                runtime.nats, runtime.js = None, None
            runtime.nats_ready.clear()
            if runtime.redis is not None:
                await runtime.redis.aclose()
                runtime.redis = None
            await runtime.pool.close()
            runtime.pool = None

    prometheus = PrometheusConfig(
        app_name=settings.service, prefix="community", group_path=True, exclude=["/metrics"]
    )
    deps: dict[str, Provide] = {
        "identity": Provide(provide_identity),
        "runtime": Provide(provide_runtime),
    }
    deps.update(dependencies or {})
    return Litestar(
        route_handlers=[*route_handlers, *_health_handlers(uses_redis), PrometheusController],
        lifespan=[lifespan],
        dependencies=deps,
        middleware=[RequestIdMiddleware(), prometheus.middleware],
        exception_handlers={Exception: _error_response},
        openapi_config=OpenAPIConfig(title=title, version="1.0.0", path="/schema"),
        cors_config=CORSConfig(allow_origins=["*"], allow_headers=["*"], allow_methods=["*"]),
        request_max_body_size=256 * 1024,
        debug=False,
        logging_config=None,  # keep the JSON logs configured above
    )


def run(app_factory: Callable[[Settings], Litestar], settings: Settings) -> None:
    """Serve an app with uvicorn (uvloop, httptools) on the configured host and port,
    the garbage collector tuned for a long-running process (`collector`)."""
    import uvicorn

    tune_collector()
    app = app_factory(settings)
    freeze_startup()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
