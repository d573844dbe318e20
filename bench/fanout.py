"""Gateway capacity against the bare `websockets.broadcast` floor, and the router's ceiling.

    uv run python bench/fanout.py                 # everything (about 15 minutes)
    uv run python bench/fanout.py --quick         # a short form (about 4 minutes)
    uv run python bench/fanout.py --only router   # one part: router, fanout,
                                                  # latency, memory, handshakes

Parts, each in one run against its floor where there is one:

- **router**: one gateway process, no client; `--router-events` envelopes
  (`posts.post.created`, as the posts service's outbox relay publishes them)
  already in `EVENTS` when the router takes the lease; events/s and gateway
  CPU per event until every one is in the channel stream and acknowledged.
- **fanout**: one gateway process and 1,000 / 5,000 / 10,000 light clients
  (raw sockets in separate processes, counting frames) subscribed to `feed`;
  `--events` `posts.post.created` envelopes published into `EVENTS` at max
  rate (pipelined). Then the same clients on two floors fed by a core NATS
  subject (the same payload size): a bare server that
  `websockets.broadcast`s each message (`bare`), and one that does only
  what the gateway does at its cheapest (`burst`: the messages of one turn
  of the loop framed once each and written to every connection in one
  `writelines`). Delivered frames/s, CPU µs per frame of the serving
  process, frames lost, ratios to each floor. The measured gateway also routes, unless
  `--routed-elsewhere` starts another gateway process first to hold the
  router lease (as in a cluster, where one instance routes for all).
- **latency**: publish → frame p50/p99 at 1,000 clients and 50 events/s,
  gateway (through `EVENTS`) and bare (through a core subject).
- **memory**: resident memory per idle connection (subscribed to `feed`) at
  10,000 and 20,000 connections, gateway and bare server; whether
  permessage-deflate was negotiated.
- **handshakes**: websocket handshakes per second with a JWT in the query,
  one client process opening connections 200 at a time.

The machine's load average is printed at the start and the end. With
`BENCH_GATEWAY_SRC=<dir>` the gateway process imports `community_gateway` from
`<dir>` (e.g. another commit's `gateway/src`, from `git archive`): before/after
runs in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nats
from _harness import free_port, percentile, python, wait_ready
from community_posts.events import POST_CREATED, SOURCE, AuthorRef, PostData
from community_shared.auth import issue_token
from community_shared.events import encode_envelope, make_event
from community_shared.settings import DEFAULT_JWT_SECRET, Settings
from community_shared.streams import ensure_event_stream
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

MARKER = b"bench:"
CONTENT = 40  # characters of post content: a feed frame of about 400 bytes
DIGITS = CONTENT - len(MARKER)


def raise_nofile() -> int:
    """Raise this process's soft limit on open files to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (2 cores: {os.cpu_count()})"


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ----------------------------------------------------------------- events


def post_created(index: int, mark: str) -> tuple[bytes, str]:
    """A `posts.post.created` envelope as the posts service builds it, and its msg id."""
    author = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    data = PostData(
        id=uuid.uuid4(),
        author=AuthorRef(id=author, name=f"Bench {index % 100}", role="student"),
        content=f"{mark}{index:0{CONTENT - len(mark)}d}",
        visibility="public",
        is_pinned=False,
        likes_count=0,
        replies_count=0,
        created_at=now,
        updated_at=now,
        edited=False,
    )
    envelope = make_event(POST_CREATED, data, source=SOURCE, actor_id=author)
    return encode_envelope(envelope), str(envelope.id)


async def publish_events(js: Any, subject: str, events: list[tuple[bytes, str]]) -> float:
    """Publish every envelope, pipelined, each acknowledged; return the seconds it took."""
    start = time.perf_counter()
    window = 2000
    futures: list[asyncio.Future[Any]] = []
    for payload, msg_id in events:
        futures.append(await js.publish_async(subject, payload, headers={"Nats-Msg-Id": msg_id}))
        if len(futures) >= window:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    return time.perf_counter() - start


class Run:
    """One benchmark run: its NATS prefix, its environment, its clean-up."""

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.nats_url = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
        self.prefix = f"bench{self.run_id}."
        self.secret = os.environ.get("JWT_SECRET", DEFAULT_JWT_SECRET)
        self.env = {
            "NATS_URL": self.nats_url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "JWT_SECRET": self.secret,
            "NATS_SUBJECT_PREFIX": self.prefix,
            "REDIS_KEY_PREFIX": f"bench{self.run_id}:",
            "LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
        }
        self.settings = Settings(
            service="bench", nats_url=self.nats_url, nats_subject_prefix=self.prefix
        )

    def fresh(self) -> None:
        """A new prefix: new streams, a new router consumer."""
        self.__init__()  # type: ignore[misc]

    async def cleanup(self, prefixes: list[str]) -> None:
        nc = await nats.connect(self.nats_url)
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if any(name.startswith(p.replace(".", "_")) for p in prefixes):
                await js.delete_stream(name)
        await nc.close()


def start_gateway(run: Run, **extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """A gateway process (its log in `$BENCH_LOG_DIR` if set) and its port; not yet ready."""
    port = free_port()
    env = {**os.environ, **run.env, "PORT": str(port), **extra}
    source = os.environ.get("BENCH_GATEWAY_SRC")
    if source:  # another build of the gateway package, for before/after runs
        env["PYTHONPATH"] = source
    log_dir = os.environ.get("BENCH_LOG_DIR")
    with open(f"{log_dir}/gateway-{port}.log" if log_dir else os.devnull, "wb") as log:
        proc = subprocess.Popen(
            [python(), "-m", "community_gateway.app"],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=raise_nofile,
        )
    return proc, port


def stop_gateway(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def gateway(run: Run, **extra: str) -> Any:
    """A gateway process and its port, once ready."""
    proc, port = start_gateway(run, **extra)
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready")
        yield proc, port
    finally:
        stop_gateway(proc)


async def router_consumer(js: Any, run: Run) -> tuple[str, str]:
    stream = run.settings.stream_name("EVENTS")
    durable = run.settings.stream_name("gateway_router")
    return stream, durable


def start_profile(args: argparse.Namespace, pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """With `--profile DIR`: py-spy samples `pid` into DIR/<name>.txt (collapsed stacks)."""
    if not args.profile:
        return None
    os.makedirs(args.profile, exist_ok=True)
    out = os.path.join(args.profile, f"{name}.txt")
    return subprocess.Popen(
        [
            "uvx",
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "250",
            "--nonblocking",
            "--gil",
            *os.environ.get("BENCH_PYSPY_ARGS", "").split(),
            "-o",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=30)


# ----------------------------------------------------------------- router ceiling


async def bench_router(args: argparse.Namespace) -> dict[str, float]:
    """A backlog in EVENTS, a gateway standing by; timed from its router's first delivery."""
    from community_gateway.lease import Lease

    run = Run()
    nc = await nats.connect(run.nats_url)
    js = nc.jetstream()
    await ensure_event_stream(js, run.settings)
    stream, durable = await router_consumer(js, run)
    # The router's durable consumer, made beforehand (the gateway keeps an
    # existing one), so that the backlog waits for the router.
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=10.0,
            deliver_policy=DeliverPolicy.NEW,
            max_ack_pending=20_000,
            max_deliver=-1,
        ),
    )
    events = [post_created(i, "router") for i in range(args.router_events)]
    took = await publish_events(js, run.settings.subject("posts.post.created"), events)
    print(f"  router: {len(events):,} envelopes in EVENTS ({len(events) / took:,.0f}/s published)")
    # The bench holds the router lease while the gateway starts, so that the
    # gateway stands by; released, the gateway takes over and routes the backlog.
    lease = Lease(js, run.settings, 1.2, "bench")
    await lease.ensure_stream()
    if not await lease.try_hold():
        raise RuntimeError("cannot take the router lease")

    async def hold() -> None:
        while True:
            await asyncio.sleep(lease.renew_every)
            # A renewal that times out while the gateway starts (both cores
            # busy) is tried again; should the lease lapse meanwhile, the
            # gateway starts routing early, and the measurement below starts
            # at the first delivery it sees, counting only what is left.
            with contextlib.suppress(Exception):
                await lease.try_hold()

    holding = asyncio.create_task(hold())
    proc, port = start_gateway(run)
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/ready")
        holding.cancel()
        with contextlib.suppress(Exception):  # lapsed meanwhile: nothing to release
            await lease.release()
        profiler = start_profile(args, proc.pid, "router")
        began = time.perf_counter()
        while True:  # the first delivery to the router starts the clock
            info = await js.consumer_info(stream, durable)
            if info.delivered is not None and info.delivered.stream_seq > 0:
                break
            if time.perf_counter() - began > 30:
                raise RuntimeError("the gateway did not take the router lease")
            await asyncio.sleep(0.01)
        user0, sys0 = cpu_split(proc.pid)
        start = time.perf_counter()
        floor0 = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        while True:
            info = await js.consumer_info(stream, durable)
            floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
            if floor >= len(events):
                break
            if time.perf_counter() - start > 600:
                raise RuntimeError("router did not finish in 600 s")
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        user1, sys1 = cpu_split(proc.pid)
        user, system = user1 - user0, sys1 - sys0
        measured = len(events) - floor0
        stop_profile(profiler)
        channels = await js.stream_info(run.settings.stream_name("CHANNELS"))
        routed = channels.state.last_seq
        return {
            "events": measured,
            "routed": routed,
            "seconds": elapsed,
            "rate": measured / elapsed,
            "cpu_us": (user + system) / measured * 1e6,
            "sys_us": system / measured * 1e6,
        }
    finally:
        holding.cancel()
        stop_gateway(proc)
        await nc.close()
        await run.cleanup([run.prefix])


def print_router(result: dict[str, float]) -> None:
    print(
        f"  router: {int(result['events']):,} events in {result['seconds']:.2f} s = "
        f"{result['rate']:,.0f} events/s, {result['cpu_us']:.0f} µs gateway CPU/event "
        f"({result['sys_us']:.0f} in the kernel), "
        f"{int(result['routed']):,} channel events in CHANNELS (last seq)"
    )


# ----------------------------------------------------------------- light clients

HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    # Offered as browsers offer it; what the server accepts is reported.
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (mask key zero: the payload goes as is; servers do not check)."""
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


class LightClient(asyncio.Protocol):
    """A websocket client that parses frame headers and counts text frames, nothing more.

    Pings are answered (the gateway closes a client that does not answer);
    with `record`, the index after MARKER in each text frame is kept with
    its arrival time (for latency).
    """

    def __init__(self, pool: ClientPool, request: bytes) -> None:
        self.pool = pool
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.open = False
        self.frames = 0
        self.opened: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost += 1
        if not self.opened.done():
            self.opened.set_result(False)

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data, self.buffer = self.buffer[:end].lower(), self.buffer[end + 4 :], b""
            if not head.startswith(b"http/1.1 101"):
                self.opened.set_result(False)
                assert self.transport is not None
                self.transport.close()
                return
            self.pool.compressed += b"sec-websocket-extensions" in head
            self.open = True
            if self.pool.subscribe is not None:
                assert self.transport is not None
                self.transport.write(self.pool.subscribe)
            self.opened.set_result(True)
            if not data:
                return
        buf = self.buffer + data if self.buffer else data
        pos, size = 0, len(buf)
        pool = self.pool
        while size - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 1:
                self.frames += 1
                pool.bytes += length
                if pool.record:
                    at = buf.find(MARKER, pos + head, end)
                    if at >= 0:
                        start = at + len(MARKER)
                        pool.arrival_index.append(int(buf[start : start + DIGITS]))
                        pool.arrival_time.append(time.time())
            elif opcode == 9 and self.transport is not None:
                self.transport.write(client_frame(0xA, buf[pos + head : end]))
            pos = end
        self.buffer = buf[pos:]
        pool.last = time.time()


class ClientPool:
    """This process's share of the light clients."""

    def __init__(self, url: str, subscribe: bytes | None, record: bool) -> None:
        host_port, _, path = url.removeprefix("ws://").partition("/")
        self.host, port = host_port.split(":")
        self.port = int(port)
        self.path = "/" + path
        self.subscribe = subscribe
        self.record = record
        self.clients: list[LightClient] = []
        self.lost = 0
        self.compressed = 0
        self.bytes = 0
        self.last = 0.0
        self.arrival_index: list[int] = []
        self.arrival_time: list[float] = []

    async def open(self, count: int, tokens: list[str] | None = None, step: int = 200) -> float:
        """Open `count` connections, `step` at a time; return the seconds it took."""
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        for first in range(0, count, step):
            batch = []
            for i in range(first, min(count, first + step)):
                path = self.path if tokens is None else f"{self.path}?token={tokens[i]}"
                request = HANDSHAKE.format(path=path, host=f"{self.host}:{self.port}").encode()
                client = LightClient(self, request)
                batch.append(client)
                await loop.create_connection(lambda c=client: c, self.host, self.port)
            results = await asyncio.gather(*(c.opened for c in batch))
            if not all(results):
                raise RuntimeError(f"{results.count(False)} handshakes refused")
            self.clients.extend(batch)
        return time.perf_counter() - start

    def reset(self) -> None:
        for client in self.clients:
            client.frames = 0
        self.bytes = 0
        self.arrival_index.clear()
        self.arrival_time.clear()

    def close(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.transport.close()
        self.clients.clear()


def _pool_main(
    url: str, count: int, subscribe: bytes | None, record: bool, conn: Any, tokens: list[str] | None
) -> None:
    gc.disable()
    raise_nofile()
    import uvloop

    async def serve() -> None:
        pool = ClientPool(url, subscribe, record)
        took = await pool.open(count, tokens)
        await asyncio.sleep(1.0 if subscribe is not None else 0.2)  # the subscriptions settle
        conn.send({"opened": len(pool.clients), "seconds": took, "compressed": pool.compressed})
        while True:
            while not conn.poll():
                await asyncio.sleep(0.02)
            command = conn.recv()
            if command == "reset":
                pool.reset()
                conn.send("ok")
            elif command == "report":
                frames = [c.frames for c in pool.clients]
                conn.send(
                    {
                        "frames": sum(frames),
                        "min": min(frames, default=0),
                        "max": max(frames, default=0),
                        "bytes": pool.bytes,
                        "last": pool.last,
                        "lost_connections": pool.lost,
                        "arrivals": list(zip(pool.arrival_index, pool.arrival_time, strict=True)),
                    }
                )
            elif command == "close":
                pool.close()
                await asyncio.sleep(0.5)
                conn.send("closed")
                return

    uvloop.run(serve())


class Clients:
    """Light clients in `procs` processes, driven from here."""

    def __init__(
        self,
        url: str,
        count: int,
        procs: int,
        subscribe: bytes | None,
        record: bool = False,
        tokens: list[str] | None = None,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        share = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        at = 0
        for n in share:
            mine, theirs = ctx.Pipe()
            part = tokens[at : at + n] if tokens is not None else None
            at += n
            proc = ctx.Process(
                target=_pool_main, args=(url, n, subscribe, record, theirs, part), daemon=True
            )
            proc.start()
            self.conns.append(mine)
            self.procs.append(proc)
        self.opened = [conn.recv() for conn in self.conns]

    @property
    def compressed(self) -> int:
        return sum(o["compressed"] for o in self.opened)

    @property
    def open_seconds(self) -> float:
        return max(o["seconds"] for o in self.opened)

    def ask(self, command: str) -> list[Any]:
        for conn in self.conns:
            conn.send(command)
        return [conn.recv() for conn in self.conns]

    def report(self) -> dict[str, Any]:
        parts = self.ask("report")
        return {
            "frames": sum(p["frames"] for p in parts),
            "min": min(p["min"] for p in parts),
            "max": max(p["max"] for p in parts),
            "bytes": sum(p["bytes"] for p in parts),
            "last": max(p["last"] for p in parts),
            "lost_connections": sum(p["lost_connections"] for p in parts),
            "arrivals": [a for p in parts for a in p["arrivals"]],
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask("close")
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


# ----------------------------------------------------------------- bare server


def _bare_main(port: int, nats_url: str, subject: str, ready: Any, bursts: bool) -> None:
    """The floor: a websockets server that sends every message of `subject` to every
    connection. `bursts=False`: `websockets.broadcast` per message (a frame built and
    written per client). `bursts=True`: what the gateway does at its cheapest and
    nothing more; the messages that arrive before the loop's next turn are framed
    once each and written to every open connection in one `writelines`."""
    gc.disable()
    raise_nofile()
    import uvloop
    from websockets.asyncio.server import broadcast, serve
    from websockets.frames import Frame, Opcode
    from websockets.protocol import State

    async def run() -> None:
        async def handler(ws: Any) -> None:
            await ws.wait_closed()

        # No compression: the same choice as the gateway's (see docs/gateway.md). A
        # listen backlog of 1,024: 200 clients connect at once, and a SYN dropped from
        # a full queue of 100 once left a client pool waiting for good.
        async with serve(
            handler, "127.0.0.1", port, ping_interval=None, compression=None, backlog=1024
        ) as server:
            nc = await nats.connect(nats_url)
            loop = asyncio.get_running_loop()
            arrived: list[bytes] = []

            def write_burst() -> None:
                frames = [Frame(Opcode.TEXT, data).serialize(mask=False) for data in arrived]
                arrived.clear()
                for ws in server.connections:
                    if ws.protocol.state is State.OPEN and not ws.transport.is_closing():
                        ws.transport.writelines(frames)

            async def on_msg(msg: Any) -> None:
                if not bursts:
                    broadcast(server.connections, msg.data.decode())
                    return
                if not arrived:
                    loop.call_soon(write_burst)
                arrived.append(msg.data)

            await nc.subscribe(subject, cb=on_msg, pending_msgs_limit=1_000_000)
            ready.set()
            await asyncio.Future()

    uvloop.run(run())


@contextlib.contextmanager
def bare_server(run: Run, bursts: bool = False) -> Any:
    port = free_port()
    subject = f"{run.prefix}bare"
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(
        target=_bare_main, args=(port, run.nats_url, subject, ready, bursts), daemon=True
    )
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("bare server did not start")
        yield proc, port, subject
    finally:
        proc.kill()
        proc.join(timeout=10)


@contextlib.contextmanager
def serving(run: Run, name: str) -> Iterator[tuple[Any, str]]:
    """The gateway or the bare server (`name`), and the websocket URL clients use."""
    if name == "gateway":
        with gateway(run) as (proc, port):
            yield proc, f"ws://127.0.0.1:{port}/ws"
    else:
        with bare_server(run) as (proc, port, _subject):
            yield proc, f"ws://127.0.0.1:{port}/"


# ----------------------------------------------------------------- fan-out

SUBSCRIBE = client_frame(1, b'{"op":"subscribe","channel":"feed"}')


def wait_frames(clients: Clients, expected: int, idle: float = 10.0) -> dict[str, Any]:
    """Poll until `expected` frames arrived, or none arrived for `idle` seconds."""
    seen, since = -1, time.monotonic()
    while True:
        report = clients.report()
        if report["frames"] >= expected:
            return report
        if report["frames"] != seen:
            seen, since = report["frames"], time.monotonic()
        elif time.monotonic() - since > idle:
            return report
        time.sleep(0.25)


def bare_frame(size: int, index: int) -> bytes:
    """A feed-like frame of `size` bytes carrying MARKER and `index`."""
    head = (
        f'{{"op":"event","channel":"feed","seq":{index},"type":"post.created","data":{{"content":"'
    )
    body = f"{MARKER.decode()}{index:0{DIGITS}d}"
    pad = max(0, size - len(head) - len(body) - 3)
    return f'{head}{body}{"x" * pad}"}}}}'.encode()


async def fanout_gateway(args: argparse.Namespace, count: int, events: int) -> dict[str, Any]:
    run = Run()
    nc = await nats.connect(run.nats_url)
    js = nc.jetstream()
    try:
        with contextlib.ExitStack() as stack:
            if args.routed_elsewhere:
                # Started first, this instance holds the router lease: the
                # measured one only fans out, as the other instances of a cluster do.
                stack.enter_context(gateway(run))
            proc, port = stack.enter_context(gateway(run))
            clients = Clients(f"ws://127.0.0.1:{port}/ws", count, args.client_procs, SUBSCRIBE)
            try:
                payloads = [post_created(i, MARKER.decode()) for i in range(events)]
                clients.ask("reset")
                profiler = start_profile(args, proc.pid, f"fanout-{count}")
                user0, sys0 = cpu_split(proc.pid)
                start = time.time()
                await publish_events(js, run.settings.subject("posts.post.created"), payloads)
                report = await asyncio.to_thread(wait_frames, clients, events * count)
                user1, sys1 = cpu_split(proc.pid)
                stop_profile(profiler)
                rss = rss_kib(proc.pid)
            finally:
                clients.close()
    finally:
        await nc.close()
        await run.cleanup([run.prefix])
    return measure(report, start, (user1 - user0) + (sys1 - sys0), events, count) | {"rss": rss}


async def fanout_bare(
    args: argparse.Namespace, count: int, events: int, size: int, bursts: bool = False
) -> dict[str, Any]:
    run = Run()
    nc = await nats.connect(run.nats_url)
    try:
        with bare_server(run, bursts) as (proc, port, subject):
            clients = Clients(f"ws://127.0.0.1:{port}/", count, args.client_procs, None)
            try:
                frames = [bare_frame(size, i) for i in range(events)]
                clients.ask("reset")
                user0, sys0 = cpu_split(proc.pid)
                start = time.time()
                for frame in frames:
                    await nc.publish(subject, frame)
                await nc.flush()
                report = await asyncio.to_thread(wait_frames, clients, events * count)
                user1, sys1 = cpu_split(proc.pid)
                rss = rss_kib(proc.pid)
            finally:
                clients.close()
    finally:
        await nc.close()
    return measure(report, start, (user1 - user0) + (sys1 - sys0), events, count) | {"rss": rss}


def measure(
    report: dict[str, Any], start: float, cpu: float, events: int, count: int
) -> dict[str, Any]:
    frames = report["frames"]
    seconds = max(1e-9, report["last"] - start)
    return {
        "clients": count,
        "events": events,
        "frames": frames,
        "expected": events * count,
        "lost": max(0, events * count - frames),
        "rate": frames / seconds,
        "cpu_us": cpu / max(1, frames) * 1e6,
        "size": report["bytes"] / max(1, frames),
        "min": report["min"],
        "max": report["max"],
        "closed": report["lost_connections"],
    }


async def bench_fanout(
    args: argparse.Namespace,
) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    rows = []
    for count in args.clients:
        events = max(20, args.frames // count)
        gw = await fanout_gateway(args, count, events)
        bare = await fanout_bare(args, count, events, round(gw["size"]))
        burst = await fanout_bare(args, count, events, round(gw["size"]), bursts=True)
        rows.append((gw, bare, burst))
        print_fanout_row(gw, bare, burst)
    return rows


def print_fanout_row(gw: dict[str, Any], bare: dict[str, Any], burst: dict[str, Any]) -> None:
    for name, r in (("gateway", gw), ("bare", bare), ("burst", burst)):
        print(
            f"  fanout {r['clients']:>6,} clients {name:>7}: "
            f"{r['frames']:,}/{r['expected']:,} frames ({r['size']:.0f} B), "
            f"lost {r['lost']:,}, {r['rate']:,.0f} frames/s, "
            f"{r['cpu_us']:.1f} µs CPU/frame, per client {r['min']}-{r['max']}, "
            f"closed {r['closed']}"
        )
    for name, floor in (("ratio", bare), ("÷burst", burst)):
        print(
            f"  fanout {gw['clients']:>6,} clients {name:>7}: "
            f"frames/s {ratio(gw['rate'], floor['rate']):.2f}x, "
            f"CPU/frame {ratio(gw['cpu_us'], floor['cpu_us']):.2f}x"
        )


def ratio(value: float, floor: float) -> float:
    return value / floor if floor else float("nan")


# ----------------------------------------------------------------- latency


async def bench_latency(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    total = int(args.rate * args.duration)
    results = {}
    run = Run()
    nc = await nats.connect(run.nats_url)
    js = nc.jetstream()
    try:
        with gateway(run) as (_proc, port):
            clients = Clients(
                f"ws://127.0.0.1:{port}/ws", 1000, args.client_procs, SUBSCRIBE, record=True
            )
            try:
                payloads = [post_created(i, MARKER.decode()) for i in range(total)]
                subject = run.settings.subject("posts.post.created")
                clients.ask("reset")
                sent = {}
                begin = time.perf_counter()
                for i, (payload, msg_id) in enumerate(payloads):
                    await asyncio.sleep(max(0.0, begin + i / args.rate - time.perf_counter()))
                    sent[i] = time.time()
                    await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
                report = await asyncio.to_thread(wait_frames, clients, total * 1000, 5.0)
            finally:
                clients.close()
        results["gateway"] = latency_summary(sent, report, total * 1000)
        with bare_server(run) as (_proc, port, subject):
            clients = Clients(f"ws://127.0.0.1:{port}/", 1000, args.client_procs, None, record=True)
            try:
                clients.ask("reset")
                sent = {}
                begin = time.perf_counter()
                for i in range(total):
                    await asyncio.sleep(max(0.0, begin + i / args.rate - time.perf_counter()))
                    sent[i] = time.time()
                    await nc.publish(subject, bare_frame(400, i))
                    await nc.flush()
                report = await asyncio.to_thread(wait_frames, clients, total * 1000, 5.0)
            finally:
                clients.close()
        results["bare"] = latency_summary(sent, report, total * 1000)
    finally:
        await nc.close()
        await run.cleanup([run.prefix])
    return results


def latency_summary(
    sent: dict[int, float], report: dict[str, Any], expected: int
) -> dict[str, float]:
    values = [(t - sent[i]) * 1000 for i, t in report["arrivals"] if i in sent]
    return {
        "n": len(values),
        "expected": expected,
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values, default=float("nan")),
    }


def print_latency(results: dict[str, dict[str, float]], rate: float) -> None:
    for name, r in results.items():
        print(
            f"  latency 1,000 clients {rate:g} events/s {name:>7}: "
            f"{int(r['n']):,}/{int(r['expected']):,} "
            f"frames, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms"
        )


# ----------------------------------------------------------------- memory


async def bench_memory(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for wanted in args.memory:
        count = min(wanted, args.max_connections)
        for name in ("gateway", "bare"):
            run = Run()
            subscribe = SUBSCRIBE if name == "gateway" else None
            try:
                with serving(run, name) as (proc, url):
                    await asyncio.sleep(2.0)
                    before = rss_kib(proc.pid)
                    clients = Clients(url, count, args.client_procs, subscribe)
                    try:
                        await asyncio.sleep(3.0)
                        after = rss_kib(proc.pid)
                        report = clients.report()
                    finally:
                        clients.close()
            finally:
                await run.cleanup([run.prefix])
            row = {
                "server": name,
                "wanted": wanted,
                "connections": count - report["lost_connections"],
                "per_conn": (after - before) / count,
                "rss": after,
                "compressed": clients.compressed,
            }
            rows.append(row)
            print_memory(row)
    return rows


def print_memory(r: dict[str, Any]) -> None:
    note = "" if r["connections"] == r["wanted"] else f" (asked for {r['wanted']:,})"
    print(
        f"  memory {r['server']:>7}: {r['connections']:,} idle connections{note}, "
        f"{r['per_conn']:.1f} KiB each (RSS {r['rss'] / 1024:.0f} MiB), "
        f"compression negotiated on {r['compressed']:,}"
    )


# ----------------------------------------------------------------- handshakes


async def bench_handshakes(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    count = args.handshakes
    for name in ("gateway", "bare"):
        run = Run()
        tokens = (
            [
                issue_token(sub=uuid.uuid4(), role="student", name=f"Bench {i}", secret=run.secret)
                for i in range(count)
            ]
            if name == "gateway"
            else None
        )
        try:
            with serving(run, name) as (proc, url):
                profiler = start_profile(args, proc.pid, f"handshakes-{name}")
                user0, sys0 = cpu_split(proc.pid)
                clients = Clients(url, count, 1, None, tokens=tokens)
                user1, sys1 = cpu_split(proc.pid)
                stop_profile(profiler)
                clients.close()
        finally:
            await run.cleanup([run.prefix])
        row = {
            "server": name,
            "count": count,
            "rate": count / clients.open_seconds,
            "cpu_us": ((user1 - user0) + (sys1 - sys0)) / count * 1e6,
        }
        rows.append(row)
        print(
            f"  handshakes {name:>7}{' (JWT)' if name == 'gateway' else ''}: {count:,} in "
            f"{clients.open_seconds:.2f} s = {row['rate']:,.0f}/s, "
            f"{row['cpu_us']:.0f} µs server CPU each"
        )
    return rows


# ----------------------------------------------------------------- main


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short form of every part")
    parser.add_argument("--only", default=None, help="comma-separated parts")
    parser.add_argument("--router-events", type=int, default=None)
    parser.add_argument(
        "--clients", default=None, help="client counts for the fan-out, e.g. 1000,5000"
    )
    parser.add_argument("--frames", type=int, default=None, help="frames per fan-out row")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--routed-elsewhere",
        action="store_true",
        help="fan-out: another gateway process routes, the measured one only fans out",
    )
    parser.add_argument("--rate", type=float, default=50.0, help="events/s for the latency part")
    parser.add_argument("--duration", type=float, default=None, help="seconds for the latency part")
    parser.add_argument("--memory", default=None, help="connection counts for the memory part")
    parser.add_argument("--handshakes", type=int, default=None)
    parser.add_argument(
        "--profile", default=None, help="directory for py-spy profiles (router, fanout)"
    )
    args = parser.parse_args()
    parts = set((args.only or "router,fanout,latency,memory,handshakes").split(","))
    if args.router_events is None:
        args.router_events = 10_000 if args.quick else 20_000
    args.clients = [
        int(c)
        for c in (args.clients or ("1000,5000" if args.quick else "1000,5000,10000")).split(",")
    ]
    args.frames = args.frames or (400_000 if args.quick else 2_000_000)
    args.duration = args.duration or (10.0 if args.quick else 30.0)
    args.memory = [
        int(c) for c in (args.memory or ("10000" if args.quick else "10000,20000")).split(",")
    ]
    args.handshakes = args.handshakes or (1000 if args.quick else 3000)
    limit = raise_nofile()
    # A server holds one descriptor per connection plus a few of its own (listener,
    # NATS, Redis, epoll, logs): that many connections at most per process.
    args.max_connections = limit - 64
    print(f"load average at start: {loadavg()}; open files per process: {limit}")
    if "router" in parts:
        print_router(await bench_router(args))
    if "fanout" in parts:
        await bench_fanout(args)
    if "latency" in parts:
        print_latency(await bench_latency(args), args.rate)
    if "memory" in parts:
        await bench_memory(args)
    if "handshakes" in parts:
        await bench_handshakes(args)
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
