"""A slow client's outbound queue: merge counters, shed activity, never drop the rest (pure)."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from community_gateway.sendqueue import Outgoing, SendQueue
from hypothesis import given, settings
from hypothesis import strategies as st


def item(name: str, key: str | None = None, sheddable: bool = False) -> Outgoing:
    return Outgoing(name.encode(), key, sheddable)


def pop_all(queue: SendQueue) -> list[str]:
    out = []
    while (next_item := queue.pop()) is not None:
        out.append(next_item.payload.decode())
    return out


def test_fifo_within_bound() -> None:
    queue = SendQueue(3)
    for name in "abc":
        assert queue.push(item(name))
    assert len(queue) == 3
    assert pop_all(queue) == ["a", "b", "c"]
    assert queue.pop() is None


def test_counter_updates_merge_first_keeping_the_latest_in_place() -> None:
    drops: list[str] = []
    queue = SendQueue(3, on_drop=drops.append)
    assert queue.push(item("like1", "likes:p"))
    assert queue.push(item("post", None))
    assert queue.push(item("like2", "likes:p"))
    assert queue.push(item("like3", "likes:p"))  # over the bound: like1 and like2 go
    assert pop_all(queue) == ["post", "like3"]
    assert drops == ["merged", "merged"]


def test_merge_then_shed_then_overflow() -> None:
    drops: list[str] = []
    queue = SendQueue(3, on_drop=drops.append)
    assert queue.push(item("a1", sheddable=True))
    assert queue.push(item("s1", "stats:r"))
    assert queue.push(item("s2", "stats:r"))
    assert queue.push(item("review"))  # merge s1
    assert drops == ["merged"]
    assert queue.push(item("inbox"))  # shed a1
    assert drops == ["merged", "shed"]
    assert not queue.push(item("feed"))  # nothing left to drop
    assert queue.overflowed
    assert not queue.push(item("more"))


def test_nothing_is_dropped_while_within_bound() -> None:
    queue = SendQueue(10)
    names = [f"l{i}" for i in range(5)]
    for name in names:
        queue.push(item(name, "likes:p"))
    queue.push(item("act", sheddable=True))
    assert pop_all(queue) == [*names, "act"]


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SendQueue(0)


@dataclasses.dataclass(frozen=True)
class Push:
    kind: str  # "keep" | "counter" | "activity"
    key: int


ops = st.lists(
    st.one_of(
        st.builds(Push, st.sampled_from(["keep", "counter", "activity"]), st.integers(0, 3)),
        st.just("pop"),
    ),
    max_size=120,
)


@settings(max_examples=400)
@given(bound=st.integers(1, 8), script=ops)
def test_queue_invariants(bound: int, script: list[Push | str]) -> None:
    """Never drops a `keep` frame (reviews, user:, answers, feed); the newest counter value
    of each key always reaches the client; order is kept; size stays within the bound; an
    overflow is reported only when nothing droppable is left."""
    queue = SendQueue(bound)
    pushed: list[Outgoing] = []
    delivered: list[Outgoing] = []
    overflow_at: int | None = None
    for n, op in enumerate(script):
        if op == "pop":
            got = queue.pop()
            if got is not None:
                delivered.append(got)
            continue
        assert isinstance(op, Push)
        frame = Outgoing(
            f"{n}".encode(),
            f"k{op.key}" if op.kind == "counter" else None,
            sheddable=op.kind == "activity",
        )
        accepted = queue.push(frame)
        if overflow_at is None:
            pushed.append(frame)
        if not accepted:
            if overflow_at is None:
                overflow_at = n
                # Overflow only when everything queued is undroppable.
                remaining: list[Outgoing] = []
                while (rest := queue.pop()) is not None:
                    remaining.append(rest)
                assert len(remaining) > bound
                assert not any(r.sheddable for r in remaining)
                keys = [r.coalesce_key for r in remaining if r.coalesce_key]
                assert len(keys) == len(set(keys))
                delivered.extend(remaining)
            break
        assert len(queue) <= bound
    if overflow_at is None:
        while (rest := queue.pop()) is not None:
            delivered.append(rest)
    else:
        return  # the connection closes; the client recovers with `since`

    order = {id(f): i for i, f in enumerate(pushed)}
    positions = [order[id(f)] for f in delivered]
    assert positions == sorted(positions), "frames were reordered"
    assert len(set(positions)) == len(positions), "a frame was sent twice"
    delivered_ids = {id(f) for f in delivered}
    for frame in pushed:
        if frame.coalesce_key is None and not frame.sheddable:
            assert id(frame) in delivered_ids, "an undroppable frame was dropped"
    latest: dict[str, Outgoing] = {}
    for frame in pushed:
        if frame.coalesce_key:
            latest[frame.coalesce_key] = frame
    for frame in latest.values():
        assert id(frame) in delivered_ids, "the newest counter value was lost"


def test_a_stalled_client_gets_only_the_latest_first_page_of_each_board() -> None:
    """`top.changed` from the router's stored form to a stalled client's queue: once
    the client falls behind, the superseded first pages of a board are merged away."""
    from community_gateway.channels import route
    from community_gateway.protocol import StoredEvent
    from community_shared.channelstreams import encode_channel_message
    from community_shared.events import make_event

    def top_changed(board: str, version: int) -> Outgoing:
        envelope = make_event(
            "leaderboard.top.changed",
            {"board": board, "items": [{"rank": 1, "points": version}]},
            source="leaderboard",
            actor_id=None,
        )
        [event] = route(envelope)
        assert (event.channel, event.type, event.coalesce_key) == (
            "leaderboard",
            "top.changed",
            f"top:{board}",
        )
        stored = StoredEvent.decode(event.channel, version, encode_channel_message(event, "ts"))
        return stored.outgoing()

    drops: list[str] = []
    queue = SendQueue(8, on_drop=drops.append)
    assert queue.push(item('"rank.changed"'))
    for version in range(1, 31):
        for board in ("all:all", "7d:all", "30d:saas"):
            assert queue.push(top_changed(board, version))
    frames = [msgspec.json.decode(payload) for payload in pop_all(queue)]
    assert frames[0] == "rank.changed"
    latest = [(f["data"]["board"], f["data"]["items"][0]["points"]) for f in frames[1:]]
    assert latest == [("all:all", 30), ("7d:all", 30), ("30d:saas", 30)]
    assert drops == ["merged"] * 87


def test_an_empty_queue_holds_almost_no_memory() -> None:
    """One queue per connection, and most never queue a frame: no deques while empty."""
    import tracemalloc

    def per_queue() -> float:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        queues = []
        for _ in range(500):
            queue = SendQueue(10, byte_bound=1 << 20)
            queue.push(Outgoing(b"x", coalesce_key="k", sheddable=True))
            while queue.pop() is not None:  # as the connection's writer does
                pass
            queues.append(queue)
        size = (tracemalloc.get_traced_memory()[0] - before) / len(queues)
        tracemalloc.stop()
        return size

    assert per_queue() < 600
