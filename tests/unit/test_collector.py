"""The services and the gateway run with the garbage collector tuned for
long-running processes (community_shared.collector)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from community_shared.collector import MIDDLE_THRESHOLD, OLD_THRESHOLD, YOUNG_THRESHOLD

TUNED = [YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD]


def _collector_seen_by(entry: str) -> dict[str, object]:
    """Run `entry` in a fresh interpreter with the server replaced by a probe
    that reports the collector's settings at the moment serving would begin."""
    script = textwrap.dedent(
        """
        import gc, json, sys
        import uvicorn, uvloop

        def probe(*args, **kwargs):
            print(json.dumps({"threshold": list(gc.get_threshold()),
                              "frozen": gc.get_freeze_count()}))
            if args and hasattr(args[0], "close"):
                args[0].close()  # the gateway's coroutine, never awaited

        uvicorn.run = probe
        uvloop.run = probe
        """
    ) + textwrap.dedent(entry)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    seen: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def test_a_service_serves_with_the_collector_tuned_and_its_start_up_frozen() -> None:
    seen = _collector_seen_by(
        """
        from community_leaderboard.app import main
        main()
        """
    )
    assert seen["threshold"] == TUNED
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000


def test_the_gateway_serves_with_the_collector_tuned_and_its_start_up_frozen() -> None:
    seen = _collector_seen_by(
        """
        from community_gateway.app import main
        main()
        """
    )
    assert seen["threshold"] == TUNED
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000


def test_python_defaults_are_what_the_tuning_replaces() -> None:
    seen = _collector_seen_by("probe()")
    assert seen["threshold"] == [700, 10, 10]
    assert seen["frozen"] == 0
