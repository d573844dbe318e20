"""The gateway's protocol of one connection (`ConnectionProtocol`), driven without I/O.

Each test plays the I/O layer: it calls the protocol with what a client sent
or what an I/O step returned, and checks the actions it gets back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from community_gateway.actions import (
    Action,
    Close,
    CountOp,
    GoLive,
    InboxHold,
    Listen,
    OpenPresence,
    ReadHistory,
    ReadInbox,
    Schedule,
    Send,
    StoreCursor,
    StoreVisibility,
    TokenExpiry,
    Unlisten,
)
from community_gateway.config import GatewayConfig
from community_gateway.protocol import (
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TRY_AGAIN,
    ConnectionProtocol,
    StoredEvent,
)
from community_shared.auth import GUEST, Identity, InvalidToken
from community_shared.channelstreams import user_channel

NOW = 1_000.0
EXP = 2_000_000_000
CONFIG = GatewayConfig(op_rate=1.0, op_burst=5, inbox_hold_seconds=1.5)


def user(role: str = "student", user_id: uuid.UUID | None = None, exp: int = EXP) -> Identity:
    return Identity(user_id=user_id or uuid.uuid4(), role=role, name="Ada", member=True, exp=exp)


def decoder(tokens: dict[str, Identity]) -> Any:
    def decode(token: str) -> Identity:
        if token not in tokens:
            raise InvalidToken("signature verification failed")
        return tokens[token]

    return decode


def connect(identity: Identity, tokens: dict[str, Identity] | None = None) -> ConnectionProtocol:
    return ConnectionProtocol(identity, CONFIG, decoder(tokens or {}), now=NOW)


def frames(actions: list[Action]) -> list[dict[str, Any]]:
    """The frames the actions send, decoded, in order."""
    out = []
    for action in actions:
        if isinstance(action, Send):
            out.extend(json.loads(item.payload) for item in action.items)
    return out


def others(actions: list[Action]) -> list[Action]:
    """The actions that are neither frames nor op counts."""
    return [a for a in actions if not isinstance(a, Send | CountOp)]


def op(**frame: Any) -> str:
    return json.dumps(frame)


def event(channel: str, seq: int) -> StoredEvent:
    data = b'{"post_id":"p","likes_count":1}'
    return StoredEvent.decode(
        channel, seq, b'{"type":"like.received","data":' + data + b',"ts":"t"}'
    )


def greeted(identity: Identity, latest: int = 0, unread: int = 0) -> ConnectionProtocol:
    """A connection past its `hello` (a user's after reading the inbox)."""
    conn = connect(identity)
    conn.start()
    if identity.user_id is not None:
        conn.greeted(latest, unread)
    return conn


# --------------------------------------------------------------------------- greeting


def test_a_guest_gets_hello_at_once() -> None:
    actions = connect(GUEST).start()
    assert others(actions) == []
    assert frames(actions) == [
        {"op": "hello", "user_id": None, "role": "guest", "channels": [], "unread": 0}
    ]


def test_a_user_is_subscribed_to_their_inbox_then_greeted_with_the_unread_count() -> None:
    me = user()
    assert me.user_id is not None
    inbox = user_channel(me.user_id)
    conn = connect(me)
    actions = conn.start()
    assert frames(actions) == []
    assert others(actions) == [
        Schedule(TokenExpiry(EXP)),
        Listen(inbox),
        ReadInbox(me.user_id, inbox),
    ]
    actions = conn.greeted(latest=7, unread=2)
    assert frames(actions) == [
        {
            "op": "hello",
            "user_id": str(me.user_id),
            "role": "student",
            "channels": [inbox],
            "unread": 2,
        }
    ]
    assert others(actions) == [Schedule(InboxHold(inbox, 1), 1.5)]


def test_greeting_fails_when_the_inbox_cannot_be_read() -> None:
    conn = connect(user())
    conn.start()
    assert conn.greet_failed() == [Close(CLOSE_TRY_AGAIN, "history unavailable; try again")]


# --------------------------------------------------------------------------- the inbox hold


def test_inbox_events_wait_for_the_first_op_then_flow() -> None:
    me = user()
    assert me.user_id is not None
    inbox = user_channel(me.user_id)
    conn = greeted(me, latest=3)
    assert conn.session.offer(event(inbox, 4)) is None  # held
    conn.receive(op(op="ping", id=1), NOW)
    [release] = conn.op_done()
    assert release == Schedule(InboxHold(inbox, 1))
    assert isinstance(release, Schedule)
    actions = conn.timer_due(release.timer, NOW)
    assert [f["seq"] for f in frames(actions)] == [4]
    assert conn.session.offer(event(inbox, 5)) is not None  # live now


def test_the_hold_ending_during_an_op_waits_for_the_op() -> None:
    me = user()
    assert me.user_id is not None
    inbox = user_channel(me.user_id)
    conn = greeted(me)
    conn.op_done()  # the first op's release, consumed
    conn.receive(op(op="ping"), NOW)
    assert conn.timer_due(InboxHold(inbox, 1), NOW) == []  # mid-op: deferred
    [release] = conn.op_done()
    assert isinstance(release, Schedule)
    assert frames(conn.timer_due(release.timer, NOW)) == []
    assert not conn.session.is_recovering(inbox)


def test_a_resubscribed_inbox_is_not_released_by_the_old_hold() -> None:
    me = user()
    assert me.user_id is not None
    inbox = user_channel(me.user_id)
    conn = greeted(me, latest=3)
    actions = conn.receive(op(op="subscribe", channel=inbox, since=1, id="s"), NOW)
    assert others(actions) == [Listen(inbox), ReadHistory(inbox, 1, "s")]
    assert conn.timer_due(InboxHold(inbox, 1), NOW) == []
    assert conn.session.is_recovering(inbox)


def test_the_inbox_history_names_the_seq_hello_counted_so_later_events_read_as_new() -> None:
    """`hello` counted the unread events up to seq 3; events 4 and 5 came before the
    client's `subscribe … since` was answered: `subscribed` names 3, and 4 and 5
    follow it as the live events do (the client counts them on top of `unread`)."""
    me = user()
    assert me.user_id is not None
    inbox = user_channel(me.user_id)
    conn = greeted(me, latest=3, unread=1)
    conn.receive(op(op="subscribe", channel="feed", since=0, id="f"), NOW)
    feed = conn.history_read(ReadHistory("feed", 0, "f"), latest=9, history=[], recovered=True)
    assert frames(feed)[0]["seq"] == 9, "another channel names its latest"
    conn.receive(op(op="subscribe", channel=inbox, since=0, id="s"), NOW)
    history = [event(inbox, seq) for seq in range(1, 6)]
    actions = conn.history_read(
        ReadHistory(inbox, 0, "s"), latest=5, history=history, recovered=True
    )
    assert frames(actions)[0] == {
        "op": "subscribed",
        "channel": inbox,
        "seq": 3,
        "recovered": True,
        "id": "s",
    }
    assert [f["seq"] for f in frames(actions)[1:]] == [1, 2, 3, 4, 5]
    conn.session.offer(event(inbox, 5))  # its live copy, buffered meanwhile
    assert frames(conn.go_live(inbox)) == [], "sent once"
    # Any later history of the inbox names the channel's latest seq.
    conn.receive(op(op="subscribe", channel=inbox, since=5, id="t"), NOW)
    again = conn.history_read(
        ReadHistory(inbox, 5, "t"), latest=6, history=[event(inbox, 6)], recovered=True
    )
    assert [(f["op"], f["seq"]) for f in frames(again)] == [("subscribed", 6), ("event", 6)]


# --------------------------------------------------------------------------- subscribe


def test_subscribe_reads_history_then_sends_it_paced_then_goes_live() -> None:
    conn = greeted(GUEST)
    actions = conn.receive(op(op="subscribe", channel="feed", since=2, id="a"), NOW)
    assert actions[0] == CountOp("subscribe", "ok")
    read = actions[-1]
    assert isinstance(read, ReadHistory)
    assert others(actions) == [Listen("feed"), ReadHistory("feed", 2, "a")]
    assert conn.session.offer(event("feed", 5)) is None  # buffered while history is read
    actions = conn.history_read(
        read, latest=4, history=[event("feed", 3), event("feed", 4)], recovered=True
    )
    [send, live] = actions
    assert isinstance(send, Send)
    assert send.paced
    assert live == GoLive("feed")
    assert [(f["op"], f["seq"]) for f in frames(actions)] == [
        ("subscribed", 4),
        ("event", 3),
        ("event", 4),
    ]
    assert frames(actions)[0] == {
        "op": "subscribed",
        "channel": "feed",
        "seq": 4,
        "recovered": True,
        "id": "a",
    }
    assert [f["seq"] for f in frames(conn.go_live("feed"))] == [5]


def test_unavailable_history_is_an_error_and_no_subscription() -> None:
    conn = greeted(GUEST)
    actions = conn.receive(op(op="subscribe", channel="feed", id=3), NOW)
    read = actions[-1]
    assert isinstance(read, ReadHistory)
    actions = conn.history_unavailable(read)
    assert others(actions) == [Unlisten("feed")]
    assert frames(actions) == [
        {
            "op": "error",
            "code": "unavailable",
            "message": "history unavailable; retry",
            "id": 3,
            "channel": "feed",
        }
    ]
    assert not conn.session.is_subscribed("feed")


def test_refused_subscriptions_and_unsubscribe() -> None:
    conn = greeted(GUEST)
    refused = conn.receive(op(op="subscribe", channel="reviews", id=1), NOW)
    assert others(refused) == []
    assert frames(refused)[0]["code"] == "forbidden"
    unknown = conn.receive(op(op="unsubscribe", channel="nope", id=2), NOW)
    assert frames(unknown)[0]["code"] == "unknown_channel"
    left = conn.receive(op(op="unsubscribe", channel="feed", id=3), NOW)
    assert others(left) == [Unlisten("feed")]
    assert frames(left) == [{"op": "unsubscribed", "channel": "feed", "id": 3}]


def test_presence_subscription() -> None:
    conn = greeted(GUEST)
    actions = conn.receive(op(op="subscribe", channel="presence", id="p"), NOW)
    assert others(actions) == [OpenPresence("p")]
    opened = conn.presence_opened(OpenPresence("p"))
    assert frames(opened) == [
        {"op": "subscribed", "channel": "presence", "seq": 0, "recovered": False, "id": "p"}
    ]
    assert conn.session.is_subscribed("presence")
    conn.receive(op(op="subscribe", channel="presence", id="q"), NOW)
    failed = conn.presence_unavailable(OpenPresence("q"))
    assert frames(failed)[0]["message"] == "presence unavailable; retry"
    assert not conn.session.is_subscribed("presence")


# --------------------------------------------------------------------------- other ops


def test_ping_mode_bad_frames_and_the_op_budget() -> None:
    conn = greeted(GUEST)
    assert frames(conn.receive(op(op="ping", id=1), NOW)) == [{"op": "pong", "id": 1}]
    mode = conn.receive(op(op="mode", mode="background", id=2), NOW)
    assert frames(mode) == [{"op": "ok", "id": 2}]
    assert conn.session.mode == "background"
    bad = conn.receive("nope", NOW)
    assert bad[0] == CountOp("invalid", "bad_request")
    assert frames(bad)[0]["code"] == "bad_request"
    for _ in range(2):
        conn.receive(op(op="ping"), NOW)
    limited = conn.receive(op(op="ping", id=9), NOW)  # the sixth op of a burst of 5
    assert limited[0] == CountOp("ping", "rate_limited")
    assert frames(limited) == [
        {"op": "error", "code": "rate_limited", "message": "too many ops; slow down", "id": 9}
    ]


def test_read_stores_the_cursor_of_ones_own_inbox_only() -> None:
    me = user()
    assert me.user_id is not None
    inbox = user_channel(me.user_id)
    conn = greeted(me)
    [_, store] = conn.receive(op(op="read", channel=inbox, seq=4, id="r"), NOW)
    assert isinstance(store, StoreCursor)
    assert (store.user_id, store.channel, store.seq) == (me.user_id, inbox, 4)
    assert json.loads(store.done.payload) == {"op": "ok", "id": "r"}
    assert json.loads(store.failed.payload)["code"] == "unavailable"
    other = conn.receive(op(op="read", channel=user_channel(uuid.uuid4()), seq=1), NOW)
    assert frames(other)[0]["code"] == "forbidden"


def test_visibility_is_for_users() -> None:
    assert frames(greeted(GUEST).receive(op(op="visibility", visible=False), NOW))[0] == {
        "op": "error",
        "code": "forbidden",
        "message": "guests have no presence to hide",
    }
    me = user()
    [_, store] = greeted(me).receive(op(op="visibility", visible=False, id=1), NOW)
    assert isinstance(store, StoreVisibility)
    assert (store.identity, store.visible) == (me, False)


# --------------------------------------------------------------------------- tokens


def test_refresh_adopts_the_same_users_new_token_and_drops_what_it_no_longer_allows() -> None:
    uid = uuid.uuid4()
    admin = user("admin", uid)
    demoted = user("student", uid, exp=EXP + 60)
    conn = connect(admin, {"new": demoted, "other": user()})
    conn.start()
    conn.greeted(0, 0)
    conn.receive(op(op="subscribe", channel="reviews"), NOW)
    assert frames(conn.receive(op(op="refresh", token="bad", id=1), NOW))[0] == {
        "op": "error",
        "code": "bad_request",
        "message": "invalid token: signature verification failed",
        "id": 1,
    }
    assert frames(conn.receive(op(op="refresh", token="other", id=2), NOW))[0]["code"] == (
        "forbidden"
    )
    actions = conn.receive(op(op="refresh", token="new", id=3), NOW)
    assert others(actions) == [Unlisten("reviews"), Schedule(TokenExpiry(EXP + 60))]
    assert frames(actions) == [
        {"op": "ok", "id": 3},
        {"op": "unsubscribed", "channel": "reviews"},
    ]
    assert conn.identity == demoted


@pytest.mark.parametrize(("wall", "expired"), [(EXP - 1.0, False), (EXP, True)])
def test_the_token_expiry_timer_closes_with_4401_once_due(wall: float, expired: bool) -> None:
    conn = greeted(user())
    actions = conn.timer_due(TokenExpiry(EXP), wall)
    if expired:
        assert actions == [Close(CLOSE_TOKEN_EXPIRED, "token expired")]
    else:
        assert actions == [Schedule(TokenExpiry(EXP))]
