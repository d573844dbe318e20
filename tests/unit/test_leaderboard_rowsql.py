"""The statements generated from the row structs: the rendering kept in
`services/leaderboard/generated.sql` is what the code runs, and the counters
are defined once, in the order every statement uses."""

from __future__ import annotations

from pathlib import Path

from community_leaderboard import rowsql
from community_leaderboard.counters import COUNTER_NAMES, Counters, Counts, Tally
from community_leaderboard.rows import DayState, StudentState

GENERATED = Path(__file__).resolve().parents[2] / "services" / "leaderboard" / "generated.sql"


def test_the_kept_rendering_is_what_the_code_runs() -> None:
    assert GENERATED.read_text() == rowsql.render(), (
        "services/leaderboard/generated.sql is out of date: regenerate it with"
        " `uv run python -m community_leaderboard.rowsql > services/leaderboard/generated.sql`"
    )


def test_the_counters_are_defined_once() -> None:
    assert Counters.__struct_fields__ == COUNTER_NAMES == Counts.__struct_fields__
    assert Tally.__struct_fields__ == (*COUNTER_NAMES, "days_active")
    assert Tally.__struct_fields__ == rowsql.TALLY_COLUMNS


def test_the_row_arrays_take_every_field_apart_by_position() -> None:
    for fields in (StudentState.__struct_fields__, DayState.__struct_fields__):
        values = rowsql.row_values(fields, "j")
        expected = [c for f in fields for c in (COUNTER_NAMES if f == "counters" else (f,))]
        assert list(values) == expected
        position = fields.index("counters")
        for k, counter in enumerate(COUNTER_NAMES):
            assert values[counter].startswith(f"(j->{position}->>{k})::")
