"""The gateway's I/O: the websocket server, fan-out from JetStream, the HTTP probes.

Everything that decides something lives in the pure modules (`channels`,
`protocol`, `sendqueue`, `coalesce`, `presence_rules`); this module moves
bytes between websockets, JetStream and Redis:

- the handshake (`process_request`): `GET /health`, `/ready`, `/metrics`,
  `/presence`, and for `/ws` who connects (`handshake.identity_of`: the
  `Authorization: Bearer` header or `?token=`), refused with 401 when
  invalid or expired;
- one reader task per connection feeding its messages to its
  `ConnectionProtocol` and performing the actions it returns, in order
  (perform.py); one writer task per connection draining its `SendQueue`
  (client.py), so a slow client only ever fills its own queue (and is
  closed with 4008 when that overflows);
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
import functools
import logging
import time
import uuid
import weakref

import redis.asyncio as aioredis
from community_shared.auth import GUEST, Identity, InvalidToken, decode_token
from community_shared.channelstreams import channel_of_subject
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
from community_gateway.client import CLOSE_INTERNAL_ERROR, Client, Timers
from community_gateway.config import MAX_FRAME_BYTES, GatewayConfig
from community_gateway.cursors import ReadCursors
from community_gateway.drain import close_offsets
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
from community_gateway.perform import ActionPerformer
from community_gateway.presence import PresenceService
from community_gateway.protocol import (
    CLOSE_RESTART,
    ConnectionProtocol,
    StoredEvent,
)
from community_gateway.router import Router
from community_gateway.store import ChannelStore
from community_gateway.wsadapter import WRITE_LIMIT, missing_internals

log = logging.getLogger(__name__)

DRAIN_CATCH_UP = 0.25
"""Seconds of closes a held-up drain may make up for at once (see `_drain`)."""


class GatewayServer(ActionPerformer):
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
        # A `refresh` op's check, one callable for every connection.
        self._decode_token = functools.partial(decode_token, secret=self.settings.jwt_secret)
        self._server: Server | None = None
        self._nc: NATS | None = None
        self._lease_nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._store: ChannelStore | None = None
        self._router: Router | None = None
        self._redis: aioredis.Redis | None = None
        self._cursors: ReadCursors | None = None
        self._presence: PresenceService | None = None
        self._fanout: list[Subscription] = []
        self._client_watch: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._clients: set[Client] = set()
        self._by_channel: dict[str, set[Client]] = {}
        self._arrived: list[StoredEvent] = []  # live events not fanned out yet
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
            # Keepalive pings come from `_watch_clients` (client.py), not from
            # a task per connection.
            ping_interval=None,
            ping_timeout=None,
            close_timeout=self.config.close_timeout,
            # Frames go to many clients: no per-connection compression state.
            compression=None,
            write_limit=WRITE_LIMIT,
            server_header=None,
            # Connections not yet accepted that the kernel keeps: when a gateway stops,
            # its clients reconnect to the others at once, and a SYN dropped from a
            # full queue is retried only after a second, then three more...
            backlog=self.config.listen_backlog,
        )
        log.info("gateway listening on %s:%s", self.settings.host, self.port)
        self._client_watch = asyncio.create_task(self._watch_clients())
        await self._bring_up()

    async def _watch_clients(self) -> None:
        """Check every client's backlog (4008 when due) and keepalive, several times
        per stall timeout and ping interval, at most a second apart."""
        config = self.config
        tick = max(0.05, min(1.0, config.stall_seconds / 4, config.ping_interval / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for client in tuple(self._clients):
                client.check_outbound(now)
                client.check_alive(now)

    async def _bring_up(self) -> None:
        self._nc = await connect_nats(self.settings, name=f"gateway-{self.instance_id}")
        js = self._nc.jetstream()
        self._js = js
        self._store = ChannelStore(js, self.settings, self.config)
        # The lease on a connection of its own: a renewal never queues behind
        # the routing's publishes or the fan-out's deliveries (see router.py).
        self._lease_nc = await connect_nats(self.settings, name=f"gateway-{self.instance_id}-lease")
        self._router = Router(js, self.settings, self.config, self._lease_nc.jetstream())
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
        self._cursors = ReadCursors(self._redis, self.settings)
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
        if self._client_watch is not None:
            self._client_watch.cancel()
            with contextlib.suppress(BaseException):
                await self._client_watch
            self._client_watch = None
        if self._presence is not None:
            await self._presence.stop()
        if self._router is not None:
            await self._router.stop()
        for subscription in self._fanout:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._fanout.clear()
        for nc in (self._nc, self._lease_nc):
            if nc is not None:
                with contextlib.suppress(Exception):
                    await nc.drain()
        self._nc = self._lease_nc = None
        if self._redis is not None:
            self._cursors = None
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
        protocol = ConnectionProtocol(identity, self.config, self._decode_token)
        client = Client(ws, protocol, self.config)
        timers = Timers(lambda timer: self._timer_due(client, timers, timer))
        self._clients.add(client)
        if self._presence is not None:
            self._presence.opened(identity)
        if self._stopping:  # accepted while stop() was closing the others
            client.close(CLOSE_RESTART, "server restart")
        metrics.CONNECTIONS.inc()
        metrics.CONNECTIONS_OPENED.inc()
        try:
            if not client.closing:
                await self._perform(client, timers, protocol.start())
            while not client.closing:
                # `recv()` rather than `async for`: no async generator per connection.
                message = await ws.recv()
                await self._perform(client, timers, protocol.receive(message, time.monotonic()))
                await self._perform(client, timers, protocol.op_done())
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("connection handler failed")
            client.close(CLOSE_INTERNAL_ERROR, "internal error")
        finally:
            self._unregister(client)
            if self._presence is not None:
                self._presence.unwatch(client)
                self._presence.closed(
                    client.session.identity, foreground=client.session.mode == "foreground"
                )
            timers.cancel()
            if not client.closing and client.link.is_open():
                client.close(1000, "")
            await client.stop()
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

    # -- fan-out ----------------------------------------------------------------

    async def _fan_out(self, msg: Msg) -> None:
        """Take a live channel event; it goes out with every other one that arrives
        before the event loop's next turn (`_fan_out_arrived`)."""
        channel = channel_of_subject(self.settings.unprefix(msg.subject))
        if channel is None:
            return
        metrics.FANOUT_EVENTS.inc()
        if channel not in self._by_channel:
            return  # no connection here listens: not even decoded
        try:
            event = StoredEvent.decode(channel, msg.metadata.sequence.stream, msg.data)
        except ValueError as exc:
            log.warning("skipping undecodable channel message on %s: %s", msg.subject, exc)
            return
        if not self._arrived:
            asyncio.get_running_loop().call_soon(self._fan_out_arrived)
        self._arrived.append(event)

    def _fan_out_arrived(self) -> None:
        """Fan out the events that arrived since the last turn, in order: one write per client.

        nats-py hands over every message that one read of its socket brought
        before it yields, so under load a burst of events reaches each
        subscriber in one write (one system call) instead of one per event:
        the send calls, not Python, are most of what a frame costs. An event
        alone goes out as it did before, one turn of the loop later.
        """
        events, self._arrived = self._arrived, []
        by_channel = self._by_channel
        written = 0
        channel = events[0].channel
        if all(event.channel == channel for event in events):
            for client in tuple(by_channel.get(channel, ())):
                written += _deliver(client, events)
        else:  # each client gets the events of its channels, still in arrival order
            mine: dict[Client, list[StoredEvent]] = {}
            for event in events:
                for client in by_channel.get(event.channel, ()):
                    theirs = mine.get(client)
                    if theirs is None:
                        mine[client] = [event]
                    else:
                        theirs.append(event)
            for client, theirs in mine.items():
                written += _deliver(client, theirs)
        if written:
            metrics.FRAMES_SENT.inc(written)


def _deliver(client: Client, events: list[StoredEvent]) -> int:
    """`client.deliver(events)`; a failure closes that client alone (1011, it reconnects and
    recovers with `since`) instead of ending the fan-out of these events to everyone else."""
    try:
        return client.deliver(events)
    except Exception:
        log.exception("fan-out to a client failed")
        client.close(CLOSE_INTERNAL_ERROR, "internal error")
        return 0


async def run_until_stopped(settings: Settings, config: GatewayConfig, stop: asyncio.Event) -> None:
    """Start a gateway, serve until `stop` is set, then stop it (clients get 1012)."""
    server = GatewayServer(settings, config)
    starting = asyncio.create_task(server.start())
    await stop.wait()
    await stop_tasks(starting)
    await server.stop()
