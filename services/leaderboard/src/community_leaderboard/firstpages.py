"""Keeping the first page of every board live: which boards to look at, and when
a page is news. No I/O.

`leaderboard.top.changed` carries a board's first page as `GET /leaderboard`
renders it. Rather than working out, inside the ingest, whether an event moved
something on a first page (a rank, points, earned, badges, a goal, a name, who
is on it...), the ingest only notes which boards it *touched* after each
commit (a set union, nothing more), and a chore renders the touched boards'
first pages and compares a digest of each with the digest of the page last
published: equal, nothing goes out.

`FirstPageWatch` decides when a touched board is looked at: at once after a
quiet interval, else when its interval since the last look ends, so a board
is rendered at most once per interval however many events touch it (during a
backlog, at most one render per board per second). Publishing happens only at
a look, so it is spaced the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import msgspec

from community_leaderboard.rules import BOARDS, boards_of
from community_leaderboard.schemas import BoardItem

PAGE_SIZE = 20
"""The first page: what `GET /leaderboard?sort=rank` returns without `limit`."""

_encoder = msgspec.json.Encoder()


def page_digest(items: Sequence[BoardItem]) -> bytes:
    """A digest of everything a client sees of a rendered page: two pages have the
    same digest exactly when they encode to the same JSON."""
    return hashlib.blake2b(_encoder.encode(items), digest_size=16).digest()


def page_changed(previous: bytes | None, digest: bytes) -> bool:
    """Whether a page whose digest is `digest` must be announced, given the digest of
    the last one announced (None: none announced, or forgotten)."""
    return previous != digest


def boards_of_tracks(tracks: Iterable[str | None]) -> set[str]:
    """The boards on which students of these tracks appear (or, for a track they
    just left, appeared)."""
    touched: set[str] = set()
    for track in set(tracks):
        touched.update(boards_of(track))
        if len(touched) == len(BOARDS):
            break
    return touched


class FirstPageWatch:
    """Which touched boards to look at now (see the module docstring).

    Guarantees, with the `now` values passed in (one clock, e.g. the wall clock
    the events are stamped with): looks at one board are at least `interval`
    apart (unless `retry` names an earlier time), and at least `interval` after
    the last page `published`; a board
    touched at `t` is returned by the first `due(now)` with
    `now >= max(t, last look + interval)`; a board is returned once per
    touch-or-retry (touches between two looks count as one). Does not decide
    whether the page changed: that is `page_changed` on the render.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._touched: set[str] = set()
        self._next_look: dict[str, float] = {}

    def touch(self, boards: Iterable[str]) -> None:
        """Something on these boards may have changed (call after the commit)."""
        self._touched.update(boards)

    def retry(self, boards: Iterable[str], at: float | None = None) -> None:
        """Look at these boards again: at their next turn (a render or a publish
        failed), or from `at` on (another instance published them within the
        interval, and may publish again from `at`)."""
        for board in boards:
            self._touched.add(board)
            if at is not None:
                self._next_look[board] = at

    def published(self, board: str, at: float) -> None:
        """A page of `board` went out stamped `at` (after its look): the next look,
        and so the next page, comes no earlier than `at + interval`, so the
        pages' own times are an interval apart however long a render took."""
        self._next_look[board] = max(self._next_look.get(board, at), at + self.interval)

    def due(self, now: float) -> list[str]:
        """The touched boards whose turn has come, in board order; each counts as looked
        at `now`."""
        if not self._touched:
            return []
        ready = [b for b in BOARDS if b in self._touched and now >= self._next_look.get(b, now)]
        for board in ready:
            self._touched.discard(board)
            self._next_look[board] = now + self.interval
        return ready

    def next_due(self) -> float | None:
        """When the earliest touched board may be looked at (None: nothing touched)."""
        if not self._touched:
            return None
        return min(self._next_look.get(b, float("-inf")) for b in self._touched)

    def turn(self, board: str) -> float:
        """When `board` may next be looked at (-inf: at once)."""
        return self._next_look.get(board, float("-inf"))

    @property
    def touched(self) -> frozenset[str]:
        return frozenset(self._touched)
