"""The gateway's I/O: the websocket server, fan-out from JetStream, the HTTP probes.

Everything that decides something lives in the pure modules (`channels`,
`protocol`, `sendqueue`, `coalesce`); this module moves bytes between
websockets, JetStream and Redis:

- the handshake (`process_request`): `GET /health`, `/ready`, `/metrics`, and
  for `/ws` the token (`?token=` or `Authorization: Bearer`), refused with 401
  when invalid or expired;
- one reader task per connection handling its ops in order, one writer task
  per connection draining its `SendQueue`, so a slow client only ever fills
  its own queue (and is closed with 4008 when that overflows);
- fan-out: two ordered push consumers per instance (`ch.>` and `inbox.>`,
  new messages only) whose messages are offered to the local connections
  subscribed to the channel;
- the `Router` (router.py), which turns domain events into channel events;
- presence (presence.py): each connection's open and close, the `presence`
  channel, `visibility` and `GET /presence` are handed to `PresenceService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections.abc import Iterable

import redis.asyncio as aioredis
from community_shared.auth import GUEST, Identity, InvalidToken, decode_token
from community_shared.connections import connect_nats, create_redis
from community_shared.settings import Settings
from community_shared.tasks import stop_tasks
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from community_gateway import metrics
from community_gateway.actions import (
    Action,
    Close,
    CountOp,
    GoLive,
    Listen,
    OpenPresence,
    ReadHistory,
    ReadInbox,
    Schedule,
    Send,
    StoreCursor,
    StoreVisibility,
    Timer,
    TokenExpiry,
    Unlisten,
)
from community_gateway.channels import PRESENCE, channel_of_subject
from community_gateway.client import Client
from community_gateway.config import MAX_FRAME_BYTES, GatewayConfig
from community_gateway.handshake import (
    bearer_identity,
    error_response,
    head_size,
    http_response,
    identity_of,
    json_response,
    request_path,
    unauthorized,
)
from community_gateway.presence import PresenceService
from community_gateway.protocol import (
    CLOSE_RESTART,
    ConnectionProtocol,
    StoredEvent,
    control,
    cursor_to_store,
)
from community_gateway.router import Router
from community_gateway.store import ChannelStore
from community_gateway.wsadapter import WRITE_LIMIT, missing_internals

log = logging.getLogger(__name__)

READ_CURSOR_TTL_SECONDS = 60 * 24 * 3600
PRESENCE_SYNC_WAIT = 5.0
"""How long a `presence` subscription waits for a starting instance's first snapshot."""


# Moves the read cursor forward only: SET key max(current, new).
_ADVANCE_CURSOR = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed > current then current = proposed end
redis.call('SET', KEYS[1], current, 'EX', ARGV[2])
return current
"""


class GatewayServer:
    """One gateway instance: `await start()`, serve, `await stop()`.

    `settings.port` 0 lets the OS choose a free port (read it from `port`).
    `start()` returns once the instance is ready: listening, JetStream streams
    in place, router and fan-out running. While NATS is unreachable at start
    it keeps waiting; meanwhile `/health` answers, `/ready` says 503 and
    websocket handshakes get 503.
    """

    def __init__(self, settings: Settings | None = None, config: GatewayConfig | None = None):
        self.settings = settings or Settings.from_env("gateway", 8000)
        self.config = config or GatewayConfig.from_env()
        self.instance_id = uuid.uuid4().hex[:12]
        self._server: Server | None = None
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._store: ChannelStore | None = None
        self._router: Router | None = None
        self._redis: aioredis.Redis | None = None
        self._presence: PresenceService | None = None
        self._fanout: list[Subscription] = []
        self._outbound_watch: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._clients: set[Client] = set()
        self._by_channel: dict[str, set[Client]] = {}
        self._identities: weakref.WeakKeyDictionary[ServerConnection, Identity] = (
            weakref.WeakKeyDictionary()
        )

    # -- life cycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("the gateway has no listening socket")

    @property
    def url(self) -> str:
        """The websocket URL of this instance (`ws://host:port/ws`)."""
        host = (
            self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        )
        return f"ws://{host}:{self.port}/ws"

    @property
    def router(self) -> Router | None:
        return self._router

    @property
    def connection_count(self) -> int:
        """Open connections, not counting those being closed."""
        return sum(1 for client in self._clients if not client.closing and client.link.is_open())

    async def start(self) -> None:
        missing = missing_internals()
        if missing:
            raise RuntimeError(
                "the installed websockets lacks what wsadapter.py relies on: " + ", ".join(missing)
            )
        self._server = await serve(
            self._serve_connection,
            self.settings.host,
            self.settings.port,
            process_request=self._process_request,
            # A handshake (request head included) must be complete within this.
            open_timeout=self.settings.http_header_timeout_seconds,
            max_size=MAX_FRAME_BYTES,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            close_timeout=self.config.close_timeout,
            # Frames go to many clients: no per-connection compression state.
            compression=None,
            write_limit=WRITE_LIMIT,
            server_header=None,
        )
        log.info("gateway listening on %s:%s", self.settings.host, self.port)
        self._outbound_watch = asyncio.create_task(self._watch_outbound())
        await self._bring_up()

    async def _watch_outbound(self) -> None:
        """Check every client's backlog a few times per stall timeout (4008 when due)."""
        tick = max(0.05, min(1.0, self.config.stall_seconds / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for client in tuple(self._clients):
                client.check_outbound(now)

    async def _bring_up(self) -> None:
        self._nc = await connect_nats(self.settings, name=f"gateway-{self.instance_id}")
        js = self._nc.jetstream()
        self._js = js
        self._store = ChannelStore(js, self.settings, self.config)
        self._router = Router(js, self.settings, self.config)
        while True:
            try:
                await self._store.ensure_streams()
                await self._router.setup()
                break
            except Exception as exc:
                log.warning("cannot set up JetStream yet (%s); retrying", exc)
                await asyncio.sleep(1)
        for stream, subject in (
            (self._store.channels_stream, self.settings.subject("ch.>")),
            (self._store.inbox_stream, self.settings.subject("inbox.>")),
        ):
            subscription = await js.subscribe(
                subject,
                stream=stream,
                cb=self._fan_out,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
                idle_heartbeat=2.0,
            )
            self._fanout.append(subscription)
        await self._router.start()
        self._redis = create_redis(self.settings)
        self._presence = PresenceService(
            self.settings,
            self.instance_id,
            grace_seconds=self.config.presence_grace_seconds,
            heartbeat_seconds=self.config.presence_heartbeat_seconds,
            interval_seconds=self.config.presence_interval_seconds,
            max_members=self.config.presence_max_members,
        )
        self._presence.start()
        self._ready.set()

    async def stop(self) -> None:
        """Close every client with 1012 (they reconnect elsewhere), then release NATS and Redis."""
        self._stopping = True
        self._ready.clear()
        if self._server is not None:
            # Our own close (bounded, see _Client.close) rather than websockets',
            # which can wait forever on a client that stopped reading.
            self._server.close(close_connections=False)
            for client in list(self._clients):
                client.close(CLOSE_RESTART, "server restart")
            await self._server.wait_closed()
        if self._outbound_watch is not None:
            self._outbound_watch.cancel()
            with contextlib.suppress(BaseException):
                await self._outbound_watch
            self._outbound_watch = None
        if self._presence is not None:
            await self._presence.stop()
        if self._router is not None:
            await self._router.stop()
        for subscription in self._fanout:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._fanout.clear()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None

    # -- HTTP -----------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if head_size(request) > self.settings.http_max_header_bytes:
            # websockets itself refuses lines over 8 KiB and over 128 headers (431).
            return error_response(431, "request header fields too large")
        path = request_path(request)
        if path == "/health":
            return json_response(200, {"status": "ok"})
        if path == "/ready":
            return await self._readiness()
        if path == "/metrics":
            return http_response(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
        if path == "/presence":
            return self._presence_summary(request)
        if path != "/ws":
            return error_response(404, "not found")
        if not self._ready.is_set() or self._stopping:
            metrics.HANDSHAKES_REFUSED.labels("503").inc()
            return error_response(503, "gateway not ready")
        try:
            identity = identity_of(request, self.settings.jwt_secret)
        except InvalidToken as exc:
            metrics.HANDSHAKES_REFUSED.labels("401").inc()
            return unauthorized(exc)
        self._identities[connection] = identity
        return None

    def _presence_summary(self, request: Request) -> Response:
        """`GET /presence`: counts for anyone, the list too for a member's bearer token."""
        try:
            identity = bearer_identity(request, self.settings.jwt_secret)
        except InvalidToken as exc:
            return unauthorized(exc)
        presence = self._presence
        if presence is None or not presence.synced.is_set():
            response = error_response(503, "presence not ready")
            response.headers["Retry-After"] = "1"
            return response
        return json_response(200, presence.summary(identity))

    async def _readiness(self) -> Response:
        failing: dict[str, str] = {}
        if self._nc is None or not self._nc.is_connected:
            failing["nats"] = "not connected"
        elif not self._ready.is_set():
            failing["jetstream"] = "streams or consumers not set up"
        if self._redis is None:
            failing["redis"] = "not connected"
        else:
            try:
                async with asyncio.timeout(1.0):
                    await self._redis.ping()
            except Exception as exc:
                failing["redis"] = str(exc) or type(exc).__name__
        if failing:
            return json_response(
                503,
                {
                    "status": "unavailable",
                    "failing": failing,
                    "status_code": 503,
                    "detail": "not ready: " + ", ".join(sorted(failing)),
                },
            )
        return json_response(200, {"status": "ready"})

    # -- connections ------------------------------------------------------------

    async def _serve_connection(self, ws: ServerConnection) -> None:
        identity = self._identities.pop(ws, GUEST)
        secret = self.settings.jwt_secret
        protocol = ConnectionProtocol(
            identity, self.config, lambda token: decode_token(token, secret)
        )
        client = Client(ws, protocol, self.config)
        timers = _Timers(self, client)
        self._clients.add(client)
        if self._presence is not None:
            self._presence.opened(identity)
        if self._stopping:  # accepted while stop() was closing the others
            client.close(CLOSE_RESTART, "server restart")
        metrics.CONNECTIONS.inc()
        metrics.CONNECTIONS_OPENED.inc()
        writer = asyncio.create_task(client.write_loop())
        try:
            if not client.closing:
                await self._perform(client, timers, protocol.start())
            if not client.closing:
                async for message in ws:
                    await self._perform(client, timers, protocol.receive(message, time.monotonic()))
                    await self._perform(client, timers, protocol.op_done())
                    if client.closing:
                        break
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("connection handler failed")
            client.close(1011, "internal error")
        finally:
            self._unregister(client)
            if self._presence is not None:
                self._presence.unwatch(client)
                self._presence.closed(client.session.identity)
            timers.cancel()
            if not client.closing and client.link.is_open():
                client.close(1000, "")
            client.closing = True
            await stop_tasks(writer)
            await ws.wait_closed()
            metrics.CONNECTIONS.dec()
            # What the server decided, even when its close frame could not get
            # through (a stalled client): websockets alone would report 1006.
            code = client.close_code if client.close_code is not None else ws.close_code
            metrics.CLOSES.labels(str(code)).inc()

    def _unregister(self, client: Client) -> None:
        self._clients.discard(client)
        for channel in client.session.channels:
            self._index_remove(channel, client)

    def _index_add(self, channel: str, client: Client) -> None:
        self._by_channel.setdefault(channel, set()).add(client)

    def _index_remove(self, channel: str, client: Client) -> None:
        subscribers = self._by_channel.get(channel)
        if subscribers is not None:
            subscribers.discard(client)
            if not subscribers:
                del self._by_channel[channel]

    def _require_store(self) -> ChannelStore:
        if self._store is None:
            raise ConnectionError("JetStream is not set up")
        return self._store

    # -- the protocol's actions -------------------------------------------------

    async def _perform(self, client: Client, timers: _Timers, actions: list[Action]) -> None:
        """Carry out a connection's actions in order; once it is closing, the rest are moot."""
        protocol = client.protocol
        for action in actions:
            if client.closing:
                return
            match action:
                case Send(items, True):
                    for item in items:
                        if not await client.push_paced(item):
                            return
                case GoLive(channel):
                    await self._perform(client, timers, protocol.go_live(channel))
                case ReadInbox():
                    await self._perform(client, timers, await self._read_inbox(protocol, action))
                case ReadHistory():
                    actions_ = await self._read_history(protocol, action)
                    await self._perform(client, timers, actions_)
                case OpenPresence():
                    await self._open_presence(client, timers, action)
                case StoreCursor():
                    client.push(action.done if await self._store_cursor(action) else action.failed)
                case StoreVisibility():
                    stored = await self._store_visibility(action)
                    client.push(action.done if stored else action.failed)
                case _:
                    self._apply(client, timers, action)

    def _apply(self, client: Client, timers: _Timers, action: Action) -> bool:
        """Perform an action that needs no waiting; False for any other."""
        match action:
            case Send(items, False):
                for item in items:
                    if not client.push(item):
                        break
            case CountOp(name, outcome):
                metrics.OPS.labels(name, outcome).inc()
            case Listen(channel):
                self._index_add(channel, client)
            case Unlisten(channel):
                self._index_remove(channel, client)
                if channel == PRESENCE and self._presence is not None:
                    self._presence.unwatch(client)
            case Schedule(timer, delay):
                timers.schedule(timer, delay)
            case Close(code, reason):
                client.close(code, reason)
            case _:
                return False
        return True

    def _timer_due(self, client: Client, timers: _Timers, timer: Timer) -> None:
        if not client.closing:
            self._perform_now(client, timers, client.protocol.timer_due(timer, time.time()))

    def _perform_now(self, client: Client, timers: _Timers, actions: list[Action]) -> None:
        """Carry out actions that need no waiting (what a timer returns), within this call.

        Within the call matters: an inbox release's frames must be queued
        before the next live event of the channel is offered.
        """
        for action in actions:
            if client.closing:
                return
            if not self._apply(client, timers, action):
                raise TypeError(f"{action!r} cannot be performed without waiting")

    async def _read_inbox(self, protocol: ConnectionProtocol, action: ReadInbox) -> list[Action]:
        try:
            store = self._require_store()
            latest = await store.latest_seq(action.channel)
            cursor = await self._read_cursor(action.user_id)
            unread = await store.unread(action.user_id, cursor) if cursor is not None else 0
        except Exception as exc:
            log.warning("cannot greet %s: %s", action.user_id, exc)
            return protocol.greet_failed()
        return protocol.greeted(latest, unread)

    async def _read_cursor(self, user_id: uuid.UUID) -> int | None:
        """The user's inbox read cursor (0 if never set); None if Redis does not answer."""
        if self._redis is None:
            return None
        try:
            raw = await self._redis.get(self.settings.redis_key(f"gw:read:{user_id}"))
        except Exception as exc:
            log.warning("redis: cannot read the inbox cursor: %s", exc)
            return None
        return int(raw) if raw else 0

    async def _read_history(
        self, protocol: ConnectionProtocol, action: ReadHistory
    ) -> list[Action]:
        channel = action.channel
        try:
            store = self._require_store()
            latest = await store.latest_seq(channel)
            history: list[StoredEvent] = []
            recovered = False
            if action.since is not None:
                history, recovered = await store.history(channel, action.since, latest)
        except Exception as exc:
            log.warning("cannot read the history of %s: %s", channel, exc)
            return protocol.history_unavailable(action)
        return protocol.history_read(action, latest=latest, history=history, recovered=recovered)

    async def _open_presence(self, client: Client, timers: _Timers, action: OpenPresence) -> None:
        presence = self._presence
        if presence is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(presence.synced.wait(), PRESENCE_SYNC_WAIT)
            await presence.catch_up()
        if presence is None or not presence.synced.is_set():
            await self._perform(client, timers, client.protocol.presence_unavailable(action))
            return
        await self._perform(client, timers, client.protocol.presence_opened(action))
        snapshot = presence.watch(
            client, lambda payload: client.push(control(payload)), lambda: client.session.identity
        )
        client.push(control(snapshot))

    async def _store_cursor(self, action: StoreCursor) -> bool:
        try:
            if self._redis is None:
                raise ConnectionError("redis is not connected")
            latest = await self._require_store().latest_seq(action.channel)
            await self._redis.eval(
                _ADVANCE_CURSOR,
                1,
                self.settings.redis_key(f"gw:read:{action.user_id}"),
                str(cursor_to_store(action.seq, latest)),
                str(READ_CURSOR_TTL_SECONDS),
            )
        except Exception as exc:
            log.warning("cannot store the read cursor of %s: %s", action.user_id, exc)
            return False
        return True

    async def _store_visibility(self, action: StoreVisibility) -> bool:
        try:
            if self._presence is None:
                raise ConnectionError("presence is not running")
            await self._presence.set_visible(action.identity, action.visible)
        except Exception as exc:
            log.warning("cannot store the visibility of %s: %s", action.identity.user_id, exc)
            return False
        return True

    # -- fan-out ----------------------------------------------------------------

    async def _fan_out(self, msg: Msg) -> None:
        channel = channel_of_subject(self.settings.unprefix(msg.subject))
        if channel is None:
            return
        try:
            event = StoredEvent.decode(channel, msg.metadata.sequence.stream, msg.data)
        except ValueError as exc:
            log.warning("skipping undecodable channel message on %s: %s", msg.subject, exc)
            return
        metrics.FANOUT_EVENTS.inc()
        subscribers: Iterable[Client] = self._by_channel.get(channel, ())
        written = 0
        for client in tuple(subscribers):
            if client.deliver(event):
                written += 1
        if written:
            metrics.FRAMES_SENT.inc(written)


class _Timers:
    """A connection's pending timers (the protocol's `Schedule`), cancelled when it ends."""

    def __init__(self, server: GatewayServer, client: Client) -> None:
        self._server = server
        self._client = client
        self._handles: set[asyncio.Handle] = set()
        self._expiry: asyncio.TimerHandle | None = None

    def schedule(self, timer: Timer, delay: float) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(timer, TokenExpiry):
            if self._expiry is not None:
                self._expiry.cancel()
            delay = max(0.0, timer.at - time.time())
            self._expiry = loop.call_later(delay, self._fire, timer)
            return
        handle: asyncio.Handle
        if delay <= 0:
            handle = loop.call_soon(self._fire, timer)
        else:
            handle = loop.call_later(delay, self._fire, timer)
        self._handles.add(handle)

    def _fire(self, timer: Timer) -> None:
        self._server._timer_due(self._client, self, timer)

    def cancel(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        if self._expiry is not None:
            self._expiry.cancel()


async def run_until_stopped(settings: Settings, config: GatewayConfig, stop: asyncio.Event) -> None:
    """Start a gateway, serve until `stop` is set, then stop it (clients get 1012)."""
    server = GatewayServer(settings, config)
    starting = asyncio.create_task(server.start())
    await stop.wait()
    await stop_tasks(starting)
    await server.stop()
