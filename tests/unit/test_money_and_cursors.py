"""Money parsing (Decimal, two places) and opaque cursors."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from community_shared.errors import InvalidInput
from community_shared.money import InvalidMoney, format_money, parse_money
from community_shared.pagination import decode_cursor, encode_cursor, parse_limit
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5000, "5000.00"),
        ("5000", "5000.00"),
        ("12.5", "12.50"),
        (0.1, "0.10"),
        ("1.20", "1.20"),
        ("10000000", "10000000.00"),
    ],
)
def test_valid_amounts(value: object, expected: str) -> None:
    assert format_money(parse_money(value, maximum=Decimal("10000000"))) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        "0.00",
        "1.234",
        "abc",
        "",
        None,
        True,
        [],
        {},
        "NaN",
        "Infinity",
        "1e400",
        "10000000.01",
        1.005,
    ],
)
def test_invalid_amounts(value: object) -> None:
    with pytest.raises(InvalidMoney):
        parse_money(value, maximum=Decimal("10000000"))


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2))
def test_two_decimal_amounts_round_trip(amount: Decimal) -> None:
    assert parse_money(str(amount), maximum=Decimal("10000000")) == amount
    assert Decimal(format_money(amount) or "") == amount


def test_cursor_round_trip() -> None:
    key = (True, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), uuid.uuid4())
    decoded = decode_cursor(encode_cursor(key), tuple[bool, dt.datetime, uuid.UUID])
    assert decoded == key


@pytest.mark.parametrize(
    "cursor", ["!!!", "bm90IGpzb24", encode_cursor([1, 2]), encode_cursor("x")]
)
def test_malformed_cursor_is_a_400(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(cursor, tuple[bool, dt.datetime, uuid.UUID])
    assert refused.value.status_code == 400


def test_limit_bounds() -> None:
    assert parse_limit(None) == 20
    assert parse_limit(1) == 1 and parse_limit(100) == 100
    for bad in (0, 101, -5):
        with pytest.raises(InvalidInput) as refused:
            parse_limit(bad)
        assert refused.value.status_code == 400
