"""The presence rules (`community_gateway.presence_rules`): who is online, diffs, pacing, names."""

from __future__ import annotations

import uuid

import msgspec
from community_gateway.config import GatewayConfig
from community_gateway.presence_rules import (
    Member,
    PresenceBoard,
    PresenceView,
    is_online,
    may_see_names,
    net_changes,
    presence_frame,
)
from community_shared.auth import GUEST, Identity
from hypothesis import given
from hypothesis import strategies as st


def member(n: int) -> Member:
    return Member(f"u{n}", f"User {n}", "student")


def ident(role: str = "student", member: bool = True) -> Identity:
    return Identity(user_id=uuid.uuid4(), role=role, name="X", member=member)


def test_online_while_connected_then_for_the_grace() -> None:
    assert is_online(open_connections=2, leave_deadline=None, hidden=False, now=0)
    assert is_online(open_connections=0, leave_deadline=15.0, hidden=False, now=14.9)
    assert not is_online(open_connections=0, leave_deadline=15.0, hidden=False, now=15.0)
    assert not is_online(open_connections=0, leave_deadline=None, hidden=False, now=0)


def test_hidden_is_offline_whatever_the_connections() -> None:
    assert not is_online(open_connections=3, leave_deadline=None, hidden=True, now=0)
    assert not is_online(open_connections=0, leave_deadline=99.0, hidden=True, now=0)


def test_names_are_for_signed_in_members_only() -> None:
    assert may_see_names(ident("student"))
    assert may_see_names(ident("instructor"))
    assert not may_see_names(ident("student", member=False))
    assert not may_see_names(GUEST)


def test_net_changes_cancel_out_a_join_and_leave_in_between() -> None:
    a, b, c = member(1), member(2), member(3)
    changes = [(True, a), (False, b), (True, c), (False, c), (False, a), (True, a)]
    joined, left = net_changes(changes)
    assert (joined, left) == ([a], [b])
    assert net_changes([(False, b), (True, b)]) == ([], [])


@given(
    st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=60),
    st.sets(st.integers(0, 5)),
)
def test_changes_since_equal_the_difference_of_the_two_states(
    steps: list[tuple[int, bool]], start: set[int]
) -> None:
    """Whatever happens, the diff since a version turns that version's list into today's."""
    view = PresenceView()
    view.replace({f"u{n}": member(n) for n in start})
    before = set(view.members)
    version = view.version
    for n, came in steps:
        view.apply(f"u{n}", member(n) if came else None)
    joined, left = view.changes_since(version)
    after = (before | {m.user_id for m in joined}) - {m.user_id for m in left}
    assert after == set(view.members)
    assert not {m.user_id for m in joined} & before
    assert {m.user_id for m in left} <= before


def test_apply_ignores_what_changes_nothing() -> None:
    view = PresenceView()
    assert view.apply("u1", member(1))
    assert not view.apply("u1", member(1))
    assert view.apply("u1", None)
    assert not view.apply("u1", None)
    assert view.version == 2


def test_trim_bounds_the_log() -> None:
    view = PresenceView()
    for n in range(100):
        view.apply(f"u{n}", member(n))
    view.trim(90)
    assert view.logged == 10
    assert [m.user_id for m in view.changes_since(95)[0]] == [f"u{n}" for n in range(95, 100)]


def _frame(payload: bytes) -> dict[str, object]:
    decoded: dict[str, object] = msgspec.json.decode(payload)
    return decoded


def test_a_snapshot_lists_people_only_for_those_who_may_see_names() -> None:
    view = PresenceView()
    view.apply("u1", member(1))
    board: PresenceBoard[str] = PresenceBoard(view, interval=2.0)
    board.guests = 4
    assert _frame(board.watch("m", True, 0.0)) == {
        "op": "presence",
        "channel": "presence",
        "online": 1,
        "guests": 4,
        "members": [{"user_id": "u1", "name": "User 1", "role": "student"}],
    }
    assert _frame(board.watch("g", False, 0.0)) == {
        "op": "presence",
        "channel": "presence",
        "online": 1,
        "guests": 4,
    }


def test_frames_are_paced_and_batched() -> None:
    view = PresenceView()
    board: PresenceBoard[str] = PresenceBoard(view, interval=2.0)
    board.watch("m", True, 0.0)
    board.watch("g", False, 0.0)
    names = {"m": True, "g": False}.__getitem__
    view.apply("u1", member(1))
    assert board.due_frames(1.0, names) == []  # within 2 s of the snapshot
    view.apply("u2", member(2))
    view.apply("u1", None)
    frames = dict(board.due_frames(2.0, names))
    assert _frame(frames["m"]) == {
        "op": "presence",
        "channel": "presence",
        "online": 1,
        "guests": 0,
        "joined": [{"user_id": "u2", "name": "User 2", "role": "student"}],
        "left": [],
    }
    counts_only = {"op": "presence", "channel": "presence", "online": 1, "guests": 0}
    assert _frame(frames["g"]) == counts_only
    assert board.due_frames(10.0, names) == []  # nothing changed since
    view.apply("u2", None)
    view.apply("u3", member(3))
    frames = dict(board.due_frames(10.5, names))
    # Same counts: the guest has nothing to see; the member sees who came and went.
    assert set(frames) == {"m"}
    assert _frame(frames["m"])["left"] == [{"user_id": "u2", "name": "User 2", "role": "student"}]
    board.guests = 1
    # The guest's last frame was at 2.0; the member's at 10.5, so it waits until 12.5.
    assert set(dict(board.due_frames(11.0, names))) == {"g"}
    assert set(dict(board.due_frames(12.0, names))) == set()
    assert set(dict(board.due_frames(12.5, names))) == {"m"}


def test_many_subscribers_share_one_encoded_frame() -> None:
    view = PresenceView()
    board: PresenceBoard[int] = PresenceBoard(view, interval=2.0)
    for key in range(1000):
        board.watch(key, key % 2 == 0, 0.0)
    for n in range(50):
        view.apply(f"u{n}", member(n))
    frames = board.due_frames(2.0, lambda key: key % 2 == 0)
    assert len(frames) == 1000
    assert len({id(payload) for _, payload in frames}) == 2


def test_the_snapshot_list_is_capped_but_the_count_is_not() -> None:
    view = PresenceView()
    for n in range(30):
        view.apply(f"u{n}", member(n))
    board: PresenceBoard[str] = PresenceBoard(view, max_members=10)
    frame = _frame(board.watch("m", True, 0.0))
    assert frame["online"] == 30
    assert isinstance(frame["members"], list) and len(frame["members"]) == 10


def test_a_frame_never_has_a_seq() -> None:
    assert "seq" not in _frame(presence_frame(1, 2, members=[member(1)]))


def test_damaged_profiles_still_name_the_user() -> None:
    assert Member.decode("u1", b"not json") == Member("u1", "", "student")
    assert Member.decode("u1", member(1).encode()) == member(1)


def test_presence_settings_from_the_environment() -> None:
    config = GatewayConfig.from_env(
        {
            "GATEWAY_PRESENCE_GRACE_SECONDS": "3",
            "GATEWAY_PRESENCE_HEARTBEAT_SECONDS": "2",
            "GATEWAY_PRESENCE_INTERVAL_SECONDS": "1.5",
            "GATEWAY_PRESENCE_MAX_MEMBERS": "50",
        }
    )
    assert config.presence_grace_seconds == 3.0
    assert config.presence_heartbeat_seconds == 2.0
    assert config.presence_interval_seconds == 1.5
    assert config.presence_max_members == 50
    defaults = GatewayConfig()
    assert (defaults.presence_grace_seconds, defaults.presence_interval_seconds) == (15.0, 2.0)
