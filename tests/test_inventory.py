"""The books without Home Assistant: money, the cost snapshot, completion rules, the storage form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import voluptuous as vol

from custom_components.print_farm.api.production_runs import run_body
from custom_components.print_farm.rules.books.codec import load
from custom_components.print_farm.rules.books.money import (
    from_cents,
    money_out,
    rate_out,
    tenth,
    to_cents,
    to_decimal,
)
from custom_components.print_farm.rules.books.records import InventoryError, ProductionRun
from custom_components.print_farm.rules.books.runs import Books
from custom_components.print_farm.rules.books.schema import (
    GRAMS,
    HOURS,
    MATERIAL_CREATE,
    MONEY,
    RECIPE_CREATE,
    RUN_CREATE,
    SIGNED_GRAMS,
    SPOOL_CREATE,
    number,
)


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2024, 1, 15, 9, 45, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def books(clock: Clock) -> Books:
    return Books(clock)


def spool(books: Books, **data: Any) -> str:
    return books.add_spool(SPOOL_CREATE({"name": "PLA Black", "material": "PLA", **data})).id


@pytest.mark.parametrize(
    ("amount", "cents"),
    [("1137.045", 113704), ("11.37045", 1137), ("4.375", 438), ("4.385", 438), ("0.005", 0), ("0.015", 2)],
)
def test_cents_round_half_even(amount: str, cents: int) -> None:
    assert to_cents(Decimal(amount)) == cents


def test_money_conversions() -> None:
    assert to_decimal(0.025) == Decimal("0.025")
    assert to_decimal(850.3) - to_decimal(710.1) == Decimal("140.2")
    assert from_cents(1137) == Decimal("11.37")
    assert money_out(Decimal("3.745")) == 3.74
    assert rate_out(Decimal("0.0249999")) == 0.025
    assert tenth(Decimal(5) * 100 / Decimal(150)) == 3.3
    for bad in (True, None, float("nan"), float("inf"), "x", [1]):
        with pytest.raises(ValueError, match="expected a"):
            to_decimal(bad)


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        (SPOOL_CREATE, {"name": "A", "material": "PLA", "remaining_grams": -1}),
        (SPOOL_CREATE, {"name": "A", "material": "PLA", "net_weight_grams": 0}),
        (SPOOL_CREATE, {"name": "A", "material": "PLA", "price": True}),
        (SPOOL_CREATE, {"name": "A", "material": "PLA", "price": "12"}),
        (SPOOL_CREATE, {"name": " ", "material": "PLA"}),
        (RUN_CREATE, {"quality_rating": 6}),
        (RUN_CREATE, {"quality_rating": 0}),
        (RUN_CREATE, {"quality_rating": 4.0}),
        (RUN_CREATE, {"status": "done"}),
        (RUN_CREATE, {"started_at": "yesterday"}),
        (RUN_CREATE, {"estimated_total_filament_grams": -150}),
        (MATERIAL_CREATE, {"spool_id": "x", "estimated_weight_grams": -5}),
        (RECIPE_CREATE, {"product_id": "x", "labour_cost_per_unit": 1.5}),
        (RECIPE_CREATE, {"product_id": "x", "materials": [{"material": "PLA", "grams_per_unit": 0}]}),
    ],
)
def test_schemas_refuse_bad_input(schema: vol.Schema, body: dict[str, Any]) -> None:
    with pytest.raises(vol.Invalid):
        schema(body)


def test_instants_without_zone_are_utc() -> None:
    assert RUN_CREATE({"started_at": "2024-01-15T10:00:00"})["started_at"] == datetime(
        2024, 1, 15, 10, tzinfo=UTC
    )
    assert RUN_CREATE({"started_at": "2024-01-15T11:00:00+01:00"})["started_at"] == datetime(
        2024, 1, 15, 10, tzinfo=UTC
    )


def test_spool_price_gives_cost_per_gram(books: Books) -> None:
    spool_id = spool(books, price=24.99, net_weight_grams=1000)
    assert books.spools[spool_id].cost_per_gram == Decimal("0.02499")
    assert books.spools[spool_id].remaining_grams == Decimal(1000)
    books.update_spool(spool_id, {"cost_per_gram": Decimal("0.03")})
    assert books.spools[spool_id].price is None
    with pytest.raises(InventoryError):
        books.add_spool(SPOOL_CREATE({"name": "B", "material": "PLA", "price": 20, "cost_per_gram": 0.02}))


def test_cost_snapshot_against_a_hand_computed_recipe(books: Books) -> None:
    """10 units of 45.5 g PLA at 24.99 per 1000 g, 1.25 h each at 35 c/h, 120 c labour, 35 c packaging, 15 c overhead.

    materials 455 g x 0.02499 = 11.37045 = 1137.045 c -> 1137; machine 12.5 h x 35 = 437.5 c -> 438 (half-even);
    labour 1200; packaging 350; overhead 150; total 3274.545 -> 3275; per unit 327.4545 -> 327;
    sale 500 c: margin per unit 172.5455 -> 173, margin total 5000 - 3274.545 = 1725.455 -> 1725.
    """
    pla = spool(books, price=24.99, net_weight_grams=1000)
    product = books.add_product({"name": "Phone Stand"})
    recipe = books.add_recipe(
        RECIPE_CREATE(
            {
                "product_id": product.id,
                "materials": [{"material": "pla", "grams_per_unit": 45.5}],
                "print_hours_per_unit": 1.25,
                "labour_cost_per_unit": 120,
                "packaging_cost_per_unit": 35,
                "overhead_cost_per_unit": 15,
                "machine_cost_per_hour": 35,
            }
        )
    )
    run = books.add_recipe_run(
        {"recipe_id": recipe.id, "total_units": 10, "unit_sale_price": 500}, currency="EUR"
    )
    snapshot = run.cost_snapshot
    assert snapshot is not None
    assert {key: snapshot[key] for key in snapshot if key != "material_lines"} == {
        "currency": "EUR",
        "units": 10,
        "materials": 1137,
        "machine_time": 438,
        "machine_hours": 12.5,
        "labour": 1200,
        "packaging": 350,
        "overhead": 150,
        "total": 3275,
        "per_unit": 327,
        "unit_sale_price": 500,
        "sale_total": 5000,
        "margin_per_unit": 173,
        "margin_total": 1725,
    }
    assert snapshot["material_lines"] == [
        {
            "material": "pla",
            "spool_id": pla,
            "spool_name": "PLA Black",
            "grams": 455.0,
            "cost_per_gram": 0.02499,
            "cost": 1137,
        }
    ]
    body = run_body(run)
    assert body["estimated_total_filament_grams"] == 455.0
    assert body["estimated_print_time_hours"] == 12.5
    assert body["items"][0]["estimated_material_cost"] == 11.37
    assert body["items"][0]["estimated_total_cost"] == 32.75
    assert body["materials"][0]["spool_id"] == pla


def test_recipe_priced_from_the_fullest_priced_spool(books: Books) -> None:
    spool(books, name="nearly empty", price=10, remaining_grams=50)
    full = spool(books, name="full", price=30)
    spool(books, name="no price")
    product = books.add_product({"name": "Stand"})
    recipe = books.add_recipe(
        RECIPE_CREATE({"product_id": product.id, "materials": [{"material": "PLA", "grams_per_unit": 10}]})
    )
    run = books.add_recipe_run({"recipe_id": recipe.id, "total_units": 1}, currency="EUR")
    assert run.materials[0].spool_id == full
    petg = books.add_recipe(
        RECIPE_CREATE({"product_id": product.id, "materials": [{"material": "PETG", "grams_per_unit": 10}]})
    )
    with pytest.raises(InventoryError, match="No spool of PETG") as err:
        books.add_recipe_run({"recipe_id": petg.id, "total_units": 1}, currency="EUR")
    assert err.value.status == 400
    with pytest.raises(InventoryError, match="at least 1"):
        books.add_recipe_run({"recipe_id": recipe.id, "total_units": 0}, currency="EUR")


def test_completion_is_all_or_nothing_across_spools(books: Books, clock: Clock) -> None:
    a = spool(books, name="A", remaining_grams=500)
    b = spool(books, name="B", remaining_grams=100)
    run = books.add_run(RUN_CREATE({"status": "in_progress"}))
    for spool_id, grams in ((a, 200), (b, 60), (b, 60)):  # two materials on B: 120 g of its 100 g
        books.add_material(run.id, MATERIAL_CREATE({"spool_id": spool_id, "actual_weight_grams": grams}))
    with pytest.raises(InventoryError) as err:
        books.complete_run(run.id)
    assert err.value.status == 409
    assert err.value.extra["problems"] == [
        {"spool_id": b, "reason": "insufficient", "needed_grams": 120.0, "remaining_grams": 100.0}
    ]
    assert books.spools[a].remaining_grams == 500
    assert books.spools[b].remaining_grams == 100
    assert run.status == "in_progress"
    books.adjust_spool(b, delta_grams=Decimal(20))
    clock.moment += timedelta(hours=2)
    books.complete_run(run.id)
    assert books.spools[a].remaining_grams == 300
    assert books.spools[b].remaining_grams == 0
    assert books.material_used_grams == 320
    assert run.actual_total_filament_grams == 320
    assert run.actual_print_time_hours == 2


def test_storage_round_trip(books: Books, clock: Clock) -> None:
    a = spool(books, price=19.99, net_weight_grams=750, color="Black", vendor="Polymaker")
    product = books.add_product({"name": "Stand", "sku": "ST-1"})
    recipe = books.add_recipe(
        RECIPE_CREATE({"product_id": product.id, "materials": [{"material": "PLA", "grams_per_unit": 12.3}]})
    )
    recipe_run = books.add_recipe_run(
        {"recipe_id": recipe.id, "total_units": 3, "unit_sale_price": 999}, currency="EUR"
    )
    run = books.add_run(
        RUN_CREATE({"started_at": "2024-01-15T10:00:00Z", "estimated_total_filament_grams": 150.5})
    )
    books.add_item(run.id, {"product_id": product.id, "quantity": 3})
    books.add_material(
        run.id,
        MATERIAL_CREATE(
            {"spool_id": a, "spool_weight_before_grams": 850.3, "spool_weight_after_grams": 710.1}
        ),
    )
    clock.moment = datetime(2024, 1, 15, 14, 30, 30, tzinfo=UTC)
    books.complete_run(run.id)
    assert books.runs[run.id].actual_print_time_hours == Decimal(16230) / 3600  # exact: 4.508333...
    restored = Books(clock)
    restored.restore(books.to_stored())
    assert restored.to_stored() == books.to_stored()
    assert restored.spools[a].cost_per_gram == books.spools[a].cost_per_gram
    assert restored.runs[run.id].materials[0].actual_weight_grams == Decimal("140.2")
    assert restored.runs[recipe_run.id].cost_snapshot == recipe_run.cost_snapshot
    assert isinstance(restored.runs[run.id], ProductionRun)
    # A record from a newer minor version may carry fields this one does not know.
    assert load(ProductionRun, {**books.to_stored()["runs"][0], "future_field": 1}).id == recipe_run.id


def test_a_run_cannot_end_before_it_started(books: Books, clock: Clock) -> None:
    run = books.add_run(RUN_CREATE({"started_at": "2024-01-15T10:00:00Z"}))  # the clock reads 09:45
    with pytest.raises(InventoryError) as err:
        books.complete_run(run.id)
    assert err.value.status == 409
    assert err.value.extra["problems"] == [
        {"reason": "started_after_completion", "started_at": "2024-01-15T10:00:00Z"}
    ]
    assert run.status == "pending"
    # Completing through PATCH status completed with a corrected start is checked with that start.
    books.update_run(run.id, RUN_CREATE({"status": "completed", "started_at": "2024-01-15T08:45:00Z"}))
    assert (run.status, run.actual_print_time_hours) == ("completed", 1)


def test_time_variance_is_rounded_once(books: Books, clock: Clock) -> None:
    """4.0503 h against 4 h: 0.1 after one rounding (0.0 if the hours had been rounded to 4.05 first)."""
    run = books.add_run(RUN_CREATE({"started_at": "2024-01-15T09:45:00Z", "estimated_print_time_hours": 4}))
    clock.moment += timedelta(seconds=14581)  # 4.050277... h
    books.complete_run(run.id)
    assert run_body(run)["variance_analysis"]["time_variance_hours"] == 0.1
    assert run_body(run)["actual_print_time_hours"] == 4.0503


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"net_weight_grams": 1e-30}, "at least 1"),
        ({"net_weight_grams": 0.5}, "at least 1"),
        ({"remaining_grams": 1e300}, "at most"),
        ({"price": 1e300}, "at most"),
    ],
)
def test_numbers_out_of_range(body: dict[str, Any], message: str) -> None:
    with pytest.raises(vol.Invalid, match=message):
        SPOOL_CREATE({"name": "A", "material": "PLA", **body})


@pytest.mark.parametrize("value", [-1e25, -1e30, -1e300, 1e25, 1e30, 1e300])
@pytest.mark.parametrize("validator", [GRAMS, SIGNED_GRAMS, HOURS, MONEY, number(above=True)])
def test_far_out_of_range_is_invalid_not_an_error(validator: Any, value: float) -> None:
    """Both bounds hold before rounding: -1e25 has too many digits to round, and is simply too small."""
    with pytest.raises(vol.Invalid, match="must be at"):
        validator(value)


def test_bounds_apply_before_rounding() -> None:
    assert GRAMS(1e-30) == 0  # at least 0: a tiny positive value is 0 g
    with pytest.raises(vol.Invalid, match="at least 0"):
        GRAMS(-1e-30)  # below 0 as sent, though it would round to 0
    with pytest.raises(vol.Invalid, match="at most 1000000"):
        GRAMS(1_000_000.0001)
    assert GRAMS(999_999.9996) == Decimal(1_000_000)


def test_inputs_keep_a_fixed_number_of_places() -> None:
    assert SPOOL_CREATE({"name": "A", "material": "PLA", "remaining_grams": 1e-30})["remaining_grams"] == 0
    assert SPOOL_CREATE({"name": "A", "material": "PLA", "cost_per_gram": 0.0249999})[
        "cost_per_gram"
    ] == Decimal("0.025")
    assert RUN_CREATE({"estimated_print_time_hours": 1.23456})["estimated_print_time_hours"] == Decimal(
        "1.2346"
    )
    assert SIGNED_GRAMS(-0.12345) == Decimal("-0.123")  # adjust_spool's delta: the same three places
    with pytest.raises(vol.Invalid, match="at least 0.001"):
        RECIPE_CREATE({"product_id": "x", "materials": [{"material": "PLA", "grams_per_unit": 1e-9}]})


def test_price_and_cost_per_gram_nulls(books: Books) -> None:
    spool_id = spool(books, cost_per_gram=0.03)
    books.update_spool(spool_id, {"price": Decimal(25), "cost_per_gram": None})
    assert (books.spools[spool_id].price, books.spools[spool_id].cost_per_gram) == (
        Decimal(25),
        Decimal("0.025"),
    )
    books.update_spool(spool_id, {"cost_per_gram": None})
    assert books.spools[spool_id].price == Decimal(25)  # null clears only what it names
    books.update_spool(spool_id, {"price": None})
    assert books.spools[spool_id].cost_per_gram is None
