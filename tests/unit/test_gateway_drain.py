"""When a stopping gateway closes each client (SPEC §9: spread over the drain window)."""

from __future__ import annotations

import itertools

import pytest
from community_gateway.drain import close_offsets
from hypothesis import given
from hypothesis import strategies as st


def test_a_thousand_clients_spread_over_the_whole_window() -> None:
    offsets = close_offsets(1000, 10.0, 100.0)
    assert offsets[0] == 0.0
    assert offsets[-1] == pytest.approx(9.99)
    # 100 closes per second at most: the rate the other instances see.
    assert max(sum(1 for o in offsets if s <= o < s + 1) for s in range(10)) == 100


def test_a_few_clients_are_closed_at_the_minimum_rate_not_over_the_window() -> None:
    assert close_offsets(3, 10.0, 100.0) == pytest.approx([0.0, 0.01, 0.02])
    assert close_offsets(3, 3.0, 0.0) == pytest.approx([0.0, 1.0, 2.0])


def test_no_window_closes_everyone_at_once() -> None:
    assert close_offsets(4, 0.0, 100.0) == [0.0] * 4
    assert close_offsets(0, 10.0, 100.0) == []


@given(
    count=st.integers(0, 50_000),
    window=st.floats(0, 600, allow_nan=False),
    min_rate=st.floats(0, 10_000, allow_nan=False),
)
def test_offsets_ascend_and_end_within_the_window(
    count: int, window: float, min_rate: float
) -> None:
    offsets = close_offsets(count, window, min_rate)
    assert len(offsets) == count
    assert all(a <= b for a, b in itertools.pairwise(offsets))
    assert all(0 <= o <= window for o in offsets)
