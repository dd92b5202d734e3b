"""What the books accept: the shapes of spools, products, recipes, runs, items and materials.

The REST views validate bodies with these schemas and the actions reuse them, so both take the
same input. Numbers come out as `Decimal` (see `money`), instants as aware datetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import voluptuous as vol

from .money import limit_places, to_decimal

RUN_STATUSES: Final = ("pending", "in_progress", "paused", "completed", "failed", "cancelled")
QUALITY_RATINGS: Final = {
    1: "Failed/Unusable",
    2: "Major defects",
    3: "Minor defects",
    4: "Good quality",
    5: "Perfect",
}
MAX_GRAMS: Final = Decimal(1_000_000)  # a tonne of filament: anything above is a typo
MAX_HOURS: Final = Decimal(100_000)
MAX_MONEY: Final = Decimal(1_000_000_000)
MAX_COUNT: Final = 1_000_000
DEFAULT_NET_GRAMS: Final = Decimal(1000)  # a spool's net weight when none is given


def number(
    minimum: Decimal = Decimal(0), maximum: Decimal = MAX_GRAMS, *, above: bool = False, places: int = 3
) -> Callable[[Any], Decimal]:
    """A JSON number (not a string, not a bool) in range, as a Decimal of at most `places` places.

    Both bounds are checked on the number as sent, before rounding, so a huge value never reaches
    the rounding (-1e25 has too many digits for it). `above` means more than `minimum`: the
    smallest such number of `places` places is the real bound, and the OpenAPI document says so.
    """
    step = Decimal(1).scaleb(-places)
    low = minimum + step if above else minimum

    def validate(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid("expected a number")
        try:
            result = to_decimal(value)
        except ValueError as err:
            raise vol.Invalid(str(err)) from None
        if result > maximum:
            raise vol.Invalid(f"must be at most {maximum}")
        if result < low:
            raise vol.Invalid(f"must be at least {low}")
        try:
            return limit_places(result, places)
        except ValueError as err:
            raise vol.Invalid(str(err)) from None

    validate.openapi = {"type": "number", "minimum": float(low), "maximum": float(maximum)}  # type: ignore[attr-defined]
    return validate


def integer(minimum: int | None = None, maximum: int = MAX_COUNT) -> Callable[[Any], int]:
    """A JSON integer (not a bool, not 3.0) in range."""

    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        if minimum is not None and value < minimum:
            raise vol.Invalid(f"must be at least {minimum}")
        if value > maximum:
            raise vol.Invalid(f"must be at most {maximum}")
        return int(value)

    validate.openapi = {  # type: ignore[attr-defined]
        "type": "integer",
        **({"minimum": minimum} if minimum is not None else {}),
        "maximum": maximum,
    }
    return validate


def instant(value: Any) -> datetime:
    """An ISO 8601 date and time; one without a zone is taken as UTC."""
    if not isinstance(value, str):
        raise vol.Invalid("expected an ISO 8601 date and time")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise vol.Invalid("expected an ISO 8601 date and time, like 2024-01-15T10:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


instant.openapi = {"type": "string", "format": "date-time"}  # type: ignore[attr-defined]


def text(maximum: int = 200) -> vol.All:
    """A non-empty string, stripped."""
    return vol.All(str, vol.Strip, vol.Length(min=1, max=maximum))


def _nullable(validator: Any) -> vol.Any:
    # The validator first: when both refuse, voluptuous reports the first error, which says why.
    return vol.Any(validator, None)


def _optional(fields: dict[str, Any]) -> dict[vol.Marker, Any]:
    return {vol.Optional(key): validator for key, validator in fields.items()}


def _with_required(fields: dict[str, Any], required: tuple[str, ...]) -> dict[vol.Marker, Any]:
    return {
        (vol.Required(key) if key in required else vol.Optional(key)): validator
        for key, validator in fields.items()
    }


MONEY = number(maximum=MAX_MONEY, places=6)  # a cost per gram needs more than cents: 0.02499
GRAMS = number()
SIGNED_GRAMS = number(-MAX_GRAMS)  # a change of what a spool holds
HOURS = number(maximum=MAX_HOURS, places=4)
IDENTIFIER = vol.All(str, vol.Strip, vol.Length(min=1, max=64))
CENTS = integer(0, 100_000_000_000)

SPOOL_FIELDS: Final = {
    "name": text(),
    "material": text(40),
    "color": _nullable(text(40)),
    "vendor": _nullable(text(100)),
    "net_weight_grams": number(Decimal(1)),
    "remaining_grams": GRAMS,
    "empty_spool_weight_grams": _nullable(GRAMS),
    "price": _nullable(MONEY),
    "cost_per_gram": _nullable(MONEY),
    # An extra of ours: the Bambu RFID tray_uuid that places the spool in the tray that reads it.
    "tray_uuid": _nullable(vol.All(text(64), vol.Match(r"^[0-9A-Fa-f]{32}$", msg="expected 32 hex digits"))),
}
SPOOL_CREATE: Final = vol.Schema(_with_required(SPOOL_FIELDS, ("name", "material")))
SPOOL_PATCH: Final = vol.Schema(_optional(SPOOL_FIELDS))

PRODUCT_FIELDS: Final = {
    "name": text(),
    "sku": _nullable(text(64)),
    "notes": _nullable(text(2000)),
}
PRODUCT_CREATE: Final = vol.Schema(_with_required(PRODUCT_FIELDS, ("name",)))
PRODUCT_PATCH: Final = vol.Schema(_optional(PRODUCT_FIELDS))

RECIPE_MATERIAL: Final = vol.Schema(
    {
        vol.Required("material"): text(40),
        vol.Required("grams_per_unit"): number(above=True),
        vol.Optional("spool_id"): _nullable(IDENTIFIER),
    }
)
RECIPE_FIELDS: Final = {
    "product_id": IDENTIFIER,
    "name": text(),
    "materials": vol.All([RECIPE_MATERIAL], vol.Length(max=32)),
    "print_hours_per_unit": HOURS,
    "labour_cost_per_unit": CENTS,
    "packaging_cost_per_unit": CENTS,
    "overhead_cost_per_unit": CENTS,
    "machine_cost_per_hour": CENTS,
}
RECIPE_CREATE: Final = vol.Schema(_with_required(RECIPE_FIELDS, ("product_id",)))
RECIPE_PATCH: Final = vol.Schema(_optional(RECIPE_FIELDS))

RUN_FIELDS: Final = {
    "status": vol.In(RUN_STATUSES),
    "printer_name": _nullable(text()),
    "started_at": _nullable(instant),
    "estimated_print_time_hours": _nullable(HOURS),
    "actual_print_time_hours": _nullable(HOURS),
    "estimated_total_filament_grams": _nullable(GRAMS),
    "actual_total_filament_grams": _nullable(GRAMS),
    "quality_rating": _nullable(vol.All(integer(), vol.In(QUALITY_RATINGS, msg="must be 1 to 5"))),
    "quality_notes": _nullable(text(2000)),
    "notes": _nullable(text(5000)),
}
RUN_CREATE: Final = vol.Schema(_optional(RUN_FIELDS))
RUN_PATCH: Final = RUN_CREATE

ITEM_FIELDS: Final = {
    "product_id": IDENTIFIER,
    "quantity": integer(1),
    "successful_quantity": integer(0),
    "failed_quantity": integer(0),
    "estimated_material_cost": _nullable(MONEY),
    "estimated_total_cost": _nullable(MONEY),
}
ITEM_CREATE: Final = vol.Schema(_with_required(ITEM_FIELDS, ("product_id", "quantity")))
ITEM_PATCH: Final = vol.Schema(_optional(ITEM_FIELDS))

MATERIAL_FIELDS: Final = {
    "spool_id": IDENTIFIER,
    "estimated_weight_grams": _nullable(GRAMS),
    "actual_weight_grams": _nullable(GRAMS),
    "spool_weight_before_grams": _nullable(GRAMS),
    "spool_weight_after_grams": _nullable(GRAMS),
    "estimated_purge_grams": _nullable(GRAMS),
    "actual_purge_grams": _nullable(GRAMS),
    "cost_per_gram": _nullable(MONEY),
}
MATERIAL_CREATE: Final = vol.Schema(_with_required(MATERIAL_FIELDS, ("spool_id",)))
MATERIAL_PATCH: Final = vol.Schema(_optional(MATERIAL_FIELDS))

RECIPE_RUN_CREATE: Final = vol.Schema(
    {
        vol.Required("recipe_id"): IDENTIFIER,
        vol.Optional("name"): _nullable(text()),
        vol.Required("total_units"): integer(),
        # Negative prices pass the shape and are refused as invalid input (400), as the seed lists.
        vol.Optional("unit_sale_price"): _nullable(integer(maximum=100_000_000_000)),
    }
)
