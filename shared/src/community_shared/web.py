"""HTTP plumbing shared by the services: the app factory and its runtime.

`create_service_app` builds a Litestar app with everything a service has in
common: the lifespan that opens the Postgres pool, applies migrations,
connects NATS in the background (a service accepts writes while NATS is down;
the outbox keeps the events), runs the outbox relay, and closes everything on
shutdown; `/health`, `/ready` and `/metrics`; the identity (decoded once per
request), idempotency-key and list-page dependencies; the service's use cases as a
dependency (`services=`, built once at start-up); request bodies decoded
strictly into the handler's `data` type; request ids; the one exception
handler, which turns domain errors (`errors`) and every other failure into the
JSON error of SPEC §3 and never a client's mistake into a 500; CORS; and the
OpenAPI document, in which each route states what it answers with `answers`.

Longer than most modules (~760 lines) on purpose: it is the one app factory
every service is built with, and splitting its lifespan, dependencies and
error handling would give a reader several places to look for one request's
path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

import asyncpg
import msgspec
import redis.asyncio as aioredis
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi.spec import SecurityRequirement
from litestar.params import FromPath, HeaderParameter
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.routes import HTTPRoute
from litestar.types import (
    ASGIApp,
    ControllerRouterHandler,
    Guard,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from community_shared.access import require_member as require_member
from community_shared.access import require_moderator as require_moderator
from community_shared.access import require_student as require_student
from community_shared.access import require_user as require_user
from community_shared.auth import Identity, InvalidToken, identity_from_authorization
from community_shared.collector import freeze_startup, tune_collector
from community_shared.connections import connect_nats, create_pool, create_redis
from community_shared.dependencies import (
    DependencyUnavailable,
    retry_after_of,
    unavailable_dependency,
)
from community_shared.errors import DomainError, Unauthenticated
from community_shared.idempotency import (
    HEADER,
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    IdempotencyKey,
    KeyInUse,
    KeyReused,
    Replay,
    expire_keys,
    fingerprint,
)
from community_shared.jsonin import MAX_DEPTH, decode_json, exceeds_depth
from community_shared.logs import configure_logging, request_id_var
from community_shared.metrics import DEPENDENCY_ERRORS
from community_shared.migrations import migrate, migrations_for, pending
from community_shared.openapi import (
    GUEST_OR_SIGNED_IN_SECURITY,
    SIGNED_IN_SECURITY,
    error_response,
    finish_document,
    openapi_config,
)
from community_shared.outbox import OutboxRelay, jetstream_publisher, one_by_one, pipelined
from community_shared.pagination import DEFAULT_LIMIT, Cursor, Limit, PageRequest, parse_limit
from community_shared.ratelimit import SlidingWindowLimiter
from community_shared.settings import Settings
from community_shared.streams import ensure_event_stream
from community_shared.tasks import stop_tasks
from community_shared.unit_of_work import Database

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
    services: dict[str, Any] = field(default_factory=dict)
    """The use cases each service provides (`create_service_app(services=...)`), by name."""

    def database(self, source: str, *, rate_limited: bool = False) -> Database:
        """The service's schema as units of work; `rate_limited`: with the Redis
        rate limiter (`UnitOfWork.take`)."""
        limiter = None
        if rate_limited:
            assert self.redis is not None, "rate limits need the service to use Redis"
            limiter = SlidingWindowLimiter(self.redis, self.settings)
        return Database(self.db, self.schema, source, limiter)

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


async def provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    return runtime_of(request.app.state)


_IDENTITY: Final = "community.identity"


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    """The caller: a verified token's identity, or the guest. Bad token → 401.

    Decoded once per request (the guard and the `identity` dependency share it).
    """
    state: dict[str, Any] | None = connection.scope.get("state")
    if state is not None and isinstance(known := state.get(_IDENTITY), Identity):
        return known
    runtime = runtime_of(connection.app.state)
    try:
        identity = identity_from_authorization(
            connection.headers.get("authorization"), runtime.settings.jwt_secret
        )
    except InvalidToken as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    if state is not None:
        state[_IDENTITY] = identity
    return identity


async def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    return identity_of(request)


IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=KEY_PATTERN,
        description=(
            "Makes a retry safe: repeating the key (same caller, same route, within 24 hours)"
            f" answers the first response again, with `{REPLAYED_HEADER}: true`, and creates"
            " nothing; the key with a different body is 422. 1..128 printable ASCII characters."
        ),
    ),
]


async def provide_idempotency(
    request: Request[Any, Any, Any],
    identity: NamedDependency[Identity],
    idempotency_key: IdempotencyKeyHeader = None,
) -> IdempotencyKey | None:
    """The request's `Idempotency-Key`, scoped to the caller and route (None without one).

    A malformed key is a 400 before anything runs. Only routes that create
    something declare the `idempotency` dependency; they all require a
    signed-in caller (their guards ran before this).
    """
    if idempotency_key is None:
        return None
    return IdempotencyKey(
        user_id=require_user(identity),
        route=f"{request.method} {request.url.path.rstrip('/')}",
        key=idempotency_key,
        fingerprint=fingerprint(await request.body()),
    )


def provide_page(
    identity: NamedDependency[Identity], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> PageRequest:
    """The `page` dependency: a list route's `cursor` and `limit` query parameters.

    It takes `identity` (and ignores it) to be resolved after the identity and
    the use cases, on its own: Litestar resolves the dependencies that depend
    on nothing together, each in a task of its own, and one more such task
    cost the feed's pages ~3% more instructions (docs/benchmarks.md, "One way
    to page"); a dependency resolved on its own is awaited directly.
    """
    return PageRequest(cursor, parse_limit(limit))


# What a handler declares to receive (the same names in every service).
Caller = NamedDependency[Identity]
"""The caller's identity (verified once per request; the guest without a token)."""
Idempotency = NamedDependency[IdempotencyKey | None]
"""The request's `Idempotency-Key`, on routes that create something."""
PathId = FromPath[uuid.UUID]
"""A UUID path parameter (`/{post_id:uuid}`)."""
PageQuery = NamedDependency[PageRequest]
"""The page a list route is asked for (`cursor` and `limit` in its query)."""


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


def members_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """401 for guests, 403 for students without an active membership."""
    require_member(identity_of(connection))


class LimitedRequest(Request[Any, Any, Any]):
    """Litestar's request whose JSON body is decoded strictly, within the nesting
    limit of `jsonin`.

    Every body a handler receives as `data` is decoded by `json()`, here
    straight into the handler's `data` type with msgspec's strict rules (a
    JSON string is not a number, 5.0 is not an integer, `"true"` is not a
    boolean; an empty body is `null`). A body nested too deeply or of the
    wrong shape is a 400 before the handler runs.
    """

    async def json(self) -> Any:
        body = await self.body()
        if exceeds_depth(body):
            raise ValidationException(
                detail=f"invalid request body: JSON nested deeper than {MAX_DEPTH} levels"
            )
        data_field = self.route_handler.parsed_data_field
        if data_field is None:
            return await super().json()
        return decode_json(body or b"null", type=data_field.annotation, strict=True)


# What a route answers: who may call it, and the errors its use case can raise.


@dataclass(frozen=True)
class Audience:
    """Who may call a route: its guard, its security in the OpenAPI document,
    and the refusals (401/403) that follow from both."""

    guards: tuple[Guard, ...]
    security: list[SecurityRequirement]
    refusals: frozenset[int]


ANYONE: Final = Audience((), GUEST_OR_SIGNED_IN_SECURITY, frozenset({401}))
"""Guests too; a bad, expired or forged token is still a 401."""
SIGNED_IN: Final = Audience((signed_in_only,), SIGNED_IN_SECURITY, frozenset({401}))
MEMBERS: Final = Audience((members_only,), SIGNED_IN_SECURITY, frozenset({401, 403}))
STUDENTS: Final = Audience((students_only,), SIGNED_IN_SECURITY, frozenset({401, 403}))
MODERATORS: Final = Audience((moderators_only,), SIGNED_IN_SECURITY, frozenset({401, 403}))

ALWAYS_ANSWERED: Final = frozenset({431, 503})
"""Errors every route can answer: request headers too large (`headlimits`), and a
dependency (Postgres, Redis, NATS) down."""


def answers(audience: Audience, *errors: int) -> dict[str, Any]:
    """Keyword arguments for a route decorator: its guards, its security and the
    error responses it can answer, with the error body.

    `errors` are those of the use case (404, 409, 429, ...); the audience's
    refusals and `ALWAYS_ANSWERED` are added, and the document adds 400 and 413
    where the route has parameters or a body (`openapi.finish_document`).

        @post("/", status_code=201, **answers(MEMBERS, 429))
    """
    statuses = sorted({*audience.refusals, *errors, *ALWAYS_ANSWERED})
    return {
        "guards": list(audience.guards),
        "security": audience.security,
        "responses": {status: error_response(status) for status in statuses},
    }


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


def _replay_response(request: Request[Any, Any, Any], exc: Replay) -> Response[bytes]:
    """The stored answer of the request this one repeats (see `idempotency`)."""
    return Response(
        exc.body,
        status_code=exc.status_code,
        headers={REPLAYED_HEADER: "true"},
        media_type=MediaType.JSON,
    )


class AllowedMethodsMiddleware(ASGIMiddleware):
    """Answer `OPTIONS` with every method the path serves, before any guard.

    Litestar's own `OPTIONS` handler lists only the methods of the first
    handlers registered for a path, and runs the guards of the controller it
    belongs to. A CORS preflight never gets here: the CORS middleware answers
    it before routing.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self) -> None:
        self._allow: dict[str, str] | None = None

    def _allow_header(self, app: Litestar, path_template: str) -> str | None:
        if self._allow is None:
            self._allow = {
                route.path_format: ", ".join(sorted(route.methods))
                for route in app.routes
                if isinstance(route, HTTPRoute)
            }
        return self._allow.get(path_template)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") == "OPTIONS":
            allow = self._allow_header(scope["litestar_app"], scope.get("path_template", ""))
            if allow is not None:
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"allow", allow.encode())],
                }
                body: HTTPResponseBodyEvent = {
                    "type": "http.response.body",
                    "body": b"",
                    "more_body": False,
                }
                await send(start)
                await send(body)
                return
        await next_app(scope, receive, send)


def _error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Turn any exception into the JSON error shape of SPEC §3: the one place
    where errors become HTTP answers.

    Domain errors (`errors`) answer their status; HTTP exceptions (the
    framework's own validation) keep theirs; anything else is a genuine server fault,
    logged with its traceback.
    """
    if isinstance(exc, DomainError):
        return Response(
            {"status_code": exc.status_code, "detail": exc.detail},
            status_code=exc.status_code,
            headers=exc.headers,
            media_type=MediaType.JSON,
        )
    if isinstance(exc, HTTPException):
        body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        headers = dict(exc.headers or {})
        if exc.status_code == 503:
            headers.setdefault("Retry-After", "1")  # SPEC §3: every 503 says when to retry
        return Response(
            body, status_code=exc.status_code, headers=headers, media_type=MediaType.JSON
        )
    if isinstance(exc, KeyReused | KeyInUse):
        status, detail = (
            (422, f"this {HEADER} was used for a different request")
            if isinstance(exc, KeyReused)
            else (409, f"a request with this {HEADER} is still in progress")
        )
        return Response(
            {"status_code": status, "detail": detail}, status_code=status, media_type=MediaType.JSON
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
    # Operational routes, described in the README rather than in the API's document.
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


class MetricsController(PrometheusController):
    include_in_schema = False


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
    services: dict[str, Callable[[Runtime], Any]] | None = None,
    pipelined_relay: bool = False,
    relay_batch_size: int = 200,
) -> Litestar:
    """Build a service app. Nothing connects until the app's lifespan starts.

    `services` is the one way to hand use cases to routes: each factory is
    called once at start-up, after migrations and before the `on_startup`
    hooks, with the runtime (its pool, Redis, settings), and what it returns is
    the dependency of that name (`posts: NamedDependency[PostsService]`).
    `on_nats_ready` hooks (consumers, RPC responders) run once NATS answers,
    which may be after start-up; `on_startup` hooks run after the services are
    built. Background tasks and closers registered on the runtime are stopped
    on shutdown. `pipelined_relay`: the outbox relay publishes each batch
    `pipelined` rather than `one_by_one` (see `outbox`).
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
            publish_rows=(
                pipelined(runtime.jetstream, settings) if pipelined_relay else one_by_one(publish)
            ),
            listen_dsn=settings.database_url,
            poll_seconds=settings.outbox_poll_seconds,
            batch_size=relay_batch_size,
        )
        await runtime.relay.start()
        for name, build in (services or {}).items():
            runtime.services[name] = build(runtime)
        runtime.tasks.append(asyncio.create_task(connect_nats_in_background()))
        runtime.tasks.append(asyncio.create_task(expire_keys(runtime.pool, schema)))
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
            runtime.services.clear()
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
        "idempotency": Provide(provide_idempotency),
        "page": Provide(provide_page, sync_to_thread=False),
    }
    for name in services or {}:
        deps[name] = Provide(_service_provider(name), sync_to_thread=False)
    deps.update(dependencies or {})
    app = Litestar(
        route_handlers=[*route_handlers, *_health_handlers(uses_redis), MetricsController],
        lifespan=[lifespan],
        dependencies=deps,
        middleware=[RequestIdMiddleware(), prometheus.middleware, AllowedMethodsMiddleware()],
        exception_handlers={Exception: _error_response, Replay: _replay_response},
        openapi_config=openapi_config(title),
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_allow_origins),
            allow_headers=["*"],
            allow_methods=["*"],
            # What a page may read of a response beyond the CORS-safelisted headers.
            expose_headers=[*EXPOSED_HEADERS, REPLAYED_HEADER],
        ),
        request_max_body_size=256 * 1024,
        request_class=LimitedRequest,
        debug=False,
        logging_config=None,  # keep the JSON logs configured above
    )
    finish_document(app.openapi_schema)
    return app


@dataclass(frozen=True)
class ServiceDefinition:
    """What a service is, declared once in its `app` module so that its app
    factory and its `main` cannot disagree: the name (the settings' `service`,
    the dependency its use cases are, the OpenAPI title), the default port,
    the schema, the migrations and the routes."""

    name: str
    port: int
    schema: str
    migrations_dir: Path
    route_handlers: Sequence[ControllerRouterHandler]

    def settings(self) -> Settings:
        """The settings from the environment, with this service's name and port."""
        return Settings.from_env(self.name, self.port)

    def app(
        self,
        settings: Settings | None,
        *,
        use_cases: Callable[[Runtime], Any],
        uses_redis: bool = False,
        on_nats_ready: Sequence[NatsHook] = (),
        on_startup: Sequence[Callable[[Runtime], Awaitable[None]]] = (),
        pipelined_relay: bool = False,
        relay_batch_size: int = 200,
    ) -> Litestar:
        """`create_service_app` for this service (`settings` None: from the
        environment); `use_cases` builds the dependency named after it."""
        return create_service_app(
            settings or self.settings(),
            schema=self.schema,
            migrations_dir=self.migrations_dir,
            route_handlers=self.route_handlers,
            title=f"Community Live — {self.name}",
            uses_redis=uses_redis,
            on_nats_ready=on_nats_ready,
            on_startup=on_startup,
            services={self.name: use_cases},
            pipelined_relay=pipelined_relay,
            relay_batch_size=relay_batch_size,
        )

    def entry_point(self, app_factory: Callable[[Settings], Litestar]) -> Callable[[], None]:
        """The module's `main`: `run` the app with the settings from the environment."""

        def main() -> None:
            run(app_factory, self.settings())

        return main


def _service_provider(name: str) -> Callable[[Request[Any, Any, Any]], Any]:
    # From the request, not a `state` parameter: Litestar would build a new
    # `State` (with its lock) on every request for that.
    def provide(request: Request[Any, Any, Any]) -> Any:
        return runtime_of(request.app.state).services[name]

    return provide


EXPOSED_HEADERS: Final = ("Retry-After", "X-Request-Id")
"""Response headers a browser page may read (SPEC §3: `Retry-After` is readable)."""


def run(app_factory: Callable[[Settings], Litestar], settings: Settings) -> None:
    """Serve an app with uvicorn (uvloop, httptools) on the configured host and port,
    the garbage collector tuned for a long-running process (`collector`), and
    the request-head limits of SPEC §3 (`headlimits`: 431, slow heads closed)."""
    import uvicorn

    from community_shared.headlimits import HeadLimits, head_limited_protocol

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
        http=head_limited_protocol(
            HeadLimits(
                max_bytes=settings.http_max_header_bytes,
                max_headers=settings.http_max_headers,
                timeout=settings.http_header_timeout_seconds,
            )
        ),
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
