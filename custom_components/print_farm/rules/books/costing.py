"""What runs cost and how they went: the recipe run's cost snapshot, and actual against estimated."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .money import from_cents, hours_out, quantity_out, rate_out, tenth, to_cents
from .records import ProductionRun, Recipe, Spool


def cost_snapshot(
    recipe: Recipe, spools: list[Spool], units: int, unit_sale_price: int, currency: str
) -> dict[str, Any]:
    """The cost of `units` units in integer cents.

    Every figure is computed exactly in currency units and converted to cents once, at the end.
    """
    lines = []
    materials = Decimal(0)
    for line, spool in zip(recipe.materials, spools, strict=True):
        rate = spool.cost_per_gram or Decimal(0)
        grams = line.grams_per_unit * units
        cost = grams * rate
        materials += cost
        lines.append(
            {
                "material": line.material,
                "spool_id": spool.id,
                "spool_name": spool.name,
                "grams": quantity_out(grams),
                "cost_per_gram": rate_out(rate),
                "cost": to_cents(cost),
            }
        )
    hours = recipe.print_hours_per_unit * units
    machine_time = hours * from_cents(recipe.machine_cost_per_hour)
    labour = from_cents(recipe.labour_cost_per_unit) * units
    packaging = from_cents(recipe.packaging_cost_per_unit) * units
    overhead = from_cents(recipe.overhead_cost_per_unit) * units
    total = materials + machine_time + labour + packaging + overhead
    price = from_cents(unit_sale_price)
    return {
        "currency": currency,
        "units": units,
        "materials": to_cents(materials),
        "machine_time": to_cents(machine_time),
        "machine_hours": hours_out(hours),
        "labour": to_cents(labour),
        "packaging": to_cents(packaging),
        "overhead": to_cents(overhead),
        "total": to_cents(total),
        "per_unit": to_cents(total / units),
        "unit_sale_price": unit_sale_price,
        "sale_total": unit_sale_price * units,
        "margin_per_unit": to_cents(price - total / units),
        "margin_total": to_cents(price * units - total),
        "material_lines": lines,
    }


def variance_analysis(run: ProductionRun) -> dict[str, float | None]:
    """Actual against estimated filament and time; None where a side is not known yet."""
    grams, grams_percent = _variance(run.estimated_total_filament_grams, run.used_grams)
    hours, hours_percent = _variance(run.estimated_print_time_hours, run.print_hours)
    return {
        "material_variance_grams": grams,
        "material_variance_percent": grams_percent,
        "time_variance_hours": hours,
        "time_variance_percent": hours_percent,
    }


def _variance(estimated: Decimal | None, actual: Decimal | None) -> tuple[float | None, float | None]:
    if estimated is None or actual is None:
        return None, None
    difference = actual - estimated
    return tenth(difference), (tenth(difference * 100 / estimated) if estimated else None)
