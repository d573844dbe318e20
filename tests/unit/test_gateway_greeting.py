"""A greeting's unread count and the inbox seq it covers agree (`ActionPerformer._read_inbox`).

An inbox event can reach JetStream while the gateway reads the user's unread
count. `hello.unread` must count exactly the unread events up to the seq the
connection treats as the start of its live inbox, or the client's inferred
read position is off by the events in between. A store stand-in plays that
race; the rest of the path is the real protocol.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from community_gateway.actions import ReadHistory, ReadInbox, Send
from community_gateway.config import GatewayConfig
from community_gateway.perform import ActionPerformer
from community_gateway.protocol import ConnectionProtocol, StoredEvent
from community_shared.auth import Identity
from community_shared.channelstreams import user_channel

ME = Identity(user_id=uuid.uuid4(), role="student", name="Ada", member=True, exp=None)
assert ME.user_id is not None
INBOX = user_channel(ME.user_id)


class RacingInbox:
    """An inbox at seq `latest` that receives one more event per count, `arrivals` times."""

    def __init__(self, latest: int, arrivals: int) -> None:
        self.latest = latest
        self.arrivals = arrivals

    async def latest_seq(self, channel: str) -> int:
        return self.latest

    async def unread(self, user_id: uuid.UUID, cursor: int) -> int:
        if self.arrivals:  # an event lands just before the count is taken
            self.arrivals -= 1
            self.latest += 1
        return self.latest - cursor


class Cursors:
    def __init__(self, cursor: int | None) -> None:
        self.cursor = cursor

    async def get(self, user_id: uuid.UUID) -> int | None:
        return self.cursor


def performer(store: RacingInbox, cursor: int | None) -> ActionPerformer:
    server = ActionPerformer()
    server._store = store  # type: ignore[assignment]
    server._cursors = Cursors(cursor)  # type: ignore[assignment]
    server._presence = None
    return server


def greet(store: RacingInbox, cursor: int | None) -> tuple[ConnectionProtocol, dict[str, Any]]:
    protocol = ConnectionProtocol(ME, GatewayConfig(), lambda token: ME)
    protocol.start()
    read = ReadInbox(ME.user_id, INBOX)
    actions = asyncio.run(performer(store, cursor)._read_inbox(protocol, read))
    [hello] = [json.loads(item.payload) for a in actions if isinstance(a, Send) for item in a.items]
    return protocol, hello


def announced_seq(protocol: ConnectionProtocol, latest: int) -> int:
    """The seq the inbox's first `subscribed … since 0` names."""
    protocol.receive(json.dumps({"op": "subscribe", "channel": INBOX, "since": 0}), 0.0)
    payload = b'{"type":"reply.received","data":{},"ts":"t"}'
    history = [StoredEvent.decode(INBOX, seq, payload) for seq in range(1, latest + 1)]
    actions = protocol.history_read(
        ReadHistory(INBOX, 0, None), latest=latest, history=history, recovered=True
    )
    [send, _live] = actions
    assert isinstance(send, Send)
    subscribed = json.loads(send.items[0].payload)
    assert subscribed["op"] == "subscribed"
    return int(subscribed["seq"])


def test_an_event_landing_during_the_count_is_counted_up_to_the_seq_hello_covers() -> None:
    store = RacingInbox(latest=3, arrivals=1)
    protocol, hello = greet(store, cursor=1)
    assert hello["unread"] == 3, "seqs 2, 3 and the one that landed: 4"
    assert announced_seq(protocol, latest=5) == 4, "seq 5 reads as new, on top of unread"


def test_a_quiet_inbox_is_counted_once() -> None:
    store = RacingInbox(latest=3, arrivals=0)
    protocol, hello = greet(store, cursor=0)
    assert hello["unread"] == 3
    assert announced_seq(protocol, latest=3) == 3


def test_without_a_read_cursor_nothing_is_counted() -> None:
    _, hello = greet(RacingInbox(latest=3, arrivals=5), cursor=None)
    assert hello["unread"] == 0
