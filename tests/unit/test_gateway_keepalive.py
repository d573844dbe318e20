"""The keepalive clock (`keepalive.PingClock`): when a connection is pinged, when it is given up."""

from __future__ import annotations

import pytest
from community_gateway.keepalive import PingClock


def test_the_first_ping_is_due_one_interval_after_the_connection_opened() -> None:
    clock = PingClock(100.0, interval=20.0, timeout=30.0)
    assert clock.observe(119.9, answered=True) is None
    assert clock.observe(120.0, answered=True) == "ping"
    assert clock.waiting


def test_an_answered_ping_makes_the_next_one_due_an_interval_after_it_was_sent() -> None:
    clock = PingClock(0.0, interval=20.0, timeout=30.0)
    assert clock.observe(20.5, answered=True) == "ping"  # observed half a second late
    assert clock.observe(21.0, answered=True) is None  # its pong came
    assert not clock.waiting
    assert clock.observe(40.4, answered=True) is None
    assert clock.observe(40.5, answered=True) == "ping"


def test_an_unanswered_ping_is_given_up_after_the_timeout_not_before() -> None:
    clock = PingClock(0.0, interval=20.0, timeout=30.0)
    assert clock.observe(20.0, answered=True) == "ping"
    for now in (21.0, 40.0, 45.0, 49.9):  # no second ping while one is out
        assert clock.observe(now, answered=False) is None
    assert clock.observe(50.0, answered=False) == "give up"


def test_a_pong_seen_only_after_the_next_ping_was_due_sends_that_ping_at_once() -> None:
    clock = PingClock(0.0, interval=1.0, timeout=5.0)
    assert clock.observe(1.0, answered=True) == "ping"
    assert clock.observe(3.0, answered=True) == "ping"  # answered; the next was due at 2.0
    assert clock.observe(3.5, answered=False) is None


def test_interval_and_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PingClock(0.0, interval=0.0, timeout=30.0)
    with pytest.raises(ValueError):
        PingClock(0.0, interval=20.0, timeout=-1.0)
