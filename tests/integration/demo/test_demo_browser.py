"""The demo app in Chromium (`tests/browser/demo.test.js`), against real processes.

A gateway and the posts, goals, leaderboard, resources and notifications
services run as processes on free ports, on a database, NATS subject prefix
and Redis key prefix of their own; the demo server runs in this process with its demo sign-in
on, and its `config.json` sends the pages to the gateway through a TCP proxy
that the browser tests start (so that they can cut the network). Each scenario
of the test file is reported as one pytest test; they run in one node process
(`node --test`, one Chromium for all, each scenario in fresh browser contexts),
driving Debian's Chromium with playwright-core; the screenshots go to
`docs/screenshots/`.

Skipped when node or Chromium (`/usr/bin/chromium`, or `CL_CHROMIUM`) is
missing; `npm ci` runs first when `tests/browser/node_modules` is missing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from community_shared.settings import Settings

from infra.demo.server import serve_in_thread
from tests.conftest import JWT_SECRET, RUN_ID, Infra, fresh_database
from tests.integration.clients.test_js_client import (
    Component,
    _component_env,
    _free_port,
    _npm_ci,
    running,
)

ROOT = Path(__file__).resolve().parents[3]
BROWSER_TESTS = ROOT / "tests" / "browser"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CL_CHROMIUM", "/usr/bin/chromium")
NODE_TIMEOUT = 300.0

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]

SCENARIOS = {
    "approval": "a goal request, then a revenue proof, reach the instructor live",
    "rejection": "a rejection shows its reason",
    "feed": "posts, likes and replies go between two pages",
    "network_cut": "after a network cut",
    "expired_token": "an expired token shows the session-expired state",
    "phone": "on a 390 px screen",
    "sign_in": "the demo sign-in",
    "filters": "feed filters and search",
    "schema_offline": "the services' /schema pages work without the internet",
    "alert": "a proof arriving in a hidden tab",
    "resources": "the resource library",
    "moderation": "the moderators' queues",
    "web_push": "push notifications: turned on by a click",
}


@pytest.fixture(scope="module")
async def stack(
    infra: Infra, settings_for: Callable[..., Settings], nats_client: object, redis_client: object
) -> AsyncIterator[dict[str, str]]:
    await _npm_ci(BROWSER_TESTS)
    # A community of its own (database, subjects, keys): the scenarios read whole
    # boards and queues, which other tests' students would crowd.
    async with fresh_database(infra) as database_url:
        own = f"{RUN_ID}.br{uuid.uuid4().hex[:6]}."
        settings = settings_for(
            "gateway",
            database_url=database_url,
            nats_subject_prefix=own,
            redis_key_prefix=own.replace(".", ":"),
        )
        async for env in _serve(_component_env(settings)):
            yield env


async def _serve(env: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    components = [
        Component("gateway", "community_gateway.app", env),
        Component("posts", "community_posts.app", env),
        Component("resources", "community_resources.app", env),
        Component("goals", "community_goals.app", env),
        Component("leaderboard", "community_leaderboard.app", env),
        Component("notifications", "community_notifications.app", env),
    ]
    async with running(components):
        ports = {c.name: c.port for c in components}
        proxy_port = _free_port()
        config = {"ports": {**ports, "gateway": proxy_port}, "sign_in": True}
        demo = serve_in_thread("127.0.0.1", 0, config, JWT_SECRET)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            yield {
                **os.environ,
                "CL_DEMO_URL": f"http://127.0.0.1:{demo.server_address[1]}",
                "CL_POSTS_URL": f"http://127.0.0.1:{ports['posts']}",
                "CL_GOALS_URL": f"http://127.0.0.1:{ports['goals']}",
                "CL_LEADERBOARD_URL": f"http://127.0.0.1:{ports['leaderboard']}",
                "CL_RESOURCES_URL": f"http://127.0.0.1:{ports['resources']}",
                "CL_NOTIFICATIONS_URL": f"http://127.0.0.1:{ports['notifications']}",
                "CL_GATEWAY_PORT": str(ports["gateway"]),
                "CL_PROXY_PORT": str(proxy_port),
                "CL_JWT_SECRET": JWT_SECRET,
                "CL_CHROMIUM": CHROMIUM,
                "CL_SCREENSHOTS": str(SCREENSHOTS),
            }
        finally:
            demo.shutdown()
            demo.server_close()


async def _run_node(env: dict[str, str], tap: Path) -> tuple[int, str]:
    """Every scenario in one node process (one Chromium): spec output, and TAP into `tap`."""
    process = await asyncio.create_subprocess_exec(
        "node",
        "--test",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=tap",
        f"--test-reporter-destination={tap}",
        "demo.test.js",
        cwd=BROWSER_TESTS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=NODE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"the browser tests did not finish within {NODE_TIMEOUT}s") from None
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def scenario_results(tap: str) -> dict[str, bool]:
    """`ok N - name` / `not ok N - name` lines of a TAP report: name → passed."""
    results = {}
    for line in tap.splitlines():
        match = re.match(r"^(not ok|ok) \d+ - (.*?)(?: # .*)?$", line)
        if match:
            results[match.group(2)] = match.group(1) == "ok"
    return results


@pytest.fixture(scope="module")
async def browser_run(
    stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> BrowserRun:
    tap = tmp_path_factory.mktemp("browser") / "demo.tap"
    code, output = await _run_node(stack, tap)
    print(output)
    results = scenario_results(tap.read_text() if tap.exists() else "")
    return BrowserRun(code, output, results)


class BrowserRun:
    def __init__(self, code: int, output: str, results: dict[str, bool]) -> None:
        self.code, self.output, self.results = code, output, results

    def passed(self, prefix: str) -> bool | None:
        found = [ok for name, ok in self.results.items() if name.startswith(prefix)]
        return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_demo_in_chromium(scenario: str, browser_run: BrowserRun) -> None:
    passed = browser_run.passed(SCENARIOS[scenario])
    assert passed is not None, f"the scenario did not run; node said:\n{browser_run.output}"
    assert passed, f"the scenario failed in Chromium:\n{browser_run.output}"


async def test_every_browser_scenario_is_checked(browser_run: BrowserRun) -> None:
    assert len(browser_run.results) == len(SCENARIOS), browser_run.output
    assert browser_run.code == 0 or not all(browser_run.results.values()), browser_run.output
