"""Per-resource coalescing of counter updates in the router (pure)."""

from __future__ import annotations

import itertools

from community_gateway.coalesce import Coalescer
from hypothesis import given, settings
from hypothesis import strategies as st


def test_first_update_goes_out_at_once_then_one_per_interval() -> None:
    c: Coalescer[int, str] = Coalescer(0.3)
    assert c.offer("r1", 1, "m1", now=0.0)
    assert not c.offer("r1", 2, "m2", now=0.1)
    assert not c.offer("r1", 3, "m3", now=0.2)
    assert c.offer("r2", 10, "n1", now=0.2)  # other keys are independent
    assert c.next_due() == 0.3
    assert c.due(0.29) == []
    [flush] = c.due(0.3)
    assert (flush.key, flush.item, flush.handles) == ("r1", 3, ["m2", "m3"])
    # Right after a flush the interval starts again.
    assert not c.offer("r1", 4, "m4", now=0.35)
    assert [f.item for f in c.due(0.6)] == [4]
    # After a quiet interval: immediate again.
    assert c.due(1.0) == []
    assert c.offer("r1", 5, "m5", now=1.0)


def test_drain_returns_everything_held() -> None:
    c: Coalescer[int, str] = Coalescer(10)
    c.offer("a", 1, "h1", now=0)
    c.offer("a", 2, "h2", now=1)
    c.offer("b", 3, "h3", now=0)
    c.offer("b", 4, "h4", now=1)
    assert sorted((f.key, f.item, tuple(f.handles)) for f in c.drain()) == [
        ("a", 2, ("h2",)),
        ("b", 4, ("h4",)),
    ]
    assert len(c) == 0


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 0.5)),
        max_size=60,
    )
)
def test_every_update_accounted_once_last_value_emitted_and_spaced(
    updates: list[tuple[str, float]],
) -> None:
    interval = 0.3
    c: Coalescer[int, int] = Coalescer(interval)
    now = 0.0
    emitted: dict[str, list[tuple[float, int]]] = {}
    handled: list[int] = []
    for n, (key, gap) in enumerate(updates):
        now += gap
        for flush in c.due(now):
            emitted.setdefault(flush.key, []).append((now, flush.item))
            handled.extend(flush.handles)
        if c.offer(key, n, n, now):
            emitted.setdefault(key, []).append((now, n))
            handled.append(n)
    while (due := c.next_due()) is not None:
        now = max(now, due)
        for flush in c.due(now):
            emitted.setdefault(flush.key, []).append((now, flush.item))
            handled.extend(flush.handles)
    assert sorted(handled) == list(range(len(updates)))
    for key, emissions in emitted.items():
        last = max(n for n, (k, _) in enumerate(updates) if k == key)
        assert emissions[-1][1] == last
        times = [t for t, _ in emissions]
        assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(times))
