"""Production runs: items, materials, completion (every spool deducted or none) and runs from recipes.

Every operation checks everything it needs before it changes anything, so a refused operation
leaves the books as they were (never a half-written record). The Home Assistant side
(`runtime/production.py`) saves after each operation and tells the entities.

Completing a run deducts each material's actual grams from its spool, all of them or none. A run
created from a recipe gets its cost snapshot (`costing.cost_snapshot`) at creation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
import copy
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from .codec import dump, load
from .costing import cost_snapshot
from .money import from_cents, quantity_out, to_decimal
from .records import (
    COMPLETABLE,
    COMPLETED,
    IN_PROGRESS,
    PENDING,
    InventoryError,
    Product,
    ProductionRun,
    Recipe,
    RunItem,
    RunMaterial,
    Spool,
    iso_z,
    new_id,
)
from .usage import JobDeduction, PrintBooks


@dataclass(frozen=True, slots=True)
class Deduction:
    """What completing a run takes from one spool."""

    spool_id: str
    previous: Decimal
    deducted: Decimal

    @property
    def new(self) -> Decimal:
        """What the spool holds afterwards."""
        return self.previous - self.deducted


@dataclass(frozen=True, slots=True)
class Completion:
    """A completed run and what its completion deducted."""

    run: ProductionRun
    deductions: list[Deduction]


class Books(PrintBooks):
    """The catalogue and the production runs, with every rule that keeps them consistent."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        """Empty books; `now` gives the current instant (UTC)."""
        super().__init__(now)
        self.runs: dict[str, ProductionRun] = {}
        # Grams deducted by completed runs, ever: deleting a run does not give filament back.
        self.material_used_grams = Decimal(0)
        # What each ended print job took from the spools, by job id: a job is deducted once.
        self.job_deductions: dict[str, JobDeduction] = {}
        self.dismissed_tray_uuids: set[str] = set()

    # storage

    def to_stored(self) -> dict[str, Any]:
        """Everything, JSON-safe."""
        return {
            "spools": [dump(spool) for spool in self.spools.values()],
            "products": [dump(product) for product in self.products.values()],
            "recipes": [dump(recipe) for recipe in self.recipes.values()],
            "runs": [dump(run) for run in self.runs.values()],
            "material_used_grams": str(self.material_used_grams),
            "job_deductions": [_dump_deduction(record) for record in self.job_deductions.values()],
            "dismissed_tray_uuids": sorted(self.dismissed_tray_uuids),
        }

    def copy(self) -> Books:
        """A copy to change without touching these books: every record, and list of records, its own.

        Values inside records (text, Decimals, instants, a run's cost snapshot) are shared: the
        operations replace them, never change them in place. Five times cheaper than `deepcopy`.
        """
        twin = Books(self._now)
        twin.spools = {key: _own(spool) for key, spool in self.spools.items()}
        twin.products = {key: _own(product) for key, product in self.products.items()}
        twin.recipes = {key: _own(recipe) for key, recipe in self.recipes.items()}
        twin.runs = {key: _own(run) for key, run in self.runs.items()}
        twin.material_used_grams = self.material_used_grams
        twin.job_deductions = dict(self.job_deductions)  # entries are written once, never changed
        twin.dismissed_tray_uuids = set(self.dismissed_tray_uuids)
        return twin

    def restore(self, stored: Mapping[str, Any]) -> None:
        """Replace the books with stored ones."""
        self.spools = {s["id"]: load(Spool, s) for s in stored.get("spools", [])}
        self.products = {p["id"]: load(Product, p) for p in stored.get("products", [])}
        self.recipes = {r["id"]: load(Recipe, r) for r in stored.get("recipes", [])}
        self.runs = {r["id"]: load(ProductionRun, r) for r in stored.get("runs", [])}
        self.material_used_grams = to_decimal(stored.get("material_used_grams", "0"))
        deductions = (_load_deduction(record) for record in stored.get("job_deductions", []))
        self.job_deductions = {str(record.job_id): record for record in deductions}
        self.dismissed_tray_uuids = set(stored.get("dismissed_tray_uuids", []))

    # production runs

    def run(self, run_id: str) -> ProductionRun:
        """A production run, or 404."""
        if (run := self.runs.get(run_id)) is None:
            raise InventoryError(f"Production run {run_id} not found", 404)
        return run

    def list_runs(
        self, *, skip: int, limit: int, status: str | None, printer_name: str | None
    ) -> tuple[list[ProductionRun], int]:
        """Runs, newest first, filtered, and how many match in all."""
        matching = [
            run
            for run in reversed(self.runs.values())
            if (status is None or run.status == status)
            and (printer_name is None or run.printer_name == printer_name)
        ]
        return matching[skip : skip + limit], len(matching)

    def add_run(self, data: Mapping[str, Any]) -> ProductionRun:
        """A new run. It is completed through `complete_run`, never created completed."""
        if data.get("status") == COMPLETED:
            raise InventoryError(
                "A run is completed through POST .../complete, after its materials are weighed."
            )
        now = self.now()
        run = ProductionRun(id=new_id(), status=PENDING, created_at=now, updated_at=now)
        self._apply_run_fields(run, data)
        self.runs[run.id] = run
        return run

    def update_run(self, run_id: str, changes: Mapping[str, Any]) -> ProductionRun:
        """Change a run. Status `completed` completes it (see `complete_run`)."""
        run = self.run(run_id)
        if "status" in changes and changes["status"] != run.status and run.status == COMPLETED:
            raise InventoryError(
                "A completed run cannot change status; its spools are already deducted.", 409
            )
        if changes.get("status") == COMPLETED and run.status != COMPLETED:
            self.complete_run(run_id, changes)
            return run
        self._apply_run_fields(run, changes)
        run.updated_at = self.now()
        return run

    def _apply_run_fields(self, run: ProductionRun, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            setattr(run, key, value)
        if run.status == IN_PROGRESS and run.started_at is None:
            run.started_at = self.now()

    def delete_run(self, run_id: str) -> None:
        """Forget a run. A completed run's deductions stay: the filament was used."""
        self.run(run_id)
        del self.runs[run_id]

    def add_item(self, run_id: str, data: Mapping[str, Any]) -> RunItem:
        """A product made in the run."""
        run = self.run(run_id)
        product = self.product(data["product_id"])
        item = RunItem(
            id=new_id(),
            product_id=product.id,
            product_name=product.name,
            quantity=data["quantity"],
            **{key: data[key] for key in _ITEM_EXTRA if key in data},
        )
        _check_quantities(item)
        run.items.append(item)
        run.updated_at = self.now()
        return item

    def update_item(self, run_id: str, item_id: str, changes: Mapping[str, Any]) -> RunItem:
        """Change an item; outcomes (successful, failed) may be recorded after completion."""
        run = self.run(run_id)
        item = run.item(item_id)
        changed = replace(item, **changes)
        if "product_id" in changes:
            changed.product_name = self.product(changes["product_id"]).name
        _check_quantities(changed)
        run.items[run.items.index(item)] = changed
        run.updated_at = self.now()
        return changed

    def delete_item(self, run_id: str, item_id: str) -> None:
        """Remove an item."""
        run = self.run(run_id)
        run.items.remove(run.item(item_id))
        run.updated_at = self.now()

    def add_material(self, run_id: str, data: Mapping[str, Any]) -> RunMaterial:
        """Filament from a spool; its cost per gram is the spool's unless given."""
        run = self._open_run(run_id)
        spool = self.spool(data["spool_id"])
        material = RunMaterial(
            id=new_id(), spool_id=spool.id, spool_name=spool.name, cost_per_gram=spool.cost_per_gram
        )
        material = _weighed(replace(material, **data))
        run.materials.append(material)
        run.updated_at = self.now()
        return material

    def update_material(self, run_id: str, material_id: str, changes: Mapping[str, Any]) -> RunMaterial:
        """Change a material; before and after weights give the actual grams (before - after)."""
        run = self._open_run(run_id)
        material = run.material(material_id)
        changed = replace(material, **changes)
        if "spool_id" in changes:
            spool = self.spool(changes["spool_id"])
            changed.spool_name = spool.name
            if "cost_per_gram" not in changes:
                changed.cost_per_gram = spool.cost_per_gram
        if "actual_weight_grams" not in changes and (
            "spool_weight_before_grams" in changes or "spool_weight_after_grams" in changes
        ):
            changed.actual_weight_grams = None  # recomputed from the new weights
        changed = _weighed(changed)
        run.materials[run.materials.index(material)] = changed
        run.updated_at = self.now()
        return changed

    def delete_material(self, run_id: str, material_id: str) -> None:
        """Remove a material from a run not yet completed."""
        run = self._open_run(run_id)
        run.materials.remove(run.material(material_id))
        run.updated_at = self.now()

    def _open_run(self, run_id: str) -> ProductionRun:
        run = self.run(run_id)
        if run.status == COMPLETED:
            raise InventoryError("The run is completed: its materials are deducted and cannot change.", 409)
        return run

    def completion_plan(self, run: ProductionRun, started_at: datetime | None) -> list[Deduction]:
        """What completing the run now would deduct, per spool, or why it cannot (409, nothing done)."""
        if run.status == COMPLETED:
            raise InventoryError(f"Production run {run.id} is already completed.", 409)
        if run.status not in COMPLETABLE:
            raise InventoryError(f"A {run.status} run cannot be completed.", 409)
        problems: list[dict[str, Any]] = []
        if started_at is not None and started_at > self.now():
            # Completing it now would give a negative duration.
            problems.append({"reason": "started_after_completion", "started_at": iso_z(started_at)})
        needed: dict[str, Decimal] = defaultdict(Decimal)
        for material in run.materials:
            if material.actual_weight_grams is None:
                problems.append(
                    {"material_id": material.id, "spool_id": material.spool_id, "reason": "no_actual_usage"}
                )
            else:
                # What the run's print jobs took from the spool when they ended is not taken again.
                needed[material.spool_id] += material.actual_weight_grams - (material.deducted_grams or 0)
        plan = []
        for spool_id, grams in needed.items():
            if grams <= 0:
                continue  # all of it already deducted by the run's jobs
            spool = self.spools.get(spool_id)
            if spool is None:
                problems.append({"spool_id": spool_id, "reason": "unknown_spool"})
            elif grams > spool.remaining_grams:
                problems.append(
                    {
                        "spool_id": spool_id,
                        "reason": "insufficient",
                        "needed_grams": quantity_out(grams),
                        "remaining_grams": quantity_out(spool.remaining_grams),
                    }
                )
            else:
                plan.append(Deduction(spool_id, spool.remaining_grams, grams))
        if problems:
            raise InventoryError(
                "The run cannot be completed; nothing was deducted: " + _explain(problems, self.spools),
                409,
                problems=problems,
            )
        return plan

    def complete_run(self, run_id: str, changes: Mapping[str, Any] | None = None) -> Completion:
        """Deduct every material from its spool, all or none, and close the run with its actuals."""
        run = self.run(run_id)
        updated = {key: value for key, value in (changes or {}).items() if key != "status"}
        plan = self.completion_plan(run, updated.get("started_at", run.started_at))
        self._apply_run_fields(run, updated)
        for deduction in plan:
            spool = self.spools[deduction.spool_id]
            spool.remaining_grams = deduction.new
            spool.updated_at = self.now()
            self.material_used_grams += deduction.deducted
        run.status = COMPLETED
        run.completed_at = self.now()
        run.actual_print_time_hours = run.print_hours
        run.actual_total_filament_grams = run.used_grams
        run.updated_at = run.completed_at
        return Completion(run, plan)

    # runs from recipes (seed 001)

    def add_recipe_run(self, data: Mapping[str, Any], *, currency: str) -> ProductionRun:
        """A pending run of `total_units` from a recipe, with its costs computed now and frozen."""
        recipe = self.recipe(data["recipe_id"])
        units: int = data["total_units"]
        if units < 1:
            raise InventoryError("total_units must be at least 1.")
        sale_price: int = data.get("unit_sale_price") or 0
        if sale_price < 0:
            raise InventoryError("unit_sale_price cannot be negative.")
        product = self.product(recipe.product_id)
        spools = [self.pricing_spool(line) for line in recipe.materials]
        snapshot = cost_snapshot(recipe, spools, units, sale_price, currency)
        now = self.now()
        grams = [line.grams_per_unit * units for line in recipe.materials]
        run = ProductionRun(
            id=new_id(),
            status=PENDING,
            created_at=now,
            updated_at=now,
            estimated_print_time_hours=recipe.print_hours_per_unit * units,
            estimated_total_filament_grams=sum(grams, Decimal(0)),
            notes=f"From recipe {recipe.name}",
            items=[
                RunItem(
                    id=new_id(),
                    product_id=product.id,
                    product_name=product.name,
                    quantity=units,
                    estimated_material_cost=from_cents(snapshot["materials"]),
                    estimated_total_cost=from_cents(snapshot["total"]),
                )
            ],
            materials=[
                RunMaterial(
                    id=new_id(),
                    spool_id=spool.id,
                    spool_name=spool.name,
                    estimated_weight_grams=g,
                    cost_per_gram=spool.cost_per_gram,
                )
                for g, spool in zip(grams, spools, strict=True)
            ],
            recipe_id=recipe.id,
            name=data.get("name") or recipe.name,
            total_units=units,
            unit_sale_price=sale_price,
            cost_snapshot=snapshot,
        )
        self.runs[run.id] = run
        return run

    def recipe_runs(self) -> list[ProductionRun]:
        """Runs made from recipes, newest first."""
        return [run for run in reversed(self.runs.values()) if run.recipe_id is not None]


_ITEM_EXTRA: Final = (
    "successful_quantity",
    "failed_quantity",
    "estimated_material_cost",
    "estimated_total_cost",
)


# The fields of each kind of record that hold lists of records (a run's items and materials...).
_RECORD_LISTS: Final[dict[type, tuple[str, ...]]] = {
    kind: tuple(item.name for item in fields(kind) if item.default_factory is list)
    for kind in (Spool, Product, Recipe, ProductionRun)
}


def _own[R](record: R) -> R:
    """A copy of a record with lists of copied records of its own."""
    twin = copy.copy(record)
    for name in _RECORD_LISTS[type(record)]:
        setattr(twin, name, [copy.copy(entry) for entry in getattr(record, name)])
    return twin


def _dump_deduction(record: JobDeduction) -> dict[str, Any]:
    return {
        "job_id": record.job_id,
        "at": record.at.isoformat(),
        "spools": {spool_id: str(grams) for spool_id, grams in record.spools.items()},
        "material_cost": None if record.material_cost is None else str(record.material_cost),
        "run_id": record.run_id,
        "machine_cost": str(record.machine_cost),
        "short": {spool_id: str(grams) for spool_id, grams in record.short.items()},
    }


def _load_deduction(data: Mapping[str, Any]) -> JobDeduction:
    return JobDeduction(
        job_id=int(data["job_id"]),
        at=datetime.fromisoformat(data["at"]),
        spools={spool_id: to_decimal(grams) for spool_id, grams in data.get("spools", {}).items()},
        material_cost=None if data.get("material_cost") is None else to_decimal(data["material_cost"]),
        run_id=data.get("run_id"),
        machine_cost=to_decimal(data.get("machine_cost", "0")),
        short={spool_id: to_decimal(grams) for spool_id, grams in data.get("short", {}).items()},
    )


def _check_quantities(item: RunItem) -> None:
    if item.successful_quantity + item.failed_quantity > item.quantity:
        raise InventoryError(
            f"successful_quantity ({item.successful_quantity}) and failed_quantity ({item.failed_quantity})"
            f" add up to more than quantity ({item.quantity})."
        )


def _weighed(material: RunMaterial) -> RunMaterial:
    """The material with its actual grams from the before and after weights, checked."""
    before, after = material.spool_weight_before_grams, material.spool_weight_after_grams
    if before is not None and after is not None:
        if after > before:
            raise InventoryError(
                f"spool_weight_after_grams ({quantity_out(after)}) is more than"
                f" spool_weight_before_grams ({quantity_out(before)})."
            )
        if material.actual_weight_grams is not None and material.actual_weight_grams != before - after:
            raise InventoryError(
                f"actual_weight_grams ({quantity_out(material.actual_weight_grams)}) is not"
                f" before - after ({quantity_out(before - after)})."
            )
        material.actual_weight_grams = before - after
    return material


def _explain(problems: list[dict[str, Any]], spools: Mapping[str, Spool]) -> str:
    parts = []
    for problem in problems:
        spool = spools.get(problem.get("spool_id", ""))
        name = spool.name if spool else problem.get("spool_id")
        match problem["reason"]:
            case "started_after_completion":
                parts.append(f"it started at {problem['started_at']}, after now")
            case "no_actual_usage":
                parts.append(f"material {problem['material_id']} ({name}) has no actual usage recorded")
            case "unknown_spool":
                parts.append(f"spool {name} no longer exists")
            case _:
                parts.append(
                    f"spool {name} holds {problem['remaining_grams']} g, the run used {problem['needed_grams']} g"
                )
    return "; ".join(parts) + "."
