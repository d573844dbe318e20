"""What to do once students' figures changed, decided from their profiles; pure.

The ingest, a privacy change and the day's roll-over all end the same way:
load the profiles of the students concerned, then put each of them where they
now belong on the boards, award and revoke badges, and announce the moves.
The decisions of that step live here, with no I/O and no clock (callers pass
`today` and the profiles); `placement.py` loads, applies and records them.

- `board_ops`: which boards to touch for each student, and their entry on each
  (or that they come off it).
- `badge_changes`, `top_performer_changes`: the badge diff, as awards and
  revocations against the badges held.
- `days_leaving_windows`: the days a roll-over takes out of the 30- and
  7-day windows.
- `announced_points`, `net_moves`: the points a `rank.changed` carries, and
  the moves of a backlog worth announcing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

import msgspec

from community_leaderboard import rules
from community_leaderboard.rows import Profile
from community_leaderboard.standing import BoardEntry, board_entries, personal_badges, standing

# --------------------------------------------------------------------------- board moves

PUT, EARNED_CHANGED, LEARN_CHANGED = 1, 2, 4
ALL_CHANGED = EARNED_CHANGED | LEARN_CHANGED


class BoardOp(msgspec.Struct, frozen=True, gc=False):
    """Put `user_id` on `board` with `entry`, or take them off it (`entry` None).

    `changed` says which sort scores may have moved (`EARNED_CHANGED`,
    `LEARN_CHANGED`); points and actions are always written."""

    board: str
    user_id: uuid.UUID
    entry: BoardEntry | None
    changed: int = ALL_CHANGED


class Move(msgspec.Struct, frozen=True, gc=False):
    op: BoardOp
    old_rank: int | None  # 1-based; None = was not on the board
    new_rank: int | None

    @property
    def moved(self) -> bool:
        return self.old_rank != self.new_rank


def board_ops(
    users: Sequence[uuid.UUID],
    profiles: Mapping[uuid.UUID, Profile],
    today: dt.date,
    weights: rules.Weights,
    *,
    previous_tracks: Mapping[uuid.UUID, str | None] | None = None,
    everywhere: bool = False,
    sort_changes: Callable[[uuid.UUID], int] | None = None,
) -> list[BoardOp]:
    """One op per student and board, in the order of `users` then of `rules.BOARDS`.

    A student goes on every board they belong on (`standing.board_entries`) and
    off every other one touched. Only the boards of the student's track (and of
    the track they just left, `previous_tracks`) are touched, unless
    `everywhere`; a student without a profile comes off every board.
    `sort_changes` says which sort scores besides points and actions may have
    moved (default: all)."""
    ops: list[BoardOp] = []
    previous_tracks = previous_tracks or {}
    for user_id in users:
        profile = profiles.get(user_id)
        entries = board_entries(profile, today, weights) if profile else {}
        changed = sort_changes(user_id) if sort_changes is not None else ALL_CHANGED
        if everywhere or profile is None:
            boards = rules.BOARDS
        else:
            wanted = set(rules.boards_of(profile.track))
            if user_id in previous_tracks:
                wanted.update(rules.boards_of(previous_tracks[user_id]))
            boards = tuple(b for b in rules.BOARDS if b in wanted)
        for board in boards:
            ops.append(BoardOp(board, user_id, entries.get(board), changed))
    return ops


def announced_points(move: Move, profile: Profile | None, weights: rules.Weights) -> int:
    """The points a `rank.changed` for `move` carries: the student's on that board
    (0 for a student the leaderboard knows nothing of)."""
    if move.op.entry is not None:
        return move.op.entry.points
    if profile is not None:
        return standing(profile, move.op.board.split(":")[0], weights).points
    return 0


PendingMove = tuple[str, uuid.UUID, int | None, int | None, float | None]
"""A move kept during a backlog: (board, student, rank before, rank now, score now)."""


def net_moves(
    kept: Iterable[PendingMove],
) -> list[tuple[str, uuid.UUID, int | None, int | None, int]]:
    """The kept moves to announce once a backlog is worked through: those that
    ended somewhere else than they started, with the points of the score now
    (board, student, old rank, new rank, points)."""
    return [
        (board, user_id, old, new, rules.decode_board_score(score)[0] if score is not None else 0)
        for board, user_id, old, new, score in kept
        if new != old
    ]


# --------------------------------------------------------------------------- badges

BadgeChange = tuple[uuid.UUID, str]


def badge_changes(
    profiles: Mapping[uuid.UUID, Profile], today: dt.date
) -> tuple[list[BadgeChange], list[BadgeChange]]:
    """(awards, revocations) of the badges a student earns on their own record,
    against the badges their profile holds (`top-performer` aside: it is
    relative, see `top_performer_changes`)."""
    awards: list[BadgeChange] = []
    revokes: list[BadgeChange] = []
    for user_id, profile in profiles.items():
        want = personal_badges(profile, today)
        have = set(profile.badges) - {rules.TOP_PERFORMER}
        awards.extend((user_id, b) for b in sorted(want - have))
        revokes.extend((user_id, b) for b in sorted(have - want))
    return awards, revokes


def top_performer_changes(
    performers: set[uuid.UUID], holders: set[uuid.UUID]
) -> tuple[list[BadgeChange], list[BadgeChange]]:
    """(awards, revocations) of `top-performer`: to the performers who lack it,
    from the holders who are no longer performers."""
    return (
        [(u, rules.TOP_PERFORMER) for u in sorted(performers - holders)],
        [(u, rules.TOP_PERFORMER) for u in sorted(holders - performers)],
    )


def all_badges(profiles: Iterable[Profile], today: dt.date) -> list[BadgeChange]:
    """Every badge earned on one's own record, decided from scratch (the rebuild)."""
    return [(p.user_id, b) for p in profiles for b in sorted(personal_badges(p, today))]


# --------------------------------------------------------------------------- roll-over


def days_leaving_windows(last: dt.date, today: dt.date) -> set[dt.date]:
    """The days that left the 30- or 7-day window between the roll-over of `last`
    and that of `today` (none if `today` is not later). The students with
    counted days among them have window figures to re-place.

    Each window gives at most its own length of days, those just before its new
    start: for a roll-over more than a window late, the older days of the old
    window are not named (a restart rebuilds every board anyway)."""
    left: set[dt.date] = set()
    for window, days in rules.WINDOW_DAYS.items():
        old_start = rules.window_start(window, last)
        new_start = rules.window_start(window, today)
        assert old_start is not None and new_start is not None
        day = max(old_start, new_start - dt.timedelta(days=days))
        while day < new_start:
            left.add(day)
            day += dt.timedelta(days=1)
    return left
