"""Private Redis and Postgres servers that fault tests may stop and start.

The machine's shared servers are never touched: each server here runs on a
free port with its data in a temporary directory, and is killed and removed
when the test ends. Service processes (for kill-and-restart tests) run as
subprocesses of the test, on free ports.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout} s")


class PrivateRedis:
    """A redis-server without persistence: a restart comes back empty, as a
    restarted cache does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", tempfile.gettempdir()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_until(lambda: _answers(self.port), 10, "private redis-server did not start")

    def kill(self) -> None:
        """Stop at once, as a crash or an OOM kill would (nothing is saved)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip(f"{name} not available for a private Postgres")
    return found[-1]


class PrivatePostgres:
    """A throwaway Postgres cluster (initdb in a temporary directory, pg_ctl on a
    free port, trust authentication). As root, it runs as the `postgres` user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cl-faults-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "postgres.log"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def init(self) -> None:
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._run(
            _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=100"
        )
        self._run(
            _postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(
                _postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30",
                "stop",
            )  # fmt: skip

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


def _serve_component(module: str, env: dict[str, str], log: str) -> None:
    """A component's `main()`, in a child forked from the preloaded fork server."""
    import importlib

    os.setsid()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    importlib.import_module(module).main()


_forkserver: Any = None


def _launcher(modules: list[str]) -> Any:
    """A multiprocessing context whose fork server has imported `modules` once:
    each start is then a fork (milliseconds), not an interpreter importing
    Litestar, nats and redis again (seconds on a busy machine). What a start
    does after the imports (connect, migrate, rebuild, start the relay and
    consumers), which is where a start-up can hang, runs in full."""
    import multiprocessing

    global _forkserver
    if _forkserver is None:
        _forkserver = multiprocessing.get_context("forkserver")
        _forkserver.set_forkserver_preload([__name__, *modules])
    return _forkserver


def warm_launcher(modules: list[str]) -> None:
    """Start the fork server (and its imports) now, e.g. while a database initialises."""
    from multiprocessing import forkserver

    _launcher(modules)
    forkserver.ensure_running()


class ServiceProcess:
    """One component run as its own process, killed with SIGKILL as production
    processes die. Started from a preloaded fork server (`_launcher`)."""

    def __init__(self, name: str, module: str, env: dict[str, str]) -> None:
        self.name = name
        self.module = module
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.process: Any = None
        self.log = Path(tempfile.mkstemp(prefix=f"cl-faults-{name}-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, modules: list[str] | None = None) -> None:
        context = _launcher(modules or [self.module])
        self.process = context.Process(
            target=_serve_component, args=(self.module, self.env, str(self.log)), daemon=True
        )
        self.process.start()

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a failed node would: no shutdown at all."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.join(timeout=10)
            self.process = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def remove(self) -> None:
        self.kill()
        with contextlib.suppress(OSError):
            self.log.unlink()


class Outcomes:
    """What the requests of a fault test got, by phase (`up`, `down`, `back`, ...)."""

    def __init__(self) -> None:
        self.phase = "up"
        self.by_phase: dict[str, list[tuple[str, int | None]]] = {}
        self.missing_retry_after: list[str] = []
        self.hangs: list[str] = []
        self.failures: list[str] = []  # 5xx other than 503, with the body

    def record(
        self, phase: str, route: str, status: int | None, headers: Any = None, body: str = ""
    ) -> None:
        """`phase`: the phase the request began in."""
        self.by_phase.setdefault(phase, []).append((route, status))
        if status == 503 and headers is not None and "retry-after" not in headers:
            self.missing_retry_after.append(route)
        if status is not None and status >= 500 and status != 503:
            self.failures.append(f"{phase} {route} {status}: {body[:300]}")

    def hang(self, phase: str, route: str) -> None:
        self.by_phase.setdefault(phase, []).append((route, None))
        self.hangs.append(f"{phase} {route}")

    def count(self, phase: str | None = None, status: int | None = None) -> int:
        phases = [phase] if phase else list(self.by_phase)
        return sum(
            1 for p in phases for _, s in self.by_phase.get(p, []) if status is None or s == status
        )

    def server_errors(self) -> int:
        return sum(1 for p in self.by_phase.values() for _, s in p if s is not None and s >= 500)

    def routes_answered(self, phase: str, status: int) -> set[str]:
        return {r for r, s in self.by_phase.get(phase, []) if s == status}


async def request(
    outcomes: Outcomes,
    client: Any,
    method: str,
    url: str,
    *,
    route: str,
    bound: float = 5.0,
    **kwargs: Any,
) -> Any:
    """One request, recorded; a request that takes longer than `bound` is a hang."""
    import asyncio

    phase = outcomes.phase
    try:
        async with asyncio.timeout(bound):
            response = await client.request(method, url, **kwargs)
    except TimeoutError:
        outcomes.hang(phase, route)
        return None
    outcomes.record(phase, route, response.status_code, response.headers, response.text)
    return response
