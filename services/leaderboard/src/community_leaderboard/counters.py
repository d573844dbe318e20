"""What a student did, counted: the one definition of the leaderboard's counters.

`Counts` names the eleven counters once. The fold adds to them (`Counters`,
one per student row and per day row); the rules read them over a span of days,
with the days active (`Tally`). The order of the fields is the order in which
the SQL reads and writes the columns of the same names (rows cross the wire as
JSON arrays, see `rowsql`): a new counter is a field here and a column in a
migration, and the statements follow.
"""

from __future__ import annotations

import msgspec


class Counts(msgspec.Struct, array_like=True, gc=False):
    """The counters, in column order (a base: use `Counters` or `Tally`)."""

    posts: int = 0
    replies: int = 0
    likes_given: int = 0
    submissions: int = 0
    approvals: int = 0
    videos_watched: int = 0
    tasks_assigned: int = 0
    tasks_completed: int = 0
    completed_goals: int = 0
    watched_seconds: int = 0
    session_seconds: int = 0


COUNTER_NAMES: tuple[str, ...] = Counts.__struct_fields__


# msgspec lets a frozen struct extend a mutable one (mypy's dataclass rules do not).
class Tally(Counts, frozen=True, array_like=True, gc=False):  # type: ignore[misc]
    """What a student did in some span of days (a window, or all time).

    Field order is relied on: profiles are read from SQL as JSON arrays
    (`array_like`), the counters first, then `days_active`."""

    days_active: int = 0


class Counters(Counts, array_like=True, gc=False):
    """A row's running counters, as the fold changes them."""

    def add(self, name: str, delta: int) -> None:
        setattr(self, name, getattr(self, name) + delta)
