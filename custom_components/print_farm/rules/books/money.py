"""Money and quantities: the one place where amounts change unit or get rounded.

Inside the farm every amount of money is a `Decimal` in currency units (euros, dollars), and every
weight a `Decimal` of grams, so that 850.3 g - 710.1 g is 140.2 g and 0.1 + 0.2 is 0.3. The
production-runs API (seed 000) speaks decimal currency; the DayZero API (seed 001) speaks integer
cents. Both convert here, and rounding is half-even, once, at the last step.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
import math
from typing import Any, Final

CENTS_PER_UNIT: Final = Decimal(100)
_CENT: Final = Decimal("0.01")
_RATE: Final = Decimal("0.000001")  # a cost per gram keeps six places (0.02499 per gram)
_TENTH: Final = Decimal("0.1")
_HOURS: Final = Decimal("0.0001")


def to_decimal(value: Any) -> Decimal:
    """A JSON number (int or float, never bool) as the Decimal its text shows: 0.025 is 0.025."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("expected a number") from None
    if not number.is_finite():
        raise ValueError("expected a finite number")
    return number


def limit_places(value: Decimal, places: int) -> Decimal:
    """An input kept to `places` decimal places, half-even (what a scale or a price list can mean).

    Bounding the places of every input keeps every later result within Decimal's 28 digits.
    Raises ValueError for a value too large to keep that many places.
    """
    try:
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        # More digits than Decimal keeps: callers bound their inputs first, this is the last guard.
        raise ValueError("the number is out of range") from None


def to_cents(amount: Decimal) -> int:
    """Currency units to integer cents, rounded half-even (1137.045 cents is 1137, 437.5 is 438)."""
    return int((amount * CENTS_PER_UNIT).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_cents(cents: int) -> Decimal:
    """Integer cents to currency units, exactly."""
    return Decimal(cents) / CENTS_PER_UNIT


def money_out(amount: Decimal | None) -> float | None:
    """An amount for the decimal API: currency units rounded half-even to the cent."""
    return None if amount is None else float(amount.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def rate_out(rate: Decimal | None) -> float | None:
    """A price per gram for the decimal API, to six places (a cent per gram is too coarse)."""
    return None if rate is None else float(rate.quantize(_RATE, rounding=ROUND_HALF_EVEN))


def quantity_out(value: Decimal | None) -> float | None:
    """Grams as a JSON number, exact as stored (inputs have at most three places)."""
    return None if value is None else float(value)


def hours_out(value: Decimal | None) -> float | None:
    """Hours as a JSON number, to four places (a third of a second); computed durations are exact inside."""
    return None if value is None else float(value.quantize(_HOURS, rounding=ROUND_HALF_EVEN))


def tenth(value: Decimal) -> float:
    """A variance or a percentage to one decimal place, half-even (3.33 % is 3.3)."""
    return float(value.quantize(_TENTH, rounding=ROUND_HALF_EVEN))
