"""`./run stack` for real: it comes up, seeds, serves the demo page and stops cleanly.

The runner runs as a subprocess with its own database, NATS subject prefix,
Redis key prefix and ports, so it never touches another stack on this machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
READY = "Community Live is ready."
PORTS = {
    "gateway": 8000,
    "posts": 8001,
    "resources": 8002,
    "goals": 8003,
    "leaderboard": 8004,
    "notifications": 8005,
}


# The seed sections of each service, and a route whose presence means the service is built.
SEEDED_SECTIONS = {"posts": ["posts"], "resources": ["resources"], "goals": ["goals", "stories"]}
SEEDED_ROUTES = {"posts": "/posts", "resources": "/resources", "goals": "/goals/me"}


def seed_sections(output: str) -> dict[str, str]:
    """The seed's report per section: its summary line and the failure lines under it."""
    sections: dict[str, str] = {}
    for match in re.finditer(r"^seed: ([\w ]+?): (.*(?:\n    .*)*)", output, re.M):
        sections[match[1]] = match[2]
    return sections


def free_port_offset(
    ports: Sequence[int] = (*PORTS.values(), 8080), offsets: range = range(12_000, 24_000, 100)
) -> int:
    """An offset at which every one of `ports` (by default the components' and the
    demo page's) is free, all of them under 32768 (below the kernel's ephemeral ports).
    The offsets are tried from a random one on, so that two test runs on one machine
    starting together do not both take the first free range."""
    start = random.randrange(len(offsets))
    for offset in (*offsets[start:], *offsets[:start]):
        shifted = [p + offset for p in ports]
        try:
            for port in shifted:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free port range")


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    log: Path
    offset: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def url(self, component: str, path: str) -> str:
        port = (PORTS[component] if component != "demo" else 8080) + self.offset
        return f"http://127.0.0.1:{port}{path}"

    def started(self) -> dict[str, int]:
        """Process name -> pid, from the runner's "started <name> (pid N)" lines."""
        return {
            m[0]: int(m[1])
            for m in re.findall(r"^started ([\w-]+) \(pid (\d+)\)", self.output(), re.M)
        }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False  # a zombie is gone, only not yet reaped by its new parent
    return True


RUNNER = (sys.executable, "-m", "infra.local.runner")
"""`./run stack` without uv: the same module in this interpreter."""


@contextlib.contextmanager
def running_stack(
    env: dict[str, str], log: Path, offset: int, command: Sequence[str] = RUNNER
) -> Iterator[RunningStack]:
    """`command --port-offset N` as a subprocess in a process group of its own; that
    group and every process the runner names are killed if still up at exit."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--port-offset", str(offset)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = RunningStack(process, log, offset)
    try:
        yield stack
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for pid in stack.started().values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def wait_for_line(stack: RunningStack, text: str, within: float = 45) -> None:
    deadline = time.monotonic() + within
    while text not in stack.output():
        if stack.process.poll() is not None:
            pytest.fail(f"runner exited ({stack.process.returncode}):\n{stack.output()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} within {within} s:\n{stack.output()[-4000:]}")
        time.sleep(0.2)


def stop_and_check(stack: RunningStack) -> None:
    """SIGTERM the runner: it exits 0 and no process it started is left."""
    started = stack.started()
    stack.process.send_signal(signal.SIGTERM)
    assert stack.process.wait(timeout=20) == 0, stack.output()[-4000:]
    for name, pid in started.items():
        assert not alive(pid), f"{name} (pid {pid}) still running after the runner stopped"
        assert f"stopped {name} (pid {pid}" in stack.output()


def test_stack_comes_up_seeds_serves_the_demo_and_stops_on_sigterm(
    isolation: dict[str, str], tmp_path: Path
) -> None:
    offset = free_port_offset()
    with running_stack(isolation, tmp_path / "first.log", offset) as stack:
        wait_for_line(stack, READY)
        started = stack.started()
        out = stack.output()
        assert started, out
        with httpx.Client(timeout=5) as client:
            for name in started:
                assert client.get(stack.url(name, "/health")).status_code == 200, name
                ready = client.get(stack.url(name, "/ready"))
                assert ready.status_code == 200, (name, ready.text)

            page = client.get(stack.url("demo", "/"))
            assert page.status_code == 200
            assert "<title>Community Live" in page.text
            config = client.get(stack.url("demo", "/config.json")).json()
            assert config["ports"]["posts"] == PORTS["posts"] + offset
            # With the demo data comes the demo sign-in (off anywhere else).
            assert config["sign_in"] is True
            token = client.get(stack.url("demo", "/dev/token?person=ada-lovelace"))
            assert token.status_code == 200 and token.json()["token"].startswith("eyJ")

            # The seed ran, and every service that serves its routes took the demo data.
            assert "seed: learning events:" in out
            sections = seed_sections(out)
            for service, route in SEEDED_ROUTES.items():
                if service not in started:
                    continue
                paths = client.get(stack.url(service, "/schema/openapi.json")).json()["paths"]
                for section in SEEDED_SECTIONS[service]:
                    if route in paths:
                        assert "failed:" not in sections[section], sections[section]
            seeded_posts = "seed: posts: post: 12" in out
            if seeded_posts:
                feed = client.get(stack.url("posts", "/posts")).json()
                assert feed["items"][0]["is_pinned"] is True, feed["items"][0]
            if "seed: resources: resource: 8" in out:
                listing = client.get(stack.url("resources", "/resources?limit=100")).json()
                assert len(listing["items"]) == 7  # the eighth is a draft

        # Connection details a user can act on.
        assert re.search(r"token=eyJ[\w-]+\.[\w-]+\.[\w-]+", out)
        assert f"http://127.0.0.1:{8080 + offset}/?as=ada-lovelace" in out
        for name in started:
            port = PORTS[name] + offset
            where = f"ws://127.0.0.1:{port}/ws" if name == "gateway" else f"http://127.0.0.1:{port}"
            assert where in out, name
        stop_and_check(stack)

    if not seeded_posts:
        return
    # A restart on the same database keeps the demo data as it is.
    with running_stack(isolation, tmp_path / "second.log", offset) as again:
        wait_for_line(again, READY)
        assert "seed: posts: demo posts already there, skipped" in again.output()
        stop_and_check(again)
