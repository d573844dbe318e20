"""Shared pieces of the benchmark scripts: processes, ports, websocket listeners.

The listener side runs in its own process so that measuring does not steal the
event loop of the process that sends; timestamps are wall-clock
(`time.time()`), comparable across processes on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import websockets
from websockets.asyncio.client import connect


class Callgrind:
    """Counting instructions of this process when it runs under callgrind.

    Seconds on a shared machine move with whatever else runs; the instructions
    a process executes for the same work do not. Run a script as

        CALLGRIND_OUT=/tmp/x valgrind --tool=callgrind --instr-atstart=no \\
            --callgrind-out-file=/tmp/x .venv/bin/python bench/<script>.py

    and `count()` returns the instructions executed inside its block (0 when
    not under callgrind: the script then only times)."""

    def __init__(self) -> None:
        self.out = os.environ.get("CALLGRIND_OUT", "")
        try:
            maps = open(f"/proc/{os.getpid()}/maps").read()  # noqa: SIM115
        except OSError:
            maps = ""
        self.active = "vgpreload" in maps and bool(self.out)
        self.dumps = 0

    def _control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(os.getpid())], check=True, stdout=subprocess.DEVNULL
        )

    @contextlib.contextmanager
    def count(self) -> Iterator[list[int]]:
        """`with callgrind.count() as counted:` ...; then `counted[0]` instructions."""
        counted = [0]
        if not self.active:
            yield counted
            return
        self._control("-z")
        self._control("-i", "on")
        try:
            yield counted
        finally:
            self._control("-i", "off")
            self._control("-d")
            self.dumps += 1
            with open(f"{self.out}.{self.dumps}") as dump:
                for line in dump:
                    if line.startswith("totals:"):
                        counted[0] = int(line.split()[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout}s")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """Run a component as a subprocess for the duration of the block."""
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=log, stderr=log, start_new_session=True
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def cpu_seconds(pids: dict[str, int], names: tuple[str, ...] = ()) -> dict[str, float]:
    """CPU time (user + system, seconds) used so far by each process of `pids`
    (label -> pid) and, summed, by every process whose name starts with one of
    `names` (on this machine: the local Postgres, Redis and NATS). Read from
    /proc; empty where there is none."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used: dict[str, float] = {}

    def read(pid: str) -> tuple[str, float] | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return None
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        return name, (int(fields[11]) + int(fields[12])) / tick

    for label, pid in pids.items():
        found = read(str(pid))
        if found is not None:
            used[label] = found[1]
    if names and os.path.isdir("/proc"):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                found = read(entry)
                if found is not None:
                    for name in names:
                        if found[0].startswith(name):
                            used[name] = used.get(name, 0.0) + found[1]
    return used


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies_ms),
        "p50": percentile(latencies_ms, 50),
        "p90": percentile(latencies_ms, 90),
        "p99": percentile(latencies_ms, 99),
        "max": max(latencies_ms) if latencies_ms else float("nan"),
        "mean": statistics.fmean(latencies_ms) if latencies_ms else float("nan"),
    }


# ----------------------------------------------------------------- listeners


async def _listen(
    url: str,
    clients: int,
    subscribe: dict[str, Any] | None,
    ready: Any,
    stop: Any,
    out: Any,
    marker: str,
) -> None:
    arrivals: list[tuple[str, float]] = []
    connections = []

    async def one(index: int) -> None:
        ws = await connect(url, max_size=2**20, open_timeout=60, ping_interval=None)
        connections.append(ws)
        if subscribe is not None:
            await ws.send(json.dumps(subscribe))
        keep = index < clients  # every client records; parsing is cheap string search
        async for frame in ws:
            now = time.time()
            if keep and isinstance(frame, str):
                at = frame.find(marker)
                if at >= 0:
                    start = at + len(marker)
                    arrivals.append((frame[start : start + 36], now))

    tasks = []
    for i in range(clients):
        tasks.append(asyncio.create_task(one(i)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    while len(connections) < clients:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # subscriptions settle
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # stragglers
    for task in tasks:
        task.cancel()
    out.send(arrivals)


def _listener_main(
    url: str,
    clients: int,
    subscribe: dict[str, Any] | None,
    ready: Any,
    stop: Any,
    out: Any,
    marker: str,
) -> None:
    # The arrivals recorded (hundreds of thousands of tuples) would set off full
    # garbage collections that pause every client at once, in the middle of a
    # measurement; this short-lived process makes no garbage worth collecting.
    gc.disable()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_listen(url, clients, subscribe, ready, stop, out, marker))


class Listeners:
    """`clients` websocket connections in a separate process, recording arrivals.

    An arrival is (id, wall time) for every text frame containing `marker`
    followed by a 36-character id.
    """

    def __init__(
        self, url: str, clients: int, subscribe: dict[str, Any] | None, marker: str
    ) -> None:
        ctx = mp.get_context("spawn")
        self._ready = ctx.Event()
        self._stop = ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_listener_main,
            args=(url, clients, subscribe, self._ready, self._stop, send, marker),
            daemon=True,
        )

    def __enter__(self) -> Listeners:
        self._proc.start()
        if not self._ready.wait(timeout=180):
            raise RuntimeError("listeners did not connect in time")
        return self

    def finish(self) -> list[tuple[str, float]]:
        self._stop.set()
        arrivals: list[tuple[str, float]] = self._recv.recv()
        self._proc.join(timeout=10)
        return arrivals

    def __exit__(self, *exc: object) -> None:
        if self._proc.is_alive():
            self._proc.kill()


def latencies(sent: dict[str, float], arrivals: list[tuple[str, float]]) -> list[float]:
    return [(t - sent[i]) * 1000 for i, t in arrivals if i in sent]


def python() -> str:
    return sys.executable


__all__ = ["websockets"]
