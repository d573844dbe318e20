"""Resubscribing on a live connection: seqs of a channel never go back, nothing is skipped.

SPEC §9: on a connection, `seq` strictly increases per channel and no event is
sent twice. A `subscribe … since` on a channel already subscribed (the
automatic `user:` one included) replays only what is after both `since` and
what the connection was already sent, then continues live.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
from community_gateway.protocol import Session, StoredEvent
from community_gateway.sendqueue import Outgoing
from community_shared.auth import GUEST, Identity
from hypothesis import given, settings
from hypothesis import strategies as st

ME = Identity(user_id=uuid.uuid4(), role="student", name="X", member=True, exp=None)
INBOX = f"user:{ME.user_id}"


def ev(seq: int, channel: str = INBOX) -> StoredEvent:
    return StoredEvent(
        channel, seq, "badge.awarded", msgspec.Raw(b'{"n":%d}' % seq), "2025-01-01T00:00:00Z"
    )


def frames_of(items: list[Outgoing | None]) -> list[dict[str, Any]]:
    return [json.loads(item.payload) for item in items if item is not None]


def seqs(items: list[Outgoing | None]) -> list[int]:
    return [f["seq"] for f in frames_of(items) if f["op"] == "event"]


def subscribe(
    session: Session,
    channel: str,
    *,
    since: int | None,
    published: list[int],
    racing: list[int] = (),  # type: ignore[assignment]
) -> list[Outgoing | None]:
    """One `subscribe` as the server runs it; `racing` live events arrive while history is read."""
    assert session.begin_subscribe(channel) == channel
    out: list[Outgoing | None] = [session.offer(ev(s, channel)) for s in racing]
    latest = published[-1] if published else 0
    history = [ev(s, channel) for s in published if since is not None and s > since]
    out += session.replay(channel, latest=latest, since=since, history=history, recovered=True)
    out += session.finish_subscribe(channel)
    return out


def test_resubscribing_the_inbox_after_live_events_sends_nothing_twice() -> None:
    """The reported wire sequence: 12340 live, then `since` 12338 replayed 12339, 12340."""
    session = Session(ME)
    published = list(range(1, 12339))
    subscribe(session, INBOX, since=None, published=published)  # the automatic one at hello
    published += [12339, 12340]
    live = [session.offer(ev(12339)), session.offer(ev(12340))]
    assert seqs(live) == [12339, 12340]

    again = subscribe(session, INBOX, since=12338, published=published)
    assert frames_of(again) == [
        {"op": "subscribed", "channel": INBOX, "seq": 12340, "recovered": True}
    ]
    assert seqs([session.offer(ev(12341))]) == [12341]
    assert session.sent_seq(INBOX) == 12341


def test_resubscribe_replays_only_what_is_after_both_since_and_what_was_sent() -> None:
    session = Session(ME)
    subscribe(session, INBOX, since=None, published=[1, 2, 3])
    assert seqs([session.offer(ev(4)), session.offer(ev(5))]) == [4, 5]
    # 6 and 7 were stored while the client was reconnecting; 8 races the history read.
    out = subscribe(session, INBOX, since=2, published=[1, 2, 3, 4, 5, 6, 7, 8], racing=[6, 8])
    assert seqs(out) == [6, 7, 8]
    assert seqs([session.offer(ev(8)), session.offer(ev(9))]) == [9]


def test_a_since_beyond_what_was_sent_is_honoured() -> None:
    session = Session(ME)
    subscribe(session, INBOX, since=None, published=[1])
    assert seqs([session.offer(ev(2))]) == [2]
    out = subscribe(session, INBOX, since=5, published=[1, 2, 3, 4, 5, 6, 7])
    assert seqs(out) == [6, 7]


def test_an_event_that_can_no_longer_be_sent_in_order_makes_it_not_recovered() -> None:
    """Reconnected after seq 1; 2 was stored before `hello`; 3 went out live before the resubscribe.

    2 cannot follow 3: the answer says `recovered: false` and the client refetches.
    """
    session = Session(ME)
    subscribe(session, INBOX, since=None, published=[1, 2])  # the automatic one, live after 2
    assert seqs([session.offer(ev(3))]) == [3]
    out = subscribe(session, INBOX, since=1, published=[1, 2, 3])
    assert frames_of(out) == [{"op": "subscribed", "channel": INBOX, "seq": 3, "recovered": False}]
    assert seqs([session.offer(ev(4))]) == [4]
    # Once told, the client is not told again for the same range.
    out = subscribe(session, INBOX, since=2, published=[1, 2, 3, 4])
    assert frames_of(out)[0]["recovered"] is True


def test_resubscribing_before_anything_was_sent_replays_everything() -> None:
    session = Session(ME)
    subscribe(session, INBOX, since=None, published=[1, 2, 3])
    out = subscribe(session, INBOX, since=0, published=[1, 2, 3])
    assert frames_of(out)[0]["recovered"] is True
    assert seqs(out) == [1, 2, 3]


def test_events_skipped_in_background_are_replayed_on_resubscribe() -> None:
    """Skipped is not sent: a client back in the foreground catches up with `since`."""
    session = Session(GUEST)
    subscribe(session, "feed", since=None, published=[])
    assert seqs([session.offer(ev(1, "feed"))]) == [1]
    session.set_mode("background")
    assert session.offer(ev(2, "feed")) is None
    assert session.offer(ev(3, "feed")) is None
    session.set_mode("foreground")
    out = subscribe(session, "feed", since=1, published=[1, 2, 3])
    assert seqs(out) == [2, 3]


def test_unsubscribing_does_not_reset_what_was_sent() -> None:
    session = Session(GUEST)
    subscribe(session, "feed", since=None, published=[1])
    assert seqs([session.offer(ev(2, "feed"))]) == [2]
    session.unsubscribe("feed")
    out = subscribe(session, "feed", since=0, published=[1, 2, 3])
    assert seqs(out) == [3]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_seqs_strictly_increase_and_every_resubscribe_continues_without_gaps(
    data: st.DataObject,
) -> None:
    """Any mix of live events and resubscriptions (with any `since`, with racing live events).

    Model: the channel's events are 1, 2, 3, … in publication order; fan-out
    offers each live event once, in order. After every resubscription with
    `since`, the connection gets exactly the events after max(since, what it
    was sent before), up to the end, in order.
    """
    session = Session(ME)
    published: list[int] = []
    offered = 0  # how many of `published` fan-out has offered
    out: list[Outgoing | None] = []
    subscribe(session, INBOX, since=None, published=published)
    expected_from = 0  # every event above this is due since the last (re)subscription
    for _ in range(data.draw(st.integers(1, 12), label="steps")):
        new = data.draw(st.integers(0, 3), label="published")
        published += range(len(published) + 1, len(published) + 1 + new)
        if data.draw(st.booleans(), label="resubscribe"):
            since = data.draw(st.integers(0, len(published)), label="since")
            racing_to = data.draw(st.integers(offered, len(published)), label="racing")
            expected_from = max(since, session.sent_seq(INBOX))
            answer = subscribe(
                session,
                INBOX,
                since=since,
                published=published,
                racing=published[offered:racing_to],
            )
            out += answer
            offered = racing_to
            if frames_of(answer)[0]["recovered"]:
                sent_so_far = set(seqs(out))
                assert set(range(since + 1, len(published) + 1)) <= sent_so_far, "recovered"
        else:
            out += [session.offer(ev(s)) for s in published[offered:]]
            offered = len(published)
    out += [session.offer(ev(s)) for s in published[offered:]]
    sent = seqs(out)
    assert sent == sorted(set(sent)), "seqs must strictly increase"
    tail = [s for s in sent if s > expected_from]
    assert tail == list(range(expected_from + 1, len(published) + 1)), "no gaps"
