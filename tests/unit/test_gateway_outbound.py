"""A client's whole outbound backlog is bounded, and a backlog that stops draining ends (pure).

SPEC §9: a client whose outbound buffer goes over a configured bound is closed
with 4008. The bound counts what the transport and the kernel hold for the
client (`held`), not only the gateway's queue; the drop policy stays the same
(merge counters, shed activity, then overflow), and a backlog that does not
drain at all is given up on after a deadline.
"""

from __future__ import annotations

import pytest
from community_gateway.config import GatewayConfig
from community_gateway.sendqueue import Outgoing, SendQueue, StallClock


def frame(size: int, key: str | None = None, sheddable: bool = False, tag: str = "") -> Outgoing:
    return Outgoing((tag or "x").encode().ljust(size, b"."), key, sheddable)


def test_bytes_held_by_the_transport_and_kernel_count_against_the_byte_bound() -> None:
    queue = SendQueue(1000, byte_bound=1000)
    assert queue.push(frame(300), held=0)
    assert queue.bytes == 300
    assert queue.push(frame(300), held=400)  # 600 queued + 400 held: at the bound
    assert not queue.push(frame(1), held=400)  # over: nothing to merge or shed
    assert queue.overflowed


def test_over_the_byte_bound_merges_then_sheds_then_overflows() -> None:
    drops: list[str] = []
    queue = SendQueue(1000, on_drop=drops.append, byte_bound=1000)
    assert queue.push(frame(200, key="likes:p", tag="like1"))
    assert queue.push(frame(200, sheddable=True, tag="activity"))
    assert queue.push(frame(200, tag="inbox"))
    assert queue.push(frame(200, key="likes:p", tag="like2"))
    assert queue.push(frame(200, tag="review"), held=200)  # 1000 + 200: like1 merged away
    assert drops == ["merged"]
    assert queue.push(frame(100, tag="inbox2"), held=200)  # activity shed
    assert drops == ["merged", "shed"]
    kept = []
    while (item := queue.pop()) is not None:
        kept.append(item.payload.rstrip(b".").decode())
    assert kept == ["inbox", "like2", "review", "inbox2"]


def test_fits_rechecks_when_the_kernel_holds_more() -> None:
    drops: list[str] = []
    queue = SendQueue(1000, on_drop=drops.append, byte_bound=1000)
    assert queue.push(frame(300, sheddable=True))
    assert queue.push(frame(300, tag="inbox"))
    assert queue.fits(held=400)
    assert queue.fits(held=700)  # the activity frame goes
    assert drops == ["shed"]
    assert not queue.fits(held=800)  # the inbox frame is never dropped
    assert queue.overflowed and not queue.fits(held=0)


def test_without_a_byte_bound_only_frames_count() -> None:
    queue = SendQueue(2)
    assert queue.push(frame(10_000), held=10**9)
    assert queue.fits(held=10**9)


def test_a_backlog_that_drains_is_never_stalled() -> None:
    clock = StallClock(timeout=2.0)
    mark = 0
    for tick in range(100):
        mark += 10  # the client takes something every observation
        assert not clock.observe(tick * 0.5, pending=True, mark=mark)


def test_a_backlog_without_progress_is_stalled_after_the_timeout() -> None:
    clock = StallClock(timeout=2.0)
    assert not clock.observe(0.0, pending=False, mark=0)
    assert not clock.observe(1.0, pending=True, mark=0)  # the backlog starts here
    assert not clock.observe(2.0, pending=True, mark=-5)  # more was queued, nothing taken
    assert not clock.observe(2.9, pending=True, mark=-5)
    assert clock.observe(3.0, pending=True, mark=-5)


def test_progress_or_an_empty_backlog_restarts_the_clock() -> None:
    clock = StallClock(timeout=2.0)
    assert not clock.observe(0.0, pending=True, mark=0)
    assert not clock.observe(1.9, pending=True, mark=1)  # took one byte
    assert not clock.observe(3.8, pending=True, mark=1)
    assert clock.observe(3.9, pending=True, mark=1)
    clock = StallClock(timeout=2.0)
    assert not clock.observe(0.0, pending=True, mark=0)
    assert not clock.observe(1.5, pending=False, mark=0)  # idle is not stalled
    assert not clock.observe(3.0, pending=True, mark=0)
    assert clock.observe(5.0, pending=True, mark=0)


def test_invalid_bounds() -> None:
    with pytest.raises(ValueError):
        SendQueue(10, byte_bound=0)
    with pytest.raises(ValueError):
        StallClock(0)


def test_bounds_come_from_the_environment() -> None:
    config = GatewayConfig.from_env(
        {
            "GATEWAY_OUTBOUND_BYTES": "65536",
            "GATEWAY_STALL_SECONDS": "2.5",
            "GATEWAY_INBOX_HOLD_MS": "250",
        }
    )
    assert (config.outbound_bytes, config.stall_seconds) == (65536, 2.5)
    assert config.inbox_hold_seconds == pytest.approx(0.25)
    defaults = GatewayConfig.from_env({})
    assert (defaults.outbound_bytes, defaults.stall_seconds) == (1024 * 1024, 10.0)
    assert defaults.inbox_hold_seconds == 1.0
    with pytest.raises(ValueError):
        GatewayConfig.from_env({"GATEWAY_STALL_SECONDS": "0"})
