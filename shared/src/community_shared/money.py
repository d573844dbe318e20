"""Money: `Decimal` with two places, never floats (SPEC §3).

Requests accept a JSON number or a decimal string; responses carry a string
with exactly two decimals (`"5000.00"`).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENTS = Decimal("0.01")


class InvalidMoney(ValueError):
    pass


def parse_money(value: object, *, maximum: Decimal | None = None) -> Decimal:
    """Parse a positive amount with at most two decimals; raise `InvalidMoney` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidMoney("amount must be a number or a decimal string")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidMoney("amount is not a valid number") from exc
    if not amount.is_finite():
        raise InvalidMoney("amount must be finite")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(CENTS):
        raise InvalidMoney("amount has more than two decimals")
    if amount <= 0:
        raise InvalidMoney("amount must be greater than 0")
    if maximum is not None and amount > maximum:
        raise InvalidMoney(f"amount must be at most {format_money(maximum)}")
    return amount.quantize(CENTS)


def format_money(amount: Decimal | int | None) -> str | None:
    if amount is None:
        return None
    return str(Decimal(amount).quantize(CENTS, rounding=ROUND_HALF_UP))
