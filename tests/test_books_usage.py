"""The books' rules for prints, in plain Python: placements, a job's plan, its deduction once, runs fed by jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from custom_components.print_farm.rules.books.records import InventoryError
from custom_components.print_farm.rules.books.runs import Books
from custom_components.print_farm.rules.books.usage import (
    FilamentUse,
    fraction_used,
    job_grams,
    job_uses,
    shortfalls,
)

SERIAL = "01P00A000000001"
UUID = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
TWO_FILAMENTS = {
    "plates": [
        {
            "index": 1,
            "filaments": [
                {"tool": 0, "grams": 12.34, "material": "PLA"},
                {"tool": 2, "grams": 7.5, "material": "PETG"},
            ],
        },
        {"index": 2, "filaments": [{"tool": 1, "grams": 99.0, "material": "PLA"}]},
    ]
}


def books() -> Books:
    return Books(lambda: datetime(2026, 1, 1, 12, tzinfo=UTC))


def test_grams_per_filament_of_the_plate() -> None:
    assert job_grams(TWO_FILAMENTS, 1, None) == [(1, "PLA", Decimal("12.34")), (3, "PETG", Decimal("7.5"))]
    assert job_grams(TWO_FILAMENTS, 2, None) == [(2, "PLA", Decimal(99))]
    # A file with only its total (plain G-code): filament 1.
    assert job_grams({"filament_type": "PLA"}, 1, 4.53) == [(1, "PLA", Decimal("4.53"))]
    assert job_grams({}, 1, None) == []
    # Plate 2 with only its weight: that weight, never plate 1's per-tool figures nor the file's total.
    plates = {
        "materials": ["PETG", "PETG"],
        "filament_per_tool": [{"tool": 0, "grams": 12.34, "material": "PETG"}],
        "plates": [
            {"index": 1, "weight_g": 12.34, "filaments": [{"tool": 0, "grams": 12.34, "material": "PETG"}]},
            {"index": 2, "weight_g": 30.5, "filaments": []},
            {"index": 3, "filaments": []},
        ],
    }
    assert job_grams(plates, 2, 42.84) == [(1, "PETG", Decimal("30.5"))]
    assert job_grams(plates, 3, 42.84) == []  # nothing known of plate 3


def test_fraction_used() -> None:
    assert fraction_used(True, 40) == 1
    assert fraction_used(False, 40) == Decimal("0.4")
    assert fraction_used(False, 140) == 1
    assert fraction_used(False, -3) == 0


def test_plan_maps_filaments_to_trays_and_their_spools() -> None:
    uses = job_uses(
        job_grams(TWO_FILAMENTS, 1, None),
        [3, -1, 254],
        Decimal("0.4"),
        {3: "spool-a"},
        {3: 80, 254: None},
    )
    assert uses == [
        FilamentUse(1, "PLA", Decimal("4.936"), 3, "spool-a", 80),
        # The external holder holds no spool the books know: nothing is deducted for it.
        FilamentUse(3, "PETG", Decimal("3.000"), 254, None, None),
    ]
    # Plain G-code: its one filament prints from the tray loaded at the end.
    assert (
        job_uses([(1, "PLA", Decimal(5))], None, Decimal(1), {2: "s"}, {}, loaded_tray=2)[0].spool_id == "s"
    )
    # A filament the mapping leaves out (-1) has no tray.
    assert job_uses([(2, None, Decimal(5))], [3, -1], Decimal(1), {3: "s"}, {})[0].tray is None
    assert FilamentUse.from_data(uses[0].to_data()) == uses[0]


def test_a_tray_holds_one_spool_and_a_spool_one_place() -> None:
    b = books()
    first = b.add_spool({"name": "White", "material": "PLA"})
    second = b.add_spool({"name": "Black", "material": "PLA"})
    b.place_spool(first.id, SERIAL, 3)
    assert b.placed_on(SERIAL) == {3: first.id}
    b.place_spool(second.id, SERIAL, 3)  # the tray's spool is taken out
    assert b.placed_on(SERIAL) == {3: second.id}
    assert (first.printer_serial, first.tray) == (None, None)
    b.place_spool(second.id, SERIAL, 254)  # moved, not copied
    assert b.placed_on(SERIAL) == {254: second.id}
    b.place_spool(None, SERIAL, 254)
    assert b.placed_on(SERIAL) == {}


def test_tray_uuid_names_one_spool() -> None:
    b = books()
    spool = b.add_spool({"name": "White", "material": "PLA", "tray_uuid": UUID.lower()})
    assert spool.tray_uuid == UUID
    assert b.spool_with_uuid(UUID.lower()) is spool
    with pytest.raises(InventoryError) as err:
        b.add_spool({"name": "Other", "material": "PLA", "tray_uuid": UUID})
    assert err.value.status == 409


def test_a_job_is_deducted_once_and_survives_storage() -> None:
    b = books()
    spool = b.add_spool({"name": "White", "material": "PLA", "price": Decimal(20)})
    b.place_spool(spool.id, SERIAL, 3)
    uses = job_uses([(1, "PLA", Decimal(100))], [3], Decimal(1), b.placed_on(SERIAL), {})
    record = b.deduct_job(7, uses)
    assert record is not None
    assert record.spools == {spool.id: Decimal(100)}
    assert record.material_cost == Decimal(2)  # 20 per 1000 g
    assert record.cost == Decimal(2)  # no machine rate given
    assert spool.remaining_grams == 900
    assert b.deduct_job(7, uses) is None  # the ledger has job 7: nothing more
    assert spool.remaining_grams == 900
    restored = books()
    restored.restore(b.to_stored())
    assert restored.deduct_job(7, uses) is None
    assert restored.spools[spool.id].remaining_grams == 900
    assert (restored.spools[spool.id].printer_serial, restored.spools[spool.id].tray) == (SERIAL, 3)
    assert restored.material_used_grams == 100
    twin = restored.copy()
    twin.deduct_job(8, uses)
    assert "8" not in restored.job_deductions  # a copy's ledger is its own


def test_a_spool_never_goes_below_zero() -> None:
    b = books()
    spool = b.add_spool({"name": "White", "material": "PLA", "remaining_grams": Decimal(30)})
    record = b.deduct_job(1, [FilamentUse(1, "PLA", Decimal(50), 0, spool.id)])
    assert spool.remaining_grams == 0
    # The ledger records what left the spool, and the rest as its shortfall.
    assert record is not None
    assert (record.spools, record.short) == ({spool.id: Decimal(30)}, {spool.id: Decimal(20)})
    assert b.material_used_grams == 30
    restored = books()
    restored.restore(b.to_stored())
    assert restored.job_deductions["1"].short == {spool.id: Decimal(20)}


@pytest.mark.parametrize("status", ["failed", "cancelled"])  # completed: see the test above
def test_a_finished_run_takes_no_job(status: str) -> None:
    b = books()
    spool = b.add_spool({"name": "White", "material": "PLA"})
    run = b.add_run({"status": status})
    with pytest.raises(InventoryError) as err:
        b.open_run_for(run.id)
    assert err.value.status == 409
    b.deduct_job(1, [FilamentUse(1, "PLA", Decimal(10), 0, spool.id)], print_seconds=60, run_id=run.id)
    assert (run.jobs_succeeded, run.materials) == (0, [])  # its grams left the spool, not into the run
    assert spool.remaining_grams == 990


def test_runs_fed_by_jobs_complete_with_the_rest_only() -> None:
    b = books()
    spool = b.add_spool({"name": "White", "material": "PLA", "cost_per_gram": Decimal("0.02")})
    run = b.add_run({"status": "pending", "estimated_total_filament_grams": Decimal(200)})
    with pytest.raises(InventoryError) as err:
        b.open_run_for("nope")
    assert err.value.status == 404
    use = [FilamentUse(1, "PLA", Decimal(100), 0, spool.id)]
    b.deduct_job(1, use, print_seconds=3600, succeeded=True, run_id=run.id)
    b.deduct_job(
        2,
        [FilamentUse(1, "PLA", Decimal(40), 0, spool.id)],
        print_seconds=1800,
        succeeded=False,
        run_id=run.id,
    )
    (material,) = run.materials
    assert (material.actual_weight_grams, material.deducted_grams) == (Decimal(140), Decimal(140))
    assert run.actual_total_filament_grams is None  # left to its materials: a person's weighing counts
    assert run.used_grams == 140
    assert run.actual_print_time_hours == Decimal("1.5")
    assert (run.jobs_succeeded, run.jobs_failed, run.status) == (1, 1, "in_progress")
    assert spool.remaining_grams == 860
    # A person weighs 10 g more of purge on the material: completion deducts only those 10 g.
    b.update_material(run.id, material.id, {"actual_weight_grams": Decimal(150)})
    assert run.used_grams == 150
    completion = b.complete_run(run.id)
    assert [(d.spool_id, d.deducted) for d in completion.deductions] == [(spool.id, Decimal(10))]
    assert spool.remaining_grams == 850
    assert run.actual_total_filament_grams == 150
    with pytest.raises(InventoryError) as err:
        b.open_run_for(run.id)
    assert err.value.status == 409
    # A job that ends after its run completed takes its grams and leaves the run alone.
    b.deduct_job(3, use, print_seconds=60, run_id=run.id)
    assert run.jobs_succeeded == 1
    assert spool.remaining_grams == 750


def test_all_deducted_run_completes_deducting_nothing() -> None:
    b = books()
    spool = b.add_spool({"name": "White", "material": "PLA"})
    run = b.add_run({"status": "in_progress"})
    b.deduct_job(1, [FilamentUse(1, "PLA", Decimal(100), 0, spool.id)], print_seconds=60, run_id=run.id)
    assert b.complete_run(run.id).deductions == []
    assert spool.remaining_grams == 900


def test_shortfall_of_the_queued_jobs() -> None:
    b = books()
    petg = b.add_spool({"name": "PETG", "material": "PETG", "remaining_grams": Decimal(180)})
    b.add_spool({"name": "PETG spare", "material": "PETG"})  # not in a tray: not counted
    b.place_spool(petg.id, SERIAL, 2)
    queued = [
        (4, [("PETG", Decimal("200.000"))]),
        (5, [("petg", Decimal(110)), ("PLA", Decimal(5))]),
        (6, [("PETG", Decimal(100))]),
    ]
    placed = [spool for spool in b.spools.values() if spool.tray is not None]
    short = shortfalls(queued, placed)
    assert list(short) == ["PETG", "PLA"]
    assert (short["PETG"].needed_grams, short["PETG"].available_grams, short["PETG"].job_ids) == (
        Decimal(410),
        Decimal(180),
        (4, 5, 6),
    )
    assert short["PETG"].message == "the next 3 jobs need 410 g of PETG, 180 g left"
    assert shortfalls(queued[:1], placed)["PETG"].message == "the next job needs 200 g of PETG, 180 g left"
    assert "PETG" not in shortfalls([(4, [("PETG", Decimal(180))])], placed)


def test_a_jobs_cost_is_its_filament_and_its_hours_at_the_rate_of_the_day() -> None:
    b = books()
    priced = b.add_spool({"name": "White", "material": "PLA", "cost_per_gram": Decimal("0.02")})
    record = b.deduct_job(
        1,
        [FilamentUse(1, "PLA", Decimal(50), 0, priced.id)],
        print_seconds=5400,
        machine_cost_per_hour=Decimal(2),
    )
    assert record is not None
    assert (record.material_cost, record.machine_cost, record.cost) == (Decimal(1), Decimal(3), Decimal(4))
    restored = books()
    restored.restore(b.to_stored())
    assert restored.job_deductions["1"].cost == Decimal(4)
    unpriced = b.add_spool({"name": "Black", "material": "PLA"})
    record = b.deduct_job(2, [FilamentUse(1, "PLA", Decimal(50), 0, unpriced.id)], print_seconds=60)
    assert record is not None
    assert record.cost is None  # a spool without a price: the cost is not known
    record = b.deduct_job(
        3,
        [FilamentUse(1, "PLA", Decimal(5), 0, priced.id), FilamentUse(2, "PLA", Decimal(5), 1, None)],
        print_seconds=60,
    )
    assert record is not None
    assert record.material_cost is None  # a filament from no known spool: its price is not known
    record = b.deduct_job(4, [], print_seconds=3600, machine_cost_per_hour=Decimal(2))
    assert record is not None
    assert (record.material_cost, record.cost) == (None, None)  # no weights known: never machine time only
