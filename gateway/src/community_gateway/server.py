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
import fcntl
import http
import json
import logging
import struct
import termios
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from community_shared.auth import (
    GUEST,
    Identity,
    InvalidToken,
    decode_token,
    identity_from_authorization,
)
from community_shared.connections import connect_nats, create_redis
from community_shared.settings import Settings
from community_shared.tasks import stop_tasks, wait_set
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from community_gateway import metrics
from community_gateway.channels import PRESENCE, channel_of_subject, user_channel
from community_gateway.config import MAX_FRAME_BYTES, GatewayConfig
from community_gateway.drain import close_offsets
from community_gateway.presence import PresenceService
from community_gateway.protocol import (
    BAD_REQUEST,
    RATE_LIMITED,
    UNAVAILABLE,
    BadFrame,
    ClientOp,
    Ping,
    Read,
    RecoveryBufferFull,
    Refresh,
    Refused,
    Session,
    SetMode,
    SetVisibility,
    StoredEvent,
    Subscribe,
    Unsubscribe,
    control,
    decode_client_frame,
    error_frame,
    hello_frame,
    ok_frame,
    pong_frame,
    unsubscribed_frame,
)
from community_gateway.router import Router
from community_gateway.sendqueue import Outgoing, SendQueue, StallClock
from community_gateway.store import ChannelStore

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013
READ_CURSOR_TTL_SECONDS = 60 * 24 * 3600
PRESENCE_SYNC_WAIT = 5.0
"""How long a `presence` subscription waits for a starting instance's first snapshot."""
DRAIN_CATCH_UP = 0.25
"""Seconds of closes a held-up drain may make up for at once (see `_drain`)."""
WRITE_LIMIT = 32 * 1024
"""websockets' high-water mark for a connection's socket buffer (its default, set explicitly)."""
_TIOCOUTQ: int | None = getattr(termios, "TIOCOUTQ", None)


def _kernel_unacked(fd: int | None) -> int:
    """Bytes the kernel still holds for a socket (sent but not acknowledged, or not sent).

    Linux's TIOCOUTQ (SIOCOUTQ) on a TCP socket; 0 where it is not available.
    """
    if fd is None or _TIOCOUTQ is None:
        return 0
    try:
        raw = fcntl.ioctl(fd, _TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])


# Moves the read cursor forward only: SET key max(current, new).
_ADVANCE_CURSOR = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed > current then current = proposed end
redis.call('SET', KEYS[1], current, 'EX', ARGV[2])
return current
"""


class _Client:
    """One websocket connection: its session, its outbound queue and its writer."""

    def __init__(self, ws: ServerConnection, session: Session, config: GatewayConfig) -> None:
        self.ws = ws
        self.session = session
        self.queue = SendQueue(
            config.queue_bound, on_drop=self._dropped, byte_bound=config.outbound_bytes
        )
        self.closing = False
        self.close_code: int | None = None
        """The code the server decided to close with (what the metrics record)."""
        self._stall = StallClock(config.stall_seconds)
        self._handed = 0  # payload bytes handed to websockets
        sock = ws.transport.get_extra_info("socket")
        self._fd: int | None = sock.fileno() if sock is not None else None
        self.refreshed = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._low_water = max(1, config.queue_bound // 2)
        self._close_task: asyncio.Task[None] | None = None
        self._close_timeout = config.close_timeout
        self._write_limit = WRITE_LIMIT
        self._writer_idle = False
        self.handling_op = False
        self.deferred: Callable[[], None] | None = None
        """Run once the op being handled is done (see `GatewayServer._release_inbox`)."""

    @staticmethod
    def _dropped(reason: str) -> None:
        metrics.DROPS.labels(reason).inc()

    def push(self, item: Outgoing) -> bool:
        """Send or queue a frame without waiting; on overflow the connection is closed (4008)."""
        if self._write_now(item):
            metrics.FRAMES_SENT.inc()
            return True
        return self._enqueue(item)

    def _write_now(self, item: Outgoing) -> bool:
        """Write the frame at once if this client keeps up; False if it must be queued.

        A client that keeps up (nothing queued, its writer idle, the socket
        buffer below websockets' high-water mark) gets the frame written
        directly, as `websockets.broadcast` would: no task switch per frame.
        Any other client's frames go through its queue and writer task, so the
        order is the same either way.
        """
        if self.closing or not self._writer_idle or self.queue or not self._can_write_now():
            return False
        try:
            self.ws.protocol.send_text(item.payload)
            self.ws.send_data()
        except Exception:  # the connection is going away: queue it, the reader will notice
            return False
        self._handed += len(item.payload)
        return True

    def _enqueue(self, item: Outgoing) -> bool:
        if self.closing:
            return False
        if not self.queue.push(item, held=self.ws.transport.get_write_buffer_size()):
            self.close(CLOSE_TOO_SLOW, "client too slow")
            return False
        self._wakeup.set()
        return True

    def _can_write_now(self) -> bool:
        ws = self.ws
        return (
            ws.protocol.state is State.OPEN
            and ws.send_in_progress is None
            and ws.transport.get_write_buffer_size() < self._write_limit
        )

    async def push_paced(self, item: Outgoing) -> bool:
        """Queue a frame, first waiting until the queue is below its bound (history replay)."""
        while not self.closing and len(self.queue) >= self.queue.bound:
            self._room.clear()
            await self._room.wait()
        return self.push(item)

    def deliver(self, event: StoredEvent) -> bool:
        """Offer a live channel event (fan-out; never blocks). True if written at once.

        Frames written at once are left for the caller to count, so that
        fan-out updates the metrics once per event rather than once per frame.
        """
        if self.closing:
            return False
        try:
            item = self.session.offer(event)
        except RecoveryBufferFull:
            self.close(CLOSE_TOO_SLOW, "client too slow")
            return False
        if item is None:
            return False
        if self._write_now(item):
            return True
        self._enqueue(item)
        return False

    def check_outbound(self, now: float) -> None:
        """Close with 4008 a client whose whole backlog is over the bound or stopped draining.

        The backlog is the queue plus what the transport and the kernel hold
        (those only the gateway can see: a client that stops reading fills
        the kernel's socket buffer first, which can take megabytes).
        """
        if self.closing or self.ws.transport.is_closing():
            return
        held = self.ws.transport.get_write_buffer_size() + _kernel_unacked(self._fd)
        if not self.queue.fits(held):
            self.close(CLOSE_TOO_SLOW, "client too slow")
            return
        pending = bool(self.queue) or held > 0
        if self._stall.observe(now, pending=pending, mark=self._handed - held):
            self.close(CLOSE_TOO_SLOW, "client stopped reading")

    def close(self, code: int, reason: str) -> None:
        """Start closing (idempotent); queued frames are discarded."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self.queue.clear()
        self._wakeup.set()
        self._room.set()
        self._close_task = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        # websockets' close() waits, without a time limit, for the write buffer
        # to drain before its own close timeout starts: a client that reads
        # nothing would hold the connection until the ping timeout. Bound it.
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.ws.close(code, reason)
        except TimeoutError:
            self.ws.transport.abort()

    async def write_loop(self) -> None:
        try:
            while not self.closing:
                item = self.queue.pop()
                if item is None:
                    self._room.set()
                    self._wakeup.clear()
                    self._writer_idle = True
                    try:
                        await self._wakeup.wait()
                    finally:
                        self._writer_idle = False
                    continue
                if len(self.queue) < self._low_water:
                    self._room.set()
                # Written to the transport at once, then waits while the
                # socket buffer is above the high-water mark.
                self._handed += len(item.payload)
                await self.ws.send(item.payload, text=True)
                metrics.FRAMES_SENT.inc()
        except ConnectionClosed:
            pass


def _http_response(status: int, content_type: str, payload: bytes) -> Response:
    """A plain HTTP answer on the websocket port.

    `Connection: close` because the server closes the connection after every
    plain HTTP answer: without it a keep-alive client may send its next request
    on a connection that is already closing and see it dropped unanswered.
    """
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, payload)


def _json_response(status: int, body: dict[str, Any]) -> Response:
    return _http_response(status, "application/json", json.dumps(body).encode())


def _unauthorized(exc: InvalidToken) -> Response:
    response = _json_response(401, {"status_code": 401, "detail": f"invalid token: {exc}"})
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _head_size(request: Request) -> int:
    """The size of a request head as sent: request line and header lines."""
    return len(request.path) + sum(len(k) + len(v) + 4 for k, v in request.headers.raw_items())


def _op_name(op: ClientOp | BadFrame) -> str:
    names = {
        Subscribe: "subscribe",
        Unsubscribe: "unsubscribe",
        Refresh: "refresh",
        Read: "read",
        SetMode: "mode",
        SetVisibility: "visibility",
        Ping: "ping",
    }
    return names.get(type(op), "invalid")


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
        self._clients: set[_Client] = set()
        self._by_channel: dict[str, set[_Client]] = {}
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
        return sum(
            1 for client in self._clients if not client.closing and client.ws.state is State.OPEN
        )

    async def start(self) -> None:
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
            await self._drain()
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

    async def _drain(self) -> None:
        """Close every client with 1012, spread over the drain window (see drain.py).

        Clients not yet closed keep receiving events meanwhile: fan-out and
        routing stop only after the last one is gone.
        """
        clients = list(self._clients)
        offsets = close_offsets(len(clients), self.config.drain_seconds, self.config.drain_min_rate)
        if clients:
            log.info("closing %d clients over %.1f s", len(clients), offsets[-1])
        loop = asyncio.get_running_loop()
        due = loop.time()
        previous = 0.0
        for client, offset in zip(clients, offsets, strict=True):
            # On schedule, but a loop held up for long (a busy machine) catches
            # up on DRAIN_CATCH_UP seconds of closes at most: the drain
            # stretches rather than closing at once everyone it fell behind on.
            due = max(due + offset - previous, loop.time() - DRAIN_CATCH_UP)
            previous = offset
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            client.close(CLOSE_RESTART, "server restart")
        for client in list(self._clients):  # accepted while the listener was closing
            client.close(CLOSE_RESTART, "server restart")

    # -- HTTP -----------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if _head_size(request) > self.settings.http_max_header_bytes:
            # websockets itself refuses lines over 8 KiB and over 128 headers (431).
            return _json_response(
                431, {"status_code": 431, "detail": "request header fields too large"}
            )
        parts = urlsplit(request.path)
        if parts.path == "/health":
            return _json_response(200, {"status": "ok"})
        if parts.path == "/ready":
            return await self._readiness()
        if parts.path == "/metrics":
            return _http_response(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
        if parts.path == "/presence":
            return self._presence_summary(request)
        if parts.path != "/ws":
            return _json_response(404, {"status_code": 404, "detail": "not found"})
        if not self._ready.is_set() or self._stopping:
            metrics.HANDSHAKES_REFUSED.labels("503").inc()
            return _json_response(503, {"status_code": 503, "detail": "gateway not ready"})
        header = request.headers.get("Authorization")
        query_token = parse_qs(parts.query).get("token")
        try:
            if header:
                identity = identity_from_authorization(header, self.settings.jwt_secret)
            elif query_token and query_token[0]:
                identity = decode_token(query_token[0], self.settings.jwt_secret)
            else:
                identity = GUEST
        except InvalidToken as exc:
            metrics.HANDSHAKES_REFUSED.labels("401").inc()
            return _unauthorized(exc)
        self._identities[connection] = identity
        return None

    def _presence_summary(self, request: Request) -> Response:
        """`GET /presence`: counts for anyone, the list too for a member's bearer token."""
        header = request.headers.get("Authorization")
        try:
            identity = identity_from_authorization(header, self.settings.jwt_secret)
        except InvalidToken as exc:
            return _unauthorized(exc)
        presence = self._presence
        if presence is None or not presence.synced.is_set():
            response = _json_response(503, {"status_code": 503, "detail": "presence not ready"})
            response.headers["Retry-After"] = "1"
            return response
        return _json_response(200, presence.summary(identity))

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
            return _json_response(
                503,
                {
                    "status": "unavailable",
                    "failing": failing,
                    "status_code": 503,
                    "detail": "not ready: " + ", ".join(sorted(failing)),
                },
            )
        return _json_response(200, {"status": "ready"})

    # -- connections ------------------------------------------------------------

    async def _serve_connection(self, ws: ServerConnection) -> None:
        identity = self._identities.pop(ws, GUEST)
        session = Session(
            identity,
            max_subscriptions=self.config.max_subscriptions,
            op_rate=self.config.op_rate,
            op_burst=self.config.op_burst,
            buffer_bound=self.config.queue_bound,
        )
        client = _Client(ws, session, self.config)
        self._clients.add(client)
        if self._presence is not None:
            self._presence.opened(identity)
        if self._stopping:  # accepted while stop() was closing the others
            client.close(CLOSE_RESTART, "server restart")
        metrics.CONNECTIONS.inc()
        metrics.CONNECTIONS_OPENED.inc()
        writer = asyncio.create_task(client.write_loop())
        watcher = asyncio.create_task(self._expire(client)) if identity.exp else None
        try:
            if not client.closing and await self._greet(client):
                async for message in ws:
                    client.handling_op = True
                    try:
                        await self._on_message(client, message)
                    finally:
                        client.handling_op = False
                    if client.deferred is not None:
                        # After the reader has picked up any op already received.
                        asyncio.get_running_loop().call_soon(client.deferred)
                        client.deferred = None
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
                self._presence.closed(identity)
            if watcher is not None:
                watcher.cancel()
            if not client.closing and ws.state is State.OPEN:
                client.close(1000, "")
            client.closing = True
            await stop_tasks(writer)
            await ws.wait_closed()
            metrics.CONNECTIONS.dec()
            # What the server decided, even when its close frame could not get
            # through (a stalled client): websockets alone would report 1006.
            code = client.close_code if client.close_code is not None else ws.close_code
            metrics.CLOSES.labels(str(code)).inc()

    def _unregister(self, client: _Client) -> None:
        self._clients.discard(client)
        for channel in client.session.channels:
            self._index_remove(channel, client)

    def _index_add(self, channel: str, client: _Client) -> None:
        self._by_channel.setdefault(channel, set()).add(client)

    def _index_remove(self, channel: str, client: _Client) -> None:
        subscribers = self._by_channel.get(channel)
        if subscribers is not None:
            subscribers.discard(client)
            if not subscribers:
                del self._by_channel[channel]

    async def _expire(self, client: _Client) -> None:
        """Close with 4401 when the session's token expires without a refresh."""
        while not client.closing:
            exp = client.session.identity.exp
            if exp is None:
                return
            remaining = exp - time.time()
            if remaining <= 0:
                client.close(CLOSE_TOKEN_EXPIRED, "token expired")
                return
            client.refreshed.clear()
            await wait_set(client.refreshed, remaining)

    def _require_store(self) -> ChannelStore:
        if self._store is None:
            raise ConnectionError("JetStream is not set up")
        return self._store

    async def _greet(self, client: _Client) -> bool:
        """Auto-subscribe a signed-in user to their inbox, then send `hello`."""
        session = client.session
        user_id = session.identity.user_id
        unread = 0
        channel = None
        if user_id is not None:
            channel = user_channel(user_id)
            opened = session.begin_subscribe(channel)
            assert opened == channel
            self._index_add(channel, client)
            try:
                store = self._require_store()
                latest = await store.latest_seq(channel)
                cursor = await self._read_cursor(user_id)
                unread = await store.unread(user_id, cursor) if cursor is not None else 0
            except Exception as exc:
                log.warning("cannot greet %s: %s", user_id, exc)
                client.close(CLOSE_TRY_AGAIN, "history unavailable; try again")
                return False
            session.replay(channel, latest=latest, since=None, history=[], recovered=False)
        client.push(control(hello_frame(session.identity, session.channels, unread)))
        if channel is not None:
            # Live inbox events wait until the client's first op is handled
            # (or the hold time passes): a reconnecting client's `subscribe
            # user:… since` comes right after `hello`, and an event sent before
            # it would leave the events between its `since` and `hello`
            # unsendable (seqs only go up on a connection).
            token = session.subscription_token(channel)
            client.deferred = lambda: self._release_inbox(client, channel, token)
            asyncio.get_running_loop().call_later(
                self.config.inbox_hold_seconds, self._release_inbox, client, channel, token
            )
        return True

    @classmethod
    def _release_inbox(cls, client: _Client, channel: str, token: int | None) -> None:
        """Turn the automatic inbox subscription live, unless the client resubscribed meanwhile.

        Not while an op is being handled: the client's `subscribe user:…` may
        be the next op, already received (a client sends its subscriptions
        back to back, and the first one can take a while on a busy server).
        """
        session = client.session
        if (
            client.closing
            or session.subscription_token(channel) != token
            or not session.is_recovering(channel)
        ):
            return
        if client.handling_op:
            client.deferred = lambda: cls._release_inbox(client, channel, token)
            return
        for item in session.finish_subscribe(channel):
            if not client.push(item):
                return

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

    # -- ops --------------------------------------------------------------------

    async def _on_message(self, client: _Client, message: str | bytes) -> None:
        op = decode_client_frame(message)
        name = _op_name(op)
        if not client.session.allow_op(time.monotonic()):
            metrics.OPS.labels(name, "rate_limited").inc()
            client.push(control(error_frame(RATE_LIMITED, "too many ops; slow down", op.id)))
            return
        if isinstance(op, BadFrame):
            metrics.OPS.labels(name, op.code).inc()
            client.push(control(error_frame(op.code, op.message, op.id)))
            return
        metrics.OPS.labels(name, "ok").inc()
        if isinstance(op, Ping):
            client.push(control(pong_frame(op.id)))
        elif isinstance(op, SetMode):
            client.session.set_mode(op.mode)
            client.push(control(ok_frame(op.id)))
        elif isinstance(op, Subscribe):
            await self._subscribe(client, op)
        elif isinstance(op, Unsubscribe):
            result = client.session.unsubscribe(op.channel)
            if isinstance(result, Refused):
                client.push(control(error_frame(result.code, result.message, op.id, op.channel)))
            else:
                self._index_remove(result, client)
                if result == PRESENCE and self._presence is not None:
                    self._presence.unwatch(client)
                client.push(control(unsubscribed_frame(result, op.id)))
        elif isinstance(op, Refresh):
            self._refresh(client, op)
        elif isinstance(op, Read):
            await self._read(client, op)
        elif isinstance(op, SetVisibility):
            await self._set_visibility(client, op)

    async def _subscribe(self, client: _Client, op: Subscribe) -> None:
        session = client.session
        opened = session.begin_subscribe(op.channel)
        if isinstance(opened, Refused):
            client.push(control(error_frame(opened.code, opened.message, op.id, op.channel)))
            return
        channel = opened
        if channel == PRESENCE:
            await self._subscribe_presence(client, op)
            return
        self._index_add(channel, client)
        try:
            store = self._require_store()
            latest = await store.latest_seq(channel)
            history: list[StoredEvent] = []
            recovered = False
            if op.since is not None:
                history, recovered = await store.history(channel, op.since, latest)
        except Exception as exc:
            log.warning("cannot read the history of %s: %s", channel, exc)
            session.abort_subscribe(channel)
            self._index_remove(channel, client)
            client.push(
                control(error_frame(UNAVAILABLE, "history unavailable; retry", op.id, channel))
            )
            return
        frames = session.replay(
            channel,
            latest=latest,
            since=op.since,
            history=history,
            recovered=recovered,
            op_id=op.id,
        )
        for item in frames:
            if not await client.push_paced(item):
                return
        for item in session.finish_subscribe(channel):
            if not client.push(item):
                return

    # -- presence (the rules and the shared state live in presence*.py) -------------

    async def _subscribe_presence(self, client: _Client, op: Subscribe) -> None:
        """`subscribed` (seq 0: presence has no history; `since` is ignored), then the snapshot."""
        session = client.session
        presence = self._presence
        if presence is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(presence.synced.wait(), PRESENCE_SYNC_WAIT)
            await presence.catch_up()
        if presence is None or not presence.synced.is_set():
            session.abort_subscribe(PRESENCE)
            client.push(control(error_frame(UNAVAILABLE, "presence unavailable; retry", op.id)))
            return
        for item in session.replay(
            PRESENCE, latest=0, since=None, history=[], recovered=False, op_id=op.id
        ):
            client.push(item)
        session.finish_subscribe(PRESENCE)
        snapshot = presence.watch(
            client, lambda payload: client.push(control(payload)), lambda: client.session.identity
        )
        client.push(control(snapshot))

    async def _set_visibility(self, client: _Client, op: SetVisibility) -> None:
        identity = client.session.identity
        if identity.user_id is None:
            client.push(control(error_frame("forbidden", "guests have no presence to hide", op.id)))
            return
        try:
            if self._presence is None:
                raise ConnectionError("presence is not running")
            await self._presence.set_visible(identity, op.visible)
        except Exception as exc:
            log.warning("cannot store the visibility of %s: %s", identity.user_id, exc)
            client.push(control(error_frame(UNAVAILABLE, "cannot store visibility; retry", op.id)))
            return
        client.push(control(ok_frame(op.id)))

    def _refresh(self, client: _Client, op: Refresh) -> None:
        try:
            identity = decode_token(op.token, self.settings.jwt_secret)
        except InvalidToken as exc:
            client.push(control(error_frame(BAD_REQUEST, f"invalid token: {exc}", op.id)))
            return
        result = client.session.refresh(identity)
        if isinstance(result, Refused):
            client.push(control(error_frame(result.code, result.message, op.id)))
            return
        for channel in result:
            self._index_remove(channel, client)
        client.refreshed.set()
        client.push(control(ok_frame(op.id)))
        for channel in result:
            client.push(control(unsubscribed_frame(channel)))

    async def _read(self, client: _Client, op: Read) -> None:
        checked = client.session.check_read(op.channel)
        if isinstance(checked, Refused):
            client.push(control(error_frame(checked.code, checked.message, op.id, op.channel)))
            return
        user_id = client.session.identity.user_id
        assert user_id is not None
        try:
            if self._redis is None:
                raise ConnectionError("redis is not connected")
            # A cursor beyond the inbox's newest event would hide future ones.
            latest = await self._require_store().latest_seq(checked)
            await self._redis.eval(
                _ADVANCE_CURSOR,
                1,
                self.settings.redis_key(f"gw:read:{user_id}"),
                str(min(op.seq, latest)),
                str(READ_CURSOR_TTL_SECONDS),
            )
        except Exception as exc:
            log.warning("cannot store the read cursor of %s: %s", user_id, exc)
            client.push(control(error_frame(UNAVAILABLE, "cannot store the cursor; retry", op.id)))
            return
        client.push(control(ok_frame(op.id)))

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
        subscribers: Iterable[_Client] = self._by_channel.get(channel, ())
        written = 0
        for client in tuple(subscribers):
            if client.deliver(event):
                written += 1
        if written:
            metrics.FRAMES_SENT.inc(written)


async def run_until_stopped(settings: Settings, config: GatewayConfig, stop: asyncio.Event) -> None:
    """Start a gateway, serve until `stop` is set, then stop it (clients get 1012)."""
    server = GatewayServer(settings, config)
    starting = asyncio.create_task(server.start())
    await stop.wait()
    await stop_tasks(starting)
    await server.stop()


if __name__ == "__main__":
    from community_gateway.app import main

    main()
