"""The statements generated from the row structs, in one place.

Students, day rows and profiles cross the wire as one JSON document per
statement, each row an array of a struct's fields in order (`rows`): Postgres
builds the document and takes its rows apart by position, msgspec decodes
(and encodes) it in C straight into the structs the fold works on. Taken
apart and put together row by row in Python, these statements cost a third of
an ingest batch's CPU; with keys, the documents were twice the size.

Written by hand, each would list 20-odd columns in the order of a struct's
fields, and a field added to one and not the other would shift every column
after it. So they are generated from the fields here, at import, and nowhere
else. `python -m community_leaderboard.rowsql` prints them; the rendering is
kept in `services/leaderboard/generated.sql`, which a unit test holds equal to
what this module generates and an integration test prepares against the
migrated tables.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from community_leaderboard.counters import COUNTER_NAMES, Tally
from community_leaderboard.rows import DayState, Profile, StudentState

SCHEMA = "leaderboard"
S = SCHEMA

COLUMN_TYPES = {
    "user_id": "uuid",
    "day": "date",
    "name": "text",
    "name_at": "timestamptz",
    "role": "text",
    "track": "text",
    "goal_slug": "text",
    "goal_name": "text",
    "total_revenue": "numeric",
    "current_mrr": "numeric",
    "revenue_delta": "numeric",
    "mrr_delta": "numeric",
    "earned_at": "timestamptz",
    "first_event_day": "date",
    "last_event_day": "date",
    "last_active_day": "date",
    "streak_start": "date",
    "streak_end": "date",
    "reached_at": "timestamptz",
    "watched_seconds": "bigint",
    "session_seconds": "bigint",
    "active": "boolean",
}
"""The SQL type of each column a row array carries (any other: `int`)."""


def row_array(fields: Sequence[str], alias: str) -> str:
    """`json_build_array` of a row's columns in the order of a struct's fields
    (`counters` nested, `version` the row's `xmin`)."""
    parts = []
    for f in fields:
        if f == "counters":
            counters = ", ".join(f"{alias}.{c}" for c in COUNTER_NAMES)
            parts.append(f"json_build_array({counters})")
        elif f == "version":
            parts.append(f"{alias}.xmin::text::bigint")
        else:
            parts.append(f"{alias}.{f}")
    return "json_build_array(\n    " + ",\n    ".join(parts) + ")"


def row_values(fields: Sequence[str], element: str) -> dict[str, str]:
    """Column -> SQL expression taking it out of one row array `element` (jsonb)."""
    values = {}
    for i, f in enumerate(fields):
        if f == "counters":
            for k, c in enumerate(COUNTER_NAMES):
                values[c] = f"({element}->{i}->>{k})::{COLUMN_TYPES.get(c, 'int')}"
        else:
            values[f] = f"({element}->>{i})::{COLUMN_TYPES.get(f, 'int')}"
    return values


# --------------------------------------------------------------------------- students

STUDENT_FIELDS = StudentState.__struct_fields__
_STUDENT_ARRAY = row_array(STUDENT_FIELDS, "s")


def _read_students(lock: bool) -> str:
    return (
        f"SELECT coalesce(json_agg({_STUDENT_ARRAY}), '[]')\n"
        f"FROM (SELECT *, xmin FROM {S}.students WHERE user_id = ANY($1::uuid[])\n"
        f"      ORDER BY user_id{' FOR UPDATE' if lock else ''}) s"
    )


READ_STUDENTS = _read_students(lock=False)
"""$1: ids -> the students found, as one JSON array of `StudentState` arrays."""
READ_STUDENTS_LOCKED = _read_students(lock=True)
CREATE_STUDENTS = (
    f"WITH s AS (INSERT INTO {S}.students (user_id) SELECT unnest($1::uuid[])\n"
    "           ON CONFLICT DO NOTHING RETURNING *, xmin)\n"
    f"SELECT coalesce(json_agg({_STUDENT_ARRAY}), '[]') FROM s"
)
"""$1: ids -> the students created (those another transaction created are left out)."""

_STUDENT_VALUES = row_values(STUDENT_FIELDS, "u.j")
WRITE_STUDENTS = (
    f"UPDATE {S}.students s SET\n    "
    + ",\n    ".join(
        f"{c} = {v}" for c, v in _STUDENT_VALUES.items() if c not in ("user_id", "version")
    )
    + "\nFROM jsonb_array_elements($1::jsonb) AS u(j)"
    + f"\nWHERE s.user_id = {_STUDENT_VALUES['user_id']}"
    + f"\n  AND s.xmin::text::bigint = {_STUDENT_VALUES['version']}"
)
"""$1: a JSON array of `StudentState` arrays; writes each row only at the version read."""

# --------------------------------------------------------------------------- days

DAY_FIELDS = DayState.__struct_fields__
_DAY_ARRAY = row_array(DAY_FIELDS, "d")
READ_DAYS = (
    f"SELECT coalesce(json_agg({_DAY_ARRAY}), '[]')\n"
    "FROM unnest($1::uuid[], $2::date[]) AS k(user_id, day)\n"
    f"JOIN {S}.daily_stats d ON d.user_id = k.user_id AND d.day = k.day"
)
"""$1, $2: (user, day) keys -> the day rows found, as `DayState` arrays."""

_DAY_VALUES = row_values(DAY_FIELDS, "u.j")
_DAY_COLUMNS = tuple(c for c in _DAY_VALUES if c not in ("user_id", "day"))
WRITE_DAYS = (
    f"INSERT INTO {S}.daily_stats (user_id, day, {', '.join(_DAY_COLUMNS)})\n"
    + "SELECT\n    "
    + ",\n    ".join(_DAY_VALUES.values())
    + "\nFROM jsonb_array_elements($1::jsonb) AS u(j)"
    + "\nON CONFLICT (user_id, day) DO UPDATE SET\n    "
    + ",\n    ".join(f"{c} = EXCLUDED.{c}" for c in _DAY_COLUMNS)
)
"""$1: a JSON array of `DayState` arrays; inserts or replaces each day row."""

# --------------------------------------------------------------------------- profiles

TALLY_COLUMNS = Tally.__struct_fields__
_PROFILE_HEAD = (
    "s.user_id, s.name, s.role, s.track, s.goal_slug, s.goal_name, s.total_revenue,"
    " s.current_mrr, s.earned, s.earned_at, s.first_event_day, s.last_event_day,"
    " s.streak_start, s.streak_end, s.reached_at,"
    " coalesce(p.show_on_leaderboard, true) AS visible,"
    " coalesce(p.show_earnings, true) AS show_earnings,"
    f" array(SELECT b.badge FROM {S}.badges b WHERE b.user_id = s.user_id) AS badges"
)
_ALL_TIME = ", ".join(f"s.{c}" for c in TALLY_COLUMNS)


def _window_columns(w: str) -> str:
    names = [*(f"{c}_{w}" for c in TALLY_COLUMNS), f"revenue_delta_{w}", f"mrr_delta_{w}"]
    return ", ".join(f"coalesce(w.{n}, 0) AS {n}" for n in names)


def _window_sums(w: str, since: str) -> str:
    sums = [f"sum({c}) FILTER (WHERE day >= {since})::bigint AS {c}_{w}" for c in COUNTER_NAMES]
    sums.append(f"count(*) FILTER (WHERE active AND day >= {since})::int AS days_active_{w}")
    sums += [
        f"sum({c}) FILTER (WHERE day >= {since})::numeric(16, 2) AS {c}_{w}"
        for c in ("revenue_delta", "mrr_delta")
    ]
    return ",\n           ".join(sums)


# The columns a profile is built from (see `_PROFILE_JSON`): the head, the
# all-time tally, and each window's tally with its revenue and MRR growth.
_PROFILE_SELECT = (
    f"{_PROFILE_HEAD},\n  {_ALL_TIME},\n  {_window_columns('30d')},\n  {_window_columns('7d')}"
)
_SUMS = f"{_window_sums('30d', '$2')},\n           {_window_sums('7d', '$3')}"

_PROFILES_BY_ID = f"""
SELECT {_PROFILE_SELECT}
FROM {S}.students s
LEFT JOIN {S}.privacy p ON p.user_id = s.user_id
LEFT JOIN LATERAL (
    SELECT {_SUMS} FROM {S}.daily_stats d WHERE d.user_id = s.user_id AND d.day >= $2
) w ON true
WHERE s.user_id = ANY($1::uuid[])
"""

_ALL_RANKABLE_PROFILES = f"""
SELECT {_PROFILE_SELECT}
FROM {S}.students s
LEFT JOIN {S}.privacy p ON p.user_id = s.user_id
LEFT JOIN (
    SELECT user_id, {_SUMS} FROM {S}.daily_stats d WHERE d.day >= $2 GROUP BY user_id
) w ON w.user_id = s.user_id
WHERE s.role = 'student' AND s.first_event_day IS NOT NULL AND $1::int IS NULL
"""

# Every field of a profile but its windows (the last) is a column of `_PROFILES_BY_ID`.
assert Profile.__struct_fields__[-1] == "windows"
_HEAD_NAMES = Profile.__struct_fields__[:-1]


def _window_json(tally_names: Sequence[str], revenue: str, mrr: str) -> str:
    tally = ", ".join(f"r.{n}" for n in tally_names)
    return f"json_build_array(json_build_array({tally}), r.{revenue}, r.{mrr})"


# A profile as JSON, from a row of the profile queries: an array of its fields
# in order (`array_like`), which msgspec decodes straight into `Profile`.
_PROFILE_JSON = (
    "json_build_array("
    + ", ".join(f"r.{c}" for c in _HEAD_NAMES)
    + ",\n  json_build_object(\n    "
    + f"'all', {_window_json(TALLY_COLUMNS, 'total_revenue', 'current_mrr')},\n    "
    + "'30d', "
    + _window_json([f"{c}_30d" for c in TALLY_COLUMNS], "revenue_delta_30d", "mrr_delta_30d")
    + ",\n    '7d', "
    + _window_json([f"{c}_7d" for c in TALLY_COLUMNS], "revenue_delta_7d", "mrr_delta_7d")
    + "))"
)
# The ingest loads a profile for every student a batch touches: one document
# for all of them (built field by field in Python, that was a twentieth of it).
PROFILES_BY_ID = f"SELECT coalesce(json_agg({_PROFILE_JSON}), '[]') FROM ({_PROFILES_BY_ID}) r"
"""$1: ids, $2, $3: first day of the 30- and 7-day windows -> `Profile` arrays."""
ALL_RANKABLE_PROFILES = f"SELECT {_PROFILE_JSON} FROM ({_ALL_RANKABLE_PROFILES}) r"
"""$1: NULL, $2, $3: as above -> one `Profile` array per row, every rankable student."""

STATEMENTS: dict[str, str] = {
    "READ_STUDENTS": READ_STUDENTS,
    "READ_STUDENTS_LOCKED": READ_STUDENTS_LOCKED,
    "CREATE_STUDENTS": CREATE_STUDENTS,
    "WRITE_STUDENTS": WRITE_STUDENTS,
    "READ_DAYS": READ_DAYS,
    "WRITE_DAYS": WRITE_DAYS,
    "PROFILES_BY_ID": PROFILES_BY_ID,
    "ALL_RANKABLE_PROFILES": ALL_RANKABLE_PROFILES,
}


def render() -> str:
    """Every generated statement, as `services/leaderboard/generated.sql` keeps them."""
    parts = [
        "-- Generated by community_leaderboard.rowsql from the row structs' fields; do not edit.\n"
        "-- Regenerate: uv run python -m community_leaderboard.rowsql"
        " > services/leaderboard/generated.sql\n"
    ]
    for name, statement in STATEMENTS.items():
        parts.append(f"\n-- {name}\n{statement.strip()};\n")
    return "".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
