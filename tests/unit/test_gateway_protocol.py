"""Client frame validation, session rules and recovery bookkeeping (pure, no I/O)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest
from community_gateway.protocol import (
    BadFrame,
    Ping,
    Read,
    RecoveryBufferFull,
    Refresh,
    Refused,
    Session,
    SetMode,
    StoredEvent,
    Subscribe,
    TokenBucket,
    Unsubscribe,
    decode_client_frame,
    error_frame,
    hello_frame,
    history_reaches_back,
    subscribed_frame,
)
from community_gateway.sendqueue import Outgoing
from community_shared.auth import GUEST, Identity
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile import DEEP_BODIES


def ident(
    role: str = "student", *, member: bool = True, user_id: uuid.UUID | None = None
) -> Identity:
    return Identity(user_id=user_id or uuid.uuid4(), role=role, name="X", member=member, exp=None)


def ev(
    seq: int, channel: str = "feed", audience: str = "public", type_: str = "post.created"
) -> StoredEvent:
    return StoredEvent(
        channel, seq, type_, msgspec.Raw(b'{"n":%d}' % seq), "2025-01-01T00:00:00Z", audience
    )


def decoded(items: list[Outgoing]) -> list[dict[str, Any]]:
    return [json.loads(item.payload) for item in items]


def seqs(items: list[Outgoing]) -> list[int]:
    return [f["seq"] for f in decoded(items) if f["op"] == "event"]


# --------------------------------------------------------------------------- client frames


def test_valid_ops_are_decoded() -> None:
    assert decode_client_frame('{"op":"subscribe","channel":"feed"}') == Subscribe("feed")
    assert decode_client_frame(
        '{"op":"subscribe","channel":"feed","since":5,"id":"a"}'
    ) == Subscribe("feed", 5, "a")
    assert decode_client_frame('{"op":"subscribe","channel":"feed","since":null}') == Subscribe(
        "feed"
    )
    assert decode_client_frame('{"op":"unsubscribe","channel":"feed","id":7}') == Unsubscribe(
        "feed", 7
    )
    assert decode_client_frame('{"op":"refresh","token":"t"}') == Refresh("t")
    assert decode_client_frame('{"op":"read","channel":"user:x","seq":0}') == Read("user:x", 0)
    assert decode_client_frame('{"op":"mode","mode":"background"}') == SetMode("background")
    assert decode_client_frame('{"op":"ping","extra":"ignored"}') == Ping()


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "",
        "[1,2]",
        '"ping"',
        "{}",
        '{"op":1}',
        '{"op":"dance"}',
        '{"op":"subscribe"}',
        '{"op":"subscribe","channel":5}',
        '{"op":"subscribe","channel":""}',
        '{"op":"subscribe","channel":"feed","since":-1}',
        '{"op":"subscribe","channel":"feed","since":"3"}',
        '{"op":"subscribe","channel":"feed","since":1.5}',
        '{"op":"subscribe","channel":"feed","since":true}',
        '{"op":"subscribe","channel":"feed","since":99999999999999999999999}',
        '{"op":"read","channel":"user:x"}',
        '{"op":"read","channel":"user:x","seq":null}',
        '{"op":"mode","mode":"hidden"}',
        '{"op":"refresh","token":null}',
        '{"op":"ping","id":{"a":1}}',
        '{"op":"ping","id":true}',
        '{"op":"ping","id":"' + "x" * 200 + '"}',
    ],
)
def test_invalid_frames_are_bad_requests(message: str) -> None:
    result = decode_client_frame(message)
    assert isinstance(result, BadFrame)
    assert result.code == "bad_request"


def test_binary_frames_are_bad_requests() -> None:
    result = decode_client_frame(b'{"op":"ping"}')
    assert isinstance(result, BadFrame) and result.code == "bad_request"


def test_bad_frame_echoes_a_valid_id() -> None:
    result = decode_client_frame('{"op":"subscribe","id":"x1"}')
    assert isinstance(result, BadFrame) and result.id == "x1"
    result = decode_client_frame('{"op":"nope","id":3}')
    assert isinstance(result, BadFrame) and result.id == 3


def test_oversized_frame_is_too_large() -> None:
    result = decode_client_frame('{"op":"ping","pad":"' + "x" * 20_000 + '"}')
    assert isinstance(result, BadFrame) and result.code == "too_large"


@pytest.mark.parametrize("kind", sorted(DEEP_BODIES))
def test_deeply_nested_frames_are_bad_requests(kind: str) -> None:
    result = decode_client_frame(DEEP_BODIES[kind].decode())
    assert isinstance(result, BadFrame) and result.code == "bad_request"
    assert "nested deeper" in result.message


def test_oversized_deeply_nested_frame_is_too_large() -> None:
    result = decode_client_frame("[" * 40_000 + "]" * 40_000)
    assert isinstance(result, BadFrame) and result.code == "too_large"


@given(st.text(max_size=200) | st.binary(max_size=50))
def test_decoding_never_raises(message: str | bytes) -> None:
    decode_client_frame(message)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_decoding_any_json_never_raises(value: Any) -> None:
    decode_client_frame(json.dumps(value))
    if isinstance(value, dict):
        decode_client_frame(json.dumps({**value, "op": "subscribe"}))


# --------------------------------------------------------------------------- server frames


def test_server_frames() -> None:
    uid = uuid.uuid4()
    hello = json.loads(
        hello_frame(
            Identity(user_id=uid, role="student", name="S", member=True), [f"user:{uid}"], 3
        )
    )
    assert hello == {
        "op": "hello",
        "user_id": str(uid),
        "role": "student",
        "channels": [f"user:{uid}"],
        "unread": 3,
    }
    assert json.loads(hello_frame(GUEST, [], 0)) == {
        "op": "hello",
        "user_id": None,
        "role": "guest",
        "channels": [],
        "unread": 0,
    }
    assert json.loads(subscribed_frame("feed", 9, True, "a")) == {
        "op": "subscribed",
        "channel": "feed",
        "seq": 9,
        "recovered": True,
        "id": "a",
    }
    assert json.loads(error_frame("forbidden", "no")) == {
        "op": "error",
        "code": "forbidden",
        "message": "no",
    }
    frame = json.loads(ev(4).outgoing().payload)
    assert frame == {
        "op": "event",
        "channel": "feed",
        "seq": 4,
        "type": "post.created",
        "data": {"n": 4},
        "ts": "2025-01-01T00:00:00Z",
    }


def test_event_frame_is_encoded_once() -> None:
    event = ev(1)
    assert event.outgoing() is event.outgoing()
    assert ev(1, "activity").outgoing().sheddable


# --------------------------------------------------------------------------- rate limits


def test_token_bucket_allows_burst_then_rate() -> None:
    bucket = TokenBucket(rate=20, burst=50, now=0.0)
    assert all(bucket.take(0.0) for _ in range(50))
    assert not bucket.take(0.0)
    assert bucket.take(0.05)  # one token back after 50 ms
    assert not bucket.take(0.05)
    assert sum(bucket.take(10.0) for _ in range(100)) == 50  # never more than the burst


def test_session_op_budget() -> None:
    session = Session(GUEST, op_rate=1, op_burst=3, now=0.0)
    assert [session.allow_op(0.0) for _ in range(4)] == [True, True, True, False]
    assert session.allow_op(1.0)


def test_subscription_limit_is_rate_limited() -> None:
    me = ident()
    session = Session(me, max_subscriptions=2)
    assert session.begin_subscribe("feed") == "feed"
    assert session.begin_subscribe("leaderboard") == "leaderboard"
    refused = session.begin_subscribe("activity")
    assert isinstance(refused, Refused) and refused.code == "rate_limited"
    assert session.begin_subscribe("feed") == "feed"  # resubscribing is not a new one
    session.unsubscribe("feed")
    assert session.begin_subscribe("activity") == "activity"


def test_default_limit_is_one_hundred() -> None:
    session = Session(ident())
    assert session.max_subscriptions == 100


# ---------------------------------------------------------------- authorization in the session


def test_subscribe_refusals() -> None:
    student = Session(ident())
    assert student.begin_subscribe("reviews") == Refused(
        "forbidden", "you may not subscribe to this channel"
    )
    refused = student.begin_subscribe(f"user:{uuid.uuid4()}")
    assert isinstance(refused, Refused) and refused.code == "forbidden"
    refused = student.begin_subscribe("nope")
    assert isinstance(refused, Refused) and refused.code == "unknown_channel"
    assert Session(ident("instructor")).begin_subscribe("reviews") == "reviews"


def test_read_cursor_only_on_own_inbox() -> None:
    me = ident()
    session = Session(me)
    assert session.check_read(f"user:{me.user_id}") == f"user:{me.user_id}"
    assert (
        isinstance(r := session.check_read(f"user:{uuid.uuid4()}"), Refused)
        and r.code == "forbidden"
    )
    assert isinstance(r := session.check_read("feed"), Refused) and r.code == "bad_request"
    assert isinstance(r := session.check_read("zzz"), Refused) and r.code == "unknown_channel"
    assert isinstance(r := Session(GUEST).check_read(f"user:{uuid.uuid4()}"), Refused)
    assert r.code == "forbidden"


def test_refresh_same_user_only_and_drops_lost_rights() -> None:
    uid = uuid.uuid4()
    session = Session(ident("instructor", user_id=uid))
    session.begin_subscribe("reviews")
    session.finish_subscribe("reviews")
    session.begin_subscribe("feed")
    session.finish_subscribe("feed")
    other = session.refresh(ident("instructor"))
    assert isinstance(other, Refused) and other.code == "forbidden"
    assert session.refresh(ident("student", user_id=uid)) == ["reviews"]
    assert session.channels == ["feed"]
    assert isinstance(Session(GUEST).refresh(ident()), Refused)


# --------------------------------------------------------------------------- delivery rules


def live(session: Session, channel: str, latest: int = 0) -> None:
    assert session.begin_subscribe(channel) == channel
    session.replay(channel, latest=latest, since=None, history=[], recovered=False)
    assert session.finish_subscribe(channel) == []


def test_guest_and_lapsed_member_never_get_members_posts() -> None:
    for who in (GUEST, ident(member=False)):
        session = Session(who)
        live(session, "feed")
        assert session.offer(ev(1, audience="members")) is None
        assert session.offer(ev(2)) is not None
        # Nor from history.
        session.begin_subscribe("feed")
        frames = session.replay(
            "feed", latest=4, since=0, history=[ev(3, audience="members"), ev(4)], recovered=True
        )
        assert seqs(frames) == [4]
    member = Session(ident())
    live(member, "feed")
    assert member.offer(ev(1, audience="members")) is not None


def test_background_mode_keeps_only_reviews_and_inbox() -> None:
    me = ident("instructor")
    session = Session(me)
    inbox = f"user:{me.user_id}"
    for channel in ("feed", "activity", "reviews", inbox):
        live(session, channel)
    session.set_mode("background")
    assert session.offer(ev(1, "feed")) is None
    assert session.offer(ev(2, "activity")) is None
    assert session.offer(ev(3, "reviews", "moderators")) is not None
    assert session.offer(ev(4, inbox)) is not None
    session.set_mode("foreground")
    assert session.offer(ev(5, "feed")) is not None


def test_not_subscribed_and_duplicates_are_ignored() -> None:
    session = Session(GUEST)
    assert session.offer(ev(1)) is None
    live(session, "feed", latest=10)
    assert session.offer(ev(9)) is None  # at or below the subscription point
    assert session.offer(ev(10)) is None
    assert session.offer(ev(11)) is not None
    assert session.offer(ev(11)) is None


def test_subscribe_without_since_starts_after_latest() -> None:
    session = Session(GUEST)
    session.begin_subscribe("feed")
    session.offer(ev(7))  # in the stream before L was read, delivered late
    session.offer(ev(12))
    frames = session.replay("feed", latest=10, since=None, history=[], recovered=False, op_id=1)
    assert decoded(frames) == [
        {"op": "subscribed", "channel": "feed", "seq": 10, "recovered": False, "id": 1}
    ]
    assert seqs(session.finish_subscribe("feed")) == [12]


def test_recovery_sends_history_then_buffered_without_duplicates() -> None:
    session = Session(GUEST)
    session.begin_subscribe("feed")
    for s in (6, 8, 11):  # live events racing the history read
        session.offer(ev(s))
    frames = session.replay(
        "feed", latest=8, since=3, history=[ev(4), ev(6), ev(8)], recovered=True
    )
    assert decoded(frames)[0]["recovered"] is True
    assert seqs(frames) == [4, 6, 8]
    assert session.offer(ev(12)) is None  # still recovering: buffered
    assert seqs(session.finish_subscribe("feed")) == [11, 12]
    assert session.offer(ev(12)) is None
    assert seqs([session.offer(ev(13))]) == [13]  # type: ignore[list-item]


def test_recovery_buffer_is_bounded() -> None:
    session = Session(GUEST, buffer_bound=2)
    session.begin_subscribe("feed")
    session.offer(ev(1))
    session.offer(ev(2))
    with pytest.raises(RecoveryBufferFull):
        session.offer(ev(3))


def test_since_beyond_latest_is_not_recovered_and_keeps_live_events() -> None:
    session = Session(GUEST)
    session.begin_subscribe("feed")
    frames = session.replay("feed", latest=5, since=50, history=[], recovered=False)
    assert seqs(frames) == []
    session.finish_subscribe("feed")
    assert session.offer(ev(6)) is not None


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    channel_seqs=st.lists(st.integers(1, 400), min_size=0, max_size=40, unique=True).map(sorted),
)
def test_recovery_delivers_every_event_after_since_exactly_once(
    data: st.DataObject, channel_seqs: list[int]
) -> None:
    """Whatever the race between history read and live fan-out: all of (since, ∞) once, in order.

    Model: the channel's events (ascending seqs); at subscribe time fan-out
    has delivered a prefix of them (`seen`), the store holds a longer prefix
    (`stored`, whose last seq is L); live events from `seen` on arrive in
    order, some before the history is replayed, some between replay and
    finish, the rest afterwards.
    """
    n = len(channel_seqs)
    seen = data.draw(st.integers(0, n), label="seen")
    stored = data.draw(st.integers(seen, n), label="stored")
    latest = channel_seqs[stored - 1] if stored else 0
    since_index = data.draw(st.integers(0, stored), label="since_index")
    since = channel_seqs[since_index - 1] if since_index else 0
    live_events = channel_seqs[seen:]
    k1 = data.draw(st.integers(0, len(live_events)), label="before_replay")
    k2 = data.draw(st.integers(k1, len(live_events)), label="before_finish")
    # A redelivered live event (e.g. after a fan-out consumer reset) must change nothing.
    duplicate = data.draw(st.booleans(), label="duplicate")

    session = Session(GUEST)
    session.begin_subscribe("feed")
    out: list[Outgoing] = []
    for s in live_events[:k1]:
        assert session.offer(ev(s)) is None
    history = [ev(s) for s in channel_seqs if since < s <= latest]
    out += session.replay("feed", latest=latest, since=since, history=history, recovered=True)
    for s in live_events[k1:k2]:
        assert session.offer(ev(s)) is None
    out += session.finish_subscribe("feed")
    for s in live_events[k2:]:
        item = session.offer(ev(s))
        if item is not None:
            out.append(item)
        if duplicate:
            assert session.offer(ev(s)) is None

    expected = [s for s in channel_seqs if s > since]
    assert seqs(out) == expected
    assert decoded(out)[0] == {
        "op": "subscribed",
        "channel": "feed",
        "seq": latest,
        "recovered": True,
    }


# --------------------------------------------------------------------------- the recovered rule


def test_history_reaches_back() -> None:
    assert history_reaches_back(since=10, latest=10, first_retained=None)
    assert not history_reaches_back(since=11, latest=10, first_retained=None)
    assert not history_reaches_back(since=3, latest=10, first_retained=None)  # all gone
    assert history_reaches_back(since=3, latest=10, first_retained=3)  # since itself retained
    assert history_reaches_back(since=3, latest=10, first_retained=4)
    # A gap between since and the first retained: known only from the stream's state.
    assert not history_reaches_back(since=3, latest=10, first_retained=7)
    assert history_reaches_back(
        since=3,
        latest=10,
        first_retained=7,
        stream_first_seq=2,
        subject_count=5,
        max_msgs_per_subject=100,
    )
    assert not history_reaches_back(  # something aged out after since
        since=3,
        latest=10,
        first_retained=7,
        stream_first_seq=6,
        subject_count=5,
        max_msgs_per_subject=100,
    )
    assert not history_reaches_back(  # the subject is at its limit: old ones were dropped
        since=3,
        latest=10,
        first_retained=7,
        stream_first_seq=1,
        subject_count=100,
        max_msgs_per_subject=100,
    )
    # since=0 on a fresh history.
    assert history_reaches_back(
        since=0,
        latest=10,
        first_retained=5,
        stream_first_seq=1,
        subject_count=3,
        max_msgs_per_subject=100,
    )


@settings(max_examples=300)
@given(
    data=st.data(),
    published=st.lists(st.booleans(), min_size=1, max_size=60),
    max_per_subject=st.integers(1, 10),
)
def test_recovered_is_never_claimed_when_something_was_lost(
    data: st.DataObject, published: list[bool], max_per_subject: int
) -> None:
    """Model a stream (True = a message of our subject) with age and per-subject limits.

    Whatever was removed, `history_reaches_back` may only say True when every
    message of the subject after `since` is still retained.
    """
    seqs_all = list(range(1, len(published) + 1))
    ours = [s for s, mine in zip(seqs_all, published, strict=True) if mine]
    # Per-subject limit: only the newest `max_per_subject` of ours survive it.
    retained = set(ours[-max_per_subject:])
    # Age limit: everything below `aged` is gone, whatever its subject.
    aged = data.draw(st.integers(1, len(published) + 1), label="stream_first_seq")
    retained = {s for s in retained if s >= aged}
    stream_first = aged
    latest = max(retained) if retained else 0
    if not ours or latest == 0:
        return
    since = data.draw(st.integers(0, latest), label="since")
    after = [s for s in sorted(retained) if s >= max(since, 1)]
    first_retained = after[0] if after else None
    claimed = history_reaches_back(
        since=since,
        latest=latest,
        first_retained=first_retained,
        stream_first_seq=stream_first,
        subject_count=len(retained),
        max_msgs_per_subject=max_per_subject,
    )
    lost = [s for s in ours if s > since and s not in retained]
    if claimed:
        assert lost == [], (since, ours, sorted(retained))
