"""The whole stack as local processes, in the foreground (`./run stack`).

Against the Postgres, Redis and NATS found at `DATABASE_URL`, `REDIS_URL` and
`NATS_URL` (SPEC §1), it creates the database if it is missing, starts every
component present in the workspace as a child process with its `PORT`, waits
until each answers `/ready`, seeds the demo community (once; `--reseed` to run
the seed again), serves the demo page and prints where to connect, with
ready-made tokens. Ctrl-C or SIGTERM stops every process it started: SIGTERM to
each child's process group, SIGKILL after a grace period.

The environment is passed on to every child unchanged except `PORT`, so
`JWT_SECRET`, `HOST`, `NATS_SUBJECT_PREFIX`, `LOG_LEVEL`, ... apply to all.
`--port-offset N` shifts every port (two stacks side by side on one machine).

The decisions (which components, which ports, which environment, what is
missing, what to print) are plain functions; the I/O is at the bottom.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
from community_shared.migrations import ensure_database
from community_shared.settings import Settings

from infra.demo.server import DEMO_PORT, page_config, person_key, serve_in_thread
from infra.local import cluster
from infra.seed import ServiceUrls, seed, showcase_tokens

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "Community Live is ready."
BALANCER_READY_TIMEOUT = 15.0
"""Seconds for HAProxy to pass `/ready` on to a gateway once every gateway is ready."""


# --------------------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class Component:
    name: str
    module: str  # served by `python -m <module>`
    port: int  # the SPEC §1 default


COMPONENTS: tuple[Component, ...] = (
    Component("gateway", "community_gateway.app", 8000),
    Component("posts", "community_posts.app", 8001),
    Component("resources", "community_resources.app", 8002),
    Component("goals", "community_goals.app", 8003),
    Component("leaderboard", "community_leaderboard.app", 8004),
    Component("notifications", "community_notifications.app", 8005),
)


@dataclass(frozen=True)
class Options:
    port_offset: int = 0
    start_services: bool = False
    seed: bool = True
    reseed: bool = False
    ready_timeout: float = 60.0  # for all components together
    grace: float = 10.0
    cluster: bool = False  # infra/local/cluster.py
    nats_servers: int | None = None
    gateways: int | None = None
    instances: int | None = None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="./run stack", description="Start Community Live as local processes."
    )
    parser.add_argument(
        "--start-services",
        action="store_true",
        help="start local Postgres, Redis and NATS if they do not answer",
    )
    parser.add_argument("--reseed", action="store_true", help="run the seed even if already done")
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="skip the demo seed")
    parser.add_argument(
        "--port-offset", type=int, default=0, help="added to every port (default: SPEC ports)"
    )
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds per component")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds before SIGKILL on stop")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="a three-server NATS cluster, two gateways behind HAProxy, two of each service",
    )
    parser.add_argument("--nats-servers", type=int, help="with --cluster: NATS servers (3)")
    parser.add_argument("--gateways", type=int, help="with --cluster: gateway instances (2)")
    parser.add_argument("--instances", type=int, help="with --cluster: instances per service (2)")
    args = parser.parse_args(argv)
    if not 0 <= args.port_offset <= 50_000:
        parser.error("--port-offset must be between 0 and 50000")
    return Options(
        port_offset=args.port_offset,
        start_services=args.start_services,
        seed=args.seed,
        reseed=args.reseed,
        ready_timeout=args.ready_timeout,
        grace=args.grace,
        cluster=args.cluster,
        nats_servers=args.nats_servers,
        gateways=args.gateways,
        instances=args.instances,
    )


def module_exists(module: str) -> bool:
    """Whether `python -m module` can find it (without importing the module itself)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def plan_components(
    exists: Callable[[str], bool] = module_exists,
) -> tuple[list[Component], list[Component]]:
    """The components to start, and those skipped because their module is not there yet."""
    present = [c for c in COMPONENTS if exists(c.module)]
    return present, [c for c in COMPONENTS if c not in present]


def child_env(base: Mapping[str, str], port: int) -> dict[str, str]:
    """A component's environment: the runner's own, with its `PORT`, logs unbuffered."""
    return {**base, "PORT": str(port), "PYTHONUNBUFFERED": "1"}


def public_host(host: str) -> str:
    """Where a client on this machine connects when components listen on `host`."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Dependency:
    name: str
    host: str
    port: int

    @property
    def how_to_start(self) -> str:
        if self.name == "postgres":
            return "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        if self.name == "redis":
            return f"redis-server --daemonize yes --bind {self.host} --port {self.port} --save ''"
        return f"nats-server -a {self.host} -p {self.port} -js"

    @property
    def is_local(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")


def dependencies(settings: Settings) -> list[Dependency]:
    """Postgres, Redis and NATS, where the settings say they are."""
    found = []
    for name, url, default_port in (
        ("postgres", settings.database_url, 5432),
        ("redis", settings.redis_url, 6379),
        ("nats", settings.nats_servers[0], 4222),
    ):
        parsed = urlparse(url)
        found.append(Dependency(name, parsed.hostname or "127.0.0.1", parsed.port or default_port))
    return found


def missing_message(missing: Sequence[Dependency]) -> str:
    lines = ["Not reachable:"]
    for dep in missing:
        lines.append(f"  {dep.name} at {dep.host}:{dep.port}; start it with:")
        lines.append(f"      {dep.how_to_start}")
    lines.append("Or let the runner start them: ./run stack --start-services")
    return "\n".join(lines)


def connection_summary(
    host: str,
    started: Sequence[Component],
    port_offset: int,
    tokens: Sequence[tuple[str, str, str]],  # (role, name, token)
    sign_in: Sequence[
        tuple[str, str, str]
    ] = (),  # (role, name, ?as= key) when the demo sign-in is on
) -> str:
    """What the runner prints once everything answers."""
    lines = [READY_LINE, ""]
    for component in started:
        port = component.port + port_offset
        if component.name == "gateway":
            lines.append(f"  {'websocket':<12} ws://{host}:{port}/ws?token=<token>")
        else:
            docs = f"http://{host}:{port}/schema"
            lines.append(f"  {component.name:<12} http://{host}:{port}   (API docs: {docs})")
    demo = f"http://{host}:{DEMO_PORT + port_offset}/"
    lines.append(f"  {'demo page':<12} {demo}")
    if sign_in:
        lines += [
            "",
            "Sign in on the demo page by picking a person, or open it as (links never expire):",
        ]
        lines += [f"  {role:<10} {name:<14} {demo}?as={key}" for role, name, key in sign_in]
    if tokens:
        lines += ["", "Open the demo page as:"]
        lines += [f"  {role:<10} {name:<14} {demo}?token={token}" for role, name, token in tokens]
        lines += ["", "Tokens (24 h; more with ./run token --role student --name Ada):"]
        lines += [f"  {role:<10} {name:<14} {token}" for role, name, token in tokens]
        gateway = [c for c in started if c.name == "gateway"]
        if gateway:
            ws = f"ws://{host}:{gateway[0].port + port_offset}/ws?token={tokens[0][2]}"
            lines += [
                "",
                "Watch the feed live:",
                f'  uv run python -m websockets "{ws}"',
                '  then type {"op":"subscribe","channel":"feed"}',
            ]
    lines += ["", "Ctrl-C stops everything."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- processes (I/O)


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.process.returncode is None


async def _pump(name: str, stream: asyncio.StreamReader) -> None:
    """Copy a child's output to ours, each line prefixed with its name."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than the buffer: pass it on in pieces
            line = await stream.read(64 * 1024)
        if not line:
            return
        with contextlib.suppress(OSError):  # our stdout gone: keep draining the child
            sys.stdout.write(f"{name:<11}| {line.decode(errors='replace').rstrip()}\n")
            sys.stdout.flush()


async def spawn(name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
    """Start a child in its own session (so its whole process group can be signalled)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        limit=1024 * 1024,
    )
    child = Child(name, process)
    assert process.stdout is not None
    child.pump = asyncio.create_task(_pump(name, process.stdout))
    say(f"started {name} (pid {process.pid})")
    return child


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, sig)


async def stop(children: Sequence[Child], grace: float) -> None:
    """SIGTERM every child's process group; SIGKILL what is left after `grace` seconds."""
    alive = [c for c in children if c.running]
    for child in alive:
        _signal_group(child, signal.SIGTERM)
    if alive:
        _, pending = await asyncio.wait(
            [asyncio.create_task(c.process.wait()) for c in alive], timeout=grace
        )
        for child in alive:
            if child.running:
                say(f"{child.name} did not stop within {grace:g} s; killing it")
            _signal_group(child, signal.SIGKILL)  # also reaps stray grandchildren
        if pending:
            await asyncio.wait(pending)
    for child in children:
        if child.pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(child.pump, timeout=2)
        code = child.process.returncode
        how = f"by {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        say(f"stopped {child.name} (pid {child.process.pid}, {how})")


async def answers(dep: Dependency) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(dep.host, dep.port), timeout=1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


POSTGRES_CLUSTERS = Path("/etc/postgresql")


def postgres_versions() -> list[str]:
    """The PostgreSQL versions with a cluster configured (Debian layout), oldest first."""
    if not POSTGRES_CLUSTERS.is_dir():
        return []
    return sorted((p.name for p in POSTGRES_CLUSTERS.iterdir()), key=lambda v: (len(v), v))


async def start_dependency(dep: Dependency) -> Child | None:
    """Start a missing local Postgres or Redis (daemons) or NATS (a child of ours)."""
    say(f"starting {dep.name}: {dep.how_to_start}")
    if dep.name == "postgres":
        versions = postgres_versions()
        if not versions:
            raise RuntimeError(f"no PostgreSQL cluster under {POSTGRES_CLUSTERS}")
        argv = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    elif dep.name == "redis":
        argv = ["redis-server", "--daemonize", "yes", "--bind", dep.host]
        argv += ["--port", str(dep.port), "--save", ""]
    else:
        store = ROOT / ".run" / "nats"
        store.mkdir(parents=True, exist_ok=True)
        argv = ["nats-server", "-a", dep.host, "-p", str(dep.port), "-js", "-sd", str(store)]
        return await spawn("nats", argv, os.environ)
    process = await asyncio.create_subprocess_exec(*argv)
    if await process.wait() != 0:
        raise RuntimeError(f"{' '.join(argv)} failed")
    return None


async def start_nats_cluster(
    shape: cluster.ClusterShape, port_offset: int, stack: Stack
) -> tuple[dict[str, str], list[cluster.NatsServer]]:
    """Start the cluster's NATS servers (unless `NATS_URL` names one); the components' env."""
    servers: list[cluster.NatsServer] = []
    if not shape.external_nats:
        binary = cluster.nats_binary()
        if binary is None:
            raise RuntimeError("nats-server is not installed (needed by --cluster)")
        servers = cluster.nats_servers(shape.nats_servers, port_offset)
        store = cluster.state_dir(ROOT, port_offset) / "nats-cluster"
        for server in servers:
            (store / server.name).mkdir(parents=True, exist_ok=True)
            argv = cluster.nats_argv(binary, server, servers, store)
            stack.services.append(await spawn(server.name, argv, os.environ))
        await cluster.wait_jetstream(servers)
        say(f"NATS cluster of {len(servers)} servers is up")
    return cluster.cluster_env(os.environ, shape, servers), servers


async def start_balancer(
    gateways: Sequence[cluster.Instance], port_offset: int, stack: Stack, main: asyncio.Task[int]
) -> int | None:
    """HAProxy in front of the gateways, if installed; its port."""
    binary = cluster.haproxy_binary()
    ports = [(i.name, f"127.0.0.1:{i.port}") for i in gateways if i.component == "gateway"]
    if binary is None or not ports:
        say("HAProxy is not installed: no load balancer (clients use the gateways' own URLs)")
        return None
    port = cluster.BALANCER_PORT + port_offset
    config = cluster.state_dir(ROOT, port_offset) / "haproxy.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    maxconn = cluster.balancer_maxconn(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    config.write_text(cluster.haproxy_config(f"127.0.0.1:{port}", ports, maxconn))
    child = await spawn("haproxy", [binary, "-W", "-db", "-f", str(config)], os.environ)
    stack.services.append(child)
    stack.watchers.append(asyncio.create_task(watch(child, stack, main)))
    # "Ready" promises a balancer that takes connections and passes them on.
    url = f"http://127.0.0.1:{port}/ready"
    await wait_ready(url, "load balancer", time.monotonic() + BALANCER_READY_TIMEOUT, child)
    return port


async def wait_ready(url: str, name: str, deadline: float, child: Child) -> None:
    """Poll `url` until it answers 200; `RuntimeError` naming the reason otherwise.

    `deadline` is a `time.monotonic()` instant.
    """
    started = time.monotonic()
    last = "no answer"
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if not child.running:
                raise RuntimeError(f"{name} exited with code {child.process.returncode}")
            try:
                response = await client.get(url)
                if response.status_code == 200:
                    say(f"{name} ready ({time.monotonic() - started:.1f} s)")
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{name} not ready in time: {last}")


@dataclass
class Stack:
    """What the runner started, so that everything of it can be stopped."""

    components: list[Child] = field(default_factory=list)
    services: list[Child] = field(default_factory=list)  # e.g. NATS under --start-services
    watchers: list[asyncio.Task[None]] = field(default_factory=list)
    failure: str | None = None
    stopping: bool = False


async def watch(child: Child, stack: Stack, main: asyncio.Task[int]) -> None:
    """A component that dies takes the stack down (a half-running demo misleads)."""
    code = await child.process.wait()
    if not stack.stopping and stack.failure is None and not main.done():
        stack.failure = f"{child.name} exited with code {code}"
        main.cancel()


async def bring_up(options: Options, stack: Stack, main: asyncio.Task[int]) -> int:
    settings = Settings.from_env("runner", 0)
    host = public_host(settings.host)
    shape = None
    if options.cluster:
        shape = cluster.shape_from(
            os.environ, options.nats_servers, options.gateways, options.instances
        )

    needed = dependencies(settings)
    if shape is not None and not shape.external_nats:  # the cluster's NATS is ours
        needed = [dep for dep in needed if dep.name != "nats"]
    missing = [dep for dep in needed if not await answers(dep)]
    if missing and not options.start_services:
        say(missing_message(missing))
        return 2
    for dep in missing:
        if not dep.is_local:
            say(f"{dep.name} at {dep.host}:{dep.port} is not local; start it there")
            return 2
        started = await start_dependency(dep)
        if started is not None:
            stack.services.append(started)
        for _ in range(60):
            if await answers(dep):
                break
            await asyncio.sleep(0.5)
        else:
            say(f"{dep.name} did not come up on {dep.host}:{dep.port}")
            return 2

    await ensure_database(settings.database_url)

    present, absent = plan_components()
    for component in absent:
        say(f"skipping {component.name}: module {component.module} is not in the workspace yet")
    if not present:
        say("no component to start")
        return 1
    env: Mapping[str, str] = os.environ
    plan = [(c.name, c.module, c.port + options.port_offset) for c in present]
    if shape is not None:
        env, servers = await start_nats_cluster(shape, options.port_offset, stack)
        planned = cluster.instances(
            [(c.name, c.module, c.port) for c in present], shape, options.port_offset
        )
        plan = [(i.name, i.module, i.port) for i in planned]
    for name, module, port in plan:
        child = await spawn(name, [sys.executable, "-m", module], child_env(env, port))
        stack.components.append(child)
        stack.watchers.append(asyncio.create_task(watch(child, stack, main)))
    deadline = time.monotonic() + options.ready_timeout
    failures: list[str] = []
    try:
        async with asyncio.TaskGroup() as group:
            for (name, _, port), child in zip(plan, stack.components, strict=True):
                url = f"http://{host}:{port}/ready"
                group.create_task(wait_ready(url, name, deadline, child))
    except* RuntimeError as not_ready:
        failures = [str(error) for error in not_ready.exceptions]
    if failures:
        say("\n".join(failures))
        return 1
    if shape is not None:
        balancer = await start_balancer(planned, options.port_offset, stack, main)
        say(cluster.cluster_summary(host, servers, shape, planned, balancer))

    if options.seed:
        urls = ServiceUrls.local(host, options.port_offset)
        try:
            await seed(urls, settings, force=options.reseed, say=say)
        except Exception as exc:  # a half-seeded demo is still worth running
            say(f"seed: stopped early ({type(exc).__name__}: {exc}); the stack keeps running")

    # The demo sign-in (anyone may sign in as any demo person) is only for a
    # stack that runs with the demo data.
    config = page_config(options.port_offset, sign_in=options.seed)
    demo = serve_in_thread(
        settings.host, DEMO_PORT + options.port_offset, config, settings.jwt_secret
    )
    try:
        tokens = [(p.role, p.name, t) for p, t in showcase_tokens(settings.jwt_secret)]
        links = [(p.role, p.name, person_key(p)) for p, _ in showcase_tokens(settings.jwt_secret)]
        summary = connection_summary(
            host, present, options.port_offset, tokens, links if options.seed else ()
        )
        say("\n" + summary)
        await asyncio.Event().wait()  # until a signal or a dying component cancels us
    finally:
        demo.shutdown()
        demo.server_close()
    return 0


async def run(options: Options) -> int:
    main = asyncio.current_task()
    assert main is not None
    stack = Stack()
    loop = asyncio.get_running_loop()
    first_signal: list[float] = []

    def on_signal(sig: signal.Signals) -> None:
        # One stop request often arrives twice at once (a terminal signals the whole
        # foreground group, `uv run` forwards it too): only a repeat after a second
        # means "no more patience".
        if first_signal:
            if time.monotonic() - first_signal[0] > 1.0:
                say(f"{sig.name} again: killing every process")
                for child in stack.components + stack.services:
                    _signal_group(child, signal.SIGKILL)
            return
        first_signal.append(time.monotonic())
        say(f"\n{sig.name}: stopping")
        if not stack.stopping:
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await bring_up(options, stack, main)
    except asyncio.CancelledError:
        if stack.failure is not None:
            say(stack.failure + "; stopping")
            return 1
        if first_signal:
            return 0
        raise
    except Exception as exc:
        say(f"cannot start the stack: {exc}")
        return 1
    finally:
        stack.stopping = True
        await stop(stack.components, options.grace)
        await stop(stack.services, options.grace)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
