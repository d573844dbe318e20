"""How far behind a source is, read off the ack subject of the event just received."""

from __future__ import annotations

from community_leaderboard.consumers import _pending_after
from nats.aio.msg import Msg


def _msg(reply: str) -> Msg:
    return Msg(_client=None, subject="posts.post.created", reply=reply)  # type: ignore[arg-type]


def test_pending_is_the_last_token_of_an_ack_subject() -> None:
    assert (
        _pending_after(_msg("$JS.ACK.EVENTS.leaderboard_posts.1.2042.17.1732200000000000000.998"))
        == 998
    )
    assert _pending_after(_msg("$JS.ACK.EVENTS.leaderboard_posts.3.5.5.1732200000000000000.0")) == 0


def test_the_longer_ack_subject_form_is_read_too() -> None:
    reply = "$JS.ACK.hub.ACCHASH.EVENTS.leaderboard_posts.1.2042.17.1732200000000000000.31.tok"
    assert _pending_after(_msg(reply)) == 31
