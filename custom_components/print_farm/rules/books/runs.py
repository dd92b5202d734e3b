"""The farm's books: spools, products, recipes and production runs, without Home Assistant.

Every operation checks everything it needs before it changes anything, so a refused operation
leaves the books as they were (never a half-written record). The Home Assistant side
(`runtime/production.py`) saves after each operation and tells the entities.

A production run (seed 000) has items (products and quantities) and materials (spools with the
estimated and actual grams). Completing it deducts each material's actual grams from its spool, all
of them or none. A run created from a recipe (seed 001) is the same kind of run, with a cost
snapshot in integer cents frozen at creation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
import types
from typing import Any, Final, Union, get_args, get_origin, get_type_hints
import uuid

from .money import (
    from_cents,
    hours_out,
    money_out,
    quantity_out,
    rate_out,
    tenth,
    to_cents,
    to_decimal,
)

PENDING: Final = "pending"
IN_PROGRESS: Final = "in_progress"
PAUSED: Final = "paused"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
COMPLETABLE: Final = frozenset({PENDING, IN_PROGRESS, PAUSED})
HOUR_SECONDS: Final = Decimal(3600)


class InventoryError(ValueError):
    """A refused operation; `status` is the REST answer and `extra` joins the error body."""

    def __init__(self, message: str, status: int = 400, **extra: Any) -> None:
        """Keep the status and any details."""
        super().__init__(message)
        self.status = status
        self.extra = extra


def _new_id() -> str:
    return str(uuid.uuid4())


def iso_z(moment: datetime | None) -> str | None:
    """An instant as the seeds write it: 2024-01-15T10:00:00Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- records --------------------------------------------------------------------------------


@dataclass(slots=True)
class Spool:
    """A spool of filament; `remaining_grams` is what the books say is left on it."""

    id: str
    name: str
    material: str
    net_weight_grams: Decimal
    remaining_grams: Decimal
    created_at: datetime
    updated_at: datetime
    color: str | None = None
    vendor: str | None = None
    empty_spool_weight_grams: Decimal | None = None
    price: Decimal | None = None
    explicit_cost_per_gram: Decimal | None = None

    @property
    def cost_per_gram(self) -> Decimal | None:
        """The given cost per gram, else the spool's price over its net weight."""
        if self.explicit_cost_per_gram is not None:
            return self.explicit_cost_per_gram
        if self.price is not None:
            return self.price / self.net_weight_grams
        return None

    @property
    def remaining_percent(self) -> float:
        """What is left, as a percentage of the net weight, to one decimal."""
        return tenth(self.remaining_grams * 100 / self.net_weight_grams)


@dataclass(slots=True)
class Product:
    """Something the farm makes and sells."""

    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    sku: str | None = None
    notes: str | None = None


@dataclass(slots=True)
class RecipeMaterial:
    """One line of a bill of materials: grams of a material per finished unit."""

    material: str
    grams_per_unit: Decimal
    spool_id: str | None = None


@dataclass(slots=True)
class Recipe:
    """How one unit of a product is made and what it costs besides filament (integer cents)."""

    id: str
    product_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    materials: list[RecipeMaterial] = field(default_factory=list)
    print_hours_per_unit: Decimal = Decimal(0)
    labour_cost_per_unit: int = 0
    packaging_cost_per_unit: int = 0
    overhead_cost_per_unit: int = 0
    machine_cost_per_hour: int = 0


@dataclass(slots=True)
class RunItem:
    """A product made in a run, and how many came out well."""

    id: str
    product_id: str
    product_name: str
    quantity: int
    successful_quantity: int = 0
    failed_quantity: int = 0
    estimated_material_cost: Decimal | None = None
    estimated_total_cost: Decimal | None = None


@dataclass(slots=True)
class RunMaterial:
    """Filament a run takes from one spool: estimated, then weighed."""

    id: str
    spool_id: str
    spool_name: str
    estimated_weight_grams: Decimal | None = None
    actual_weight_grams: Decimal | None = None
    spool_weight_before_grams: Decimal | None = None
    spool_weight_after_grams: Decimal | None = None
    estimated_purge_grams: Decimal | None = None
    actual_purge_grams: Decimal | None = None
    cost_per_gram: Decimal | None = None


@dataclass(slots=True)
class ProductionRun:
    """A batch of prints with its items, materials, times and quality."""

    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    printer_name: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    estimated_print_time_hours: Decimal | None = None
    actual_print_time_hours: Decimal | None = None
    estimated_total_filament_grams: Decimal | None = None
    actual_total_filament_grams: Decimal | None = None
    quality_rating: int | None = None
    quality_notes: str | None = None
    notes: str | None = None
    items: list[RunItem] = field(default_factory=list)
    materials: list[RunMaterial] = field(default_factory=list)
    # Set when the run was made from a recipe (seed 001); the snapshot never changes afterwards.
    recipe_id: str | None = None
    name: str | None = None
    total_units: int | None = None
    unit_sale_price: int | None = None
    cost_snapshot: dict[str, Any] | None = None

    def item(self, item_id: str) -> RunItem:
        """One of the run's items, or 404."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise InventoryError(f"Item {item_id} not found in production run {self.id}", 404)

    def material(self, material_id: str) -> RunMaterial:
        """One of the run's materials, or 404."""
        for material in self.materials:
            if material.id == material_id:
                return material
        raise InventoryError(f"Material {material_id} not found in production run {self.id}", 404)

    @property
    def used_grams(self) -> Decimal | None:
        """The actual total: as given, else the sum of the materials once every one is weighed."""
        if self.actual_total_filament_grams is not None:
            return self.actual_total_filament_grams
        weighed = [m.actual_weight_grams for m in self.materials]
        if not weighed or None in weighed:
            return None
        return sum((grams for grams in weighed if grams is not None), Decimal(0))

    @property
    def print_hours(self) -> Decimal | None:
        """The actual time: as given, else from start to completion."""
        if self.actual_print_time_hours is not None:
            return self.actual_print_time_hours
        if self.started_at is not None and self.completed_at is not None:
            seconds = Decimal(int((self.completed_at - self.started_at).total_seconds()))
            return seconds / HOUR_SECONDS
        return None


# --- storage form ---------------------------------------------------------------------------


def dump(record: Any) -> Any:
    """A record as JSON-safe data (Decimals as text, instants as ISO 8601)."""
    if is_dataclass(record) and not isinstance(record, type):
        return {f.name: dump(getattr(record, f.name)) for f in fields(record)}
    if isinstance(record, Decimal):
        return str(record)
    if isinstance(record, datetime):
        return record.isoformat()
    if isinstance(record, list):
        return [dump(value) for value in record]
    return record


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def load[R](cls: type[R], data: Mapping[str, Any]) -> R:
    """A record from its storage form; unknown keys (from a newer minor version) are ignored."""
    hints = _hints(cls)  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            values[f.name] = _load_value(hints[f.name], data[f.name])
    return cls(**values)


def _load_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
        origin = get_origin(hint)
    if origin is list:
        (inner,) = get_args(hint)
        return [_load_value(inner, v) for v in value]
    if hint is Decimal:
        return to_decimal(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if is_dataclass(hint):
        return load(hint, value)  # type: ignore[arg-type]
    return value


# --- the books ------------------------------------------------------------------------------


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

    def body(self) -> dict[str, Any]:
        """The seed's `spools_updated` row."""
        return {
            "spool_id": self.spool_id,
            "previous_weight": quantity_out(self.previous),
            "new_weight": quantity_out(self.new),
            "deducted": quantity_out(self.deducted),
        }


@dataclass(frozen=True, slots=True)
class Completion:
    """A completed run and what its completion deducted."""

    run: ProductionRun
    deductions: list[Deduction]

    def body(self) -> dict[str, Any]:
        """The seed's answer to completing a run."""
        return {
            "id": self.run.id,
            "status": self.run.status,
            "completed_at": iso_z(self.run.completed_at),
            "inventory_updated": bool(self.deductions),
            "spools_updated": [deduction.body() for deduction in self.deductions],
        }


class Books:
    """Spools, products, recipes and runs, with every rule that keeps them consistent."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        """Empty books; `now` gives the current instant (UTC)."""
        self._now = now
        self.spools: dict[str, Spool] = {}
        self.products: dict[str, Product] = {}
        self.recipes: dict[str, Recipe] = {}
        self.runs: dict[str, ProductionRun] = {}
        # Grams deducted by completed runs, ever: deleting a run does not give filament back.
        self.material_used_grams = Decimal(0)

    def now(self) -> datetime:
        """The current instant, to the second (the seeds show seconds)."""
        return self._now().astimezone(UTC).replace(microsecond=0)

    # storage

    def to_stored(self) -> dict[str, Any]:
        """Everything, JSON-safe."""
        return {
            "spools": [dump(spool) for spool in self.spools.values()],
            "products": [dump(product) for product in self.products.values()],
            "recipes": [dump(recipe) for recipe in self.recipes.values()],
            "runs": [dump(run) for run in self.runs.values()],
            "material_used_grams": str(self.material_used_grams),
        }

    def restore(self, stored: Mapping[str, Any]) -> None:
        """Replace the books with stored ones."""
        self.spools = {s["id"]: load(Spool, s) for s in stored.get("spools", [])}
        self.products = {p["id"]: load(Product, p) for p in stored.get("products", [])}
        self.recipes = {r["id"]: load(Recipe, r) for r in stored.get("recipes", [])}
        self.runs = {r["id"]: load(ProductionRun, r) for r in stored.get("runs", [])}
        self.material_used_grams = to_decimal(stored.get("material_used_grams", "0"))

    # lookups

    def spool(self, spool_id: str) -> Spool:
        """A spool, or 404."""
        if (spool := self.spools.get(spool_id)) is None:
            raise InventoryError(f"Spool {spool_id} not found", 404)
        return spool

    def product(self, product_id: str) -> Product:
        """A product, or 404."""
        if (product := self.products.get(product_id)) is None:
            raise InventoryError(f"Product {product_id} not found", 404)
        return product

    def recipe(self, recipe_id: str) -> Recipe:
        """A recipe, or 404."""
        if (recipe := self.recipes.get(recipe_id)) is None:
            raise InventoryError(f"Recipe {recipe_id} not found", 404)
        return recipe

    def run(self, run_id: str) -> ProductionRun:
        """A production run, or 404."""
        if (run := self.runs.get(run_id)) is None:
            raise InventoryError(f"Production run {run_id} not found", 404)
        return run

    # spools

    def add_spool(self, data: Mapping[str, Any]) -> Spool:
        """A new spool; full unless `remaining_grams` says otherwise."""
        _one_price(data)
        net = data.get("net_weight_grams", Decimal(1000))
        now = self.now()
        spool = Spool(
            id=_new_id(),
            name=data["name"],
            material=data["material"],
            net_weight_grams=net,
            remaining_grams=data.get("remaining_grams", net),
            created_at=now,
            updated_at=now,
            color=data.get("color"),
            vendor=data.get("vendor"),
            empty_spool_weight_grams=data.get("empty_spool_weight_grams"),
            price=data.get("price"),
            explicit_cost_per_gram=data.get("cost_per_gram"),
        )
        self.spools[spool.id] = spool
        return spool

    def update_spool(self, spool_id: str, changes: Mapping[str, Any]) -> Spool:
        """Change a spool; a new price replaces a given cost per gram and the other way round."""
        spool = self.spool(spool_id)
        _one_price(changes)
        values = {key: value for key, value in changes.items() if key not in ("price", "cost_per_gram")}
        if "price" in changes:
            values["price"] = changes["price"]
            if changes["price"] is not None:
                values["explicit_cost_per_gram"] = None
        if "cost_per_gram" in changes:
            values["explicit_cost_per_gram"] = changes["cost_per_gram"]
            if changes["cost_per_gram"] is not None:
                values["price"] = None
        for key, value in values.items():
            setattr(spool, key, value)
        spool.updated_at = self.now()
        return spool

    def adjust_spool(
        self, spool_id: str, *, remaining_grams: Decimal | None = None, delta_grams: Decimal | None = None
    ) -> Spool:
        """Set what a spool holds, or add to it (a negative delta takes away); never below zero."""
        spool = self.spool(spool_id)
        if (remaining_grams is None) == (delta_grams is None):
            raise InventoryError("Give either remaining_grams or delta_grams.")
        new = remaining_grams if remaining_grams is not None else spool.remaining_grams + (delta_grams or 0)
        if new < 0:
            raise InventoryError(
                f"Spool {spool.name} holds {quantity_out(spool.remaining_grams)} g; it cannot go below 0 g."
            )
        spool.remaining_grams = new
        spool.updated_at = self.now()
        return spool

    def delete_spool(self, spool_id: str) -> None:
        """Forget a spool. Runs that name it keep its name; completing them is refused."""
        self.spool(spool_id)
        del self.spools[spool_id]

    # products

    def add_product(self, data: Mapping[str, Any]) -> Product:
        """A new product; a SKU names one product only."""
        self._check_sku(data.get("sku"), None)
        now = self.now()
        product = Product(
            id=_new_id(),
            name=data["name"],
            created_at=now,
            updated_at=now,
            sku=data.get("sku"),
            notes=data.get("notes"),
        )
        self.products[product.id] = product
        return product

    def update_product(self, product_id: str, changes: Mapping[str, Any]) -> Product:
        """Change a product."""
        product = self.product(product_id)
        self._check_sku(changes.get("sku"), product_id)
        for key, value in changes.items():
            setattr(product, key, value)
        product.updated_at = self.now()
        return product

    def delete_product(self, product_id: str) -> None:
        """Forget a product no recipe uses (runs keep the product's name)."""
        self.product(product_id)
        if users := [recipe.name for recipe in self.recipes.values() if recipe.product_id == product_id]:
            raise InventoryError(f"Recipes use this product: {', '.join(sorted(users))}.", 409)
        del self.products[product_id]

    def _check_sku(self, sku: str | None, own_id: str | None) -> None:
        if sku is None:
            return
        for product in self.products.values():
            if product.sku == sku and product.id != own_id:
                raise InventoryError(f"SKU {sku} is already product {product.name}.", 409)

    # recipes

    def add_recipe(self, data: Mapping[str, Any]) -> Recipe:
        """A new recipe for an existing product; named after it unless named."""
        product = self.product(data["product_id"])
        materials = self._recipe_materials(data.get("materials", []))
        now = self.now()
        recipe = Recipe(
            id=_new_id(),
            product_id=product.id,
            name=data.get("name") or product.name,
            created_at=now,
            updated_at=now,
            materials=materials,
            **{key: data[key] for key in _RECIPE_COSTS if key in data},
        )
        self.recipes[recipe.id] = recipe
        return recipe

    def update_recipe(self, recipe_id: str, changes: Mapping[str, Any]) -> Recipe:
        """Change a recipe; runs already made from it keep their snapshot."""
        recipe = self.recipe(recipe_id)
        values = dict(changes)
        if "product_id" in values:
            self.product(values["product_id"])
        if "materials" in values:
            values["materials"] = self._recipe_materials(values["materials"])
        for key, value in values.items():
            setattr(recipe, key, value)
        recipe.updated_at = self.now()
        return recipe

    def delete_recipe(self, recipe_id: str) -> None:
        """Forget a recipe (runs made from it keep their snapshot)."""
        self.recipe(recipe_id)
        del self.recipes[recipe_id]

    def _recipe_materials(self, lines: Iterable[Mapping[str, Any]]) -> list[RecipeMaterial]:
        materials = []
        for line in lines:
            if (spool_id := line.get("spool_id")) is not None:
                self.spool(spool_id)
            materials.append(RecipeMaterial(line["material"], line["grams_per_unit"], spool_id))
        return materials

    def pricing_spool(self, line: RecipeMaterial) -> Spool:
        """The spool a recipe line is priced (and printed) from.

        The spool the line names, else the priced spool of that material with the most filament left.
        """
        if line.spool_id is not None:
            spool = self.spools.get(line.spool_id)
            if spool is None:
                raise InventoryError(
                    f"The recipe's spool {line.spool_id} for {line.material} no longer exists."
                )
            if spool.cost_per_gram is None:
                raise InventoryError(f"Spool {spool.name} has no price or cost per gram.")
            return spool
        candidates = [
            spool
            for spool in self.spools.values()
            if spool.material.casefold() == line.material.casefold() and spool.cost_per_gram is not None
        ]
        if not candidates:
            raise InventoryError(f"No spool of {line.material} with a price to cost the recipe with.")
        return max(candidates, key=lambda spool: (spool.remaining_grams, spool.created_at))

    # production runs

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
        run = ProductionRun(id=_new_id(), status=PENDING, created_at=now, updated_at=now)
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
            id=_new_id(),
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
            id=_new_id(), spool_id=spool.id, spool_name=spool.name, cost_per_gram=spool.cost_per_gram
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
                needed[material.spool_id] += material.actual_weight_grams
        plan = []
        for spool_id, grams in needed.items():
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
            id=_new_id(),
            status=PENDING,
            created_at=now,
            updated_at=now,
            estimated_print_time_hours=recipe.print_hours_per_unit * units,
            estimated_total_filament_grams=sum(grams, Decimal(0)),
            notes=f"From recipe {recipe.name}",
            items=[
                RunItem(
                    id=_new_id(),
                    product_id=product.id,
                    product_name=product.name,
                    quantity=units,
                    estimated_material_cost=from_cents(snapshot["materials"]),
                    estimated_total_cost=from_cents(snapshot["total"]),
                )
            ],
            materials=[
                RunMaterial(
                    id=_new_id(),
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


_RECIPE_COSTS: Final = (
    "print_hours_per_unit",
    "labour_cost_per_unit",
    "packaging_cost_per_unit",
    "overhead_cost_per_unit",
    "machine_cost_per_hour",
)
_ITEM_EXTRA: Final = (
    "successful_quantity",
    "failed_quantity",
    "estimated_material_cost",
    "estimated_total_cost",
)


def _one_price(data: Mapping[str, Any]) -> None:
    if data.get("price") is not None and data.get("cost_per_gram") is not None:
        raise InventoryError("Give the spool's price or its cost per gram, not both.")


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


# --- bodies ---------------------------------------------------------------------------------


def spool_body(spool: Spool, *, currency: str, low_threshold: Decimal) -> dict[str, Any]:
    """A spool in the decimal API."""
    return {
        "id": spool.id,
        "name": spool.name,
        "material": spool.material,
        "color": spool.color,
        "vendor": spool.vendor,
        "net_weight_grams": quantity_out(spool.net_weight_grams),
        "remaining_grams": quantity_out(spool.remaining_grams),
        "remaining_percent": spool.remaining_percent,
        "empty_spool_weight_grams": quantity_out(spool.empty_spool_weight_grams),
        "price": money_out(spool.price),
        "cost_per_gram": rate_out(spool.cost_per_gram),
        "currency": currency,
        "low": spool.remaining_grams < low_threshold,
        "created_at": iso_z(spool.created_at),
        "updated_at": iso_z(spool.updated_at),
    }


def product_body(product: Product) -> dict[str, Any]:
    """A product."""
    return {
        "id": product.id,
        "name": product.name,
        "sku": product.sku,
        "notes": product.notes,
        "created_at": iso_z(product.created_at),
        "updated_at": iso_z(product.updated_at),
    }


def recipe_body(recipe: Recipe, *, currency: str) -> dict[str, Any]:
    """A recipe in the cents API."""
    return {
        "id": recipe.id,
        "product_id": recipe.product_id,
        "name": recipe.name,
        "materials": [
            {"material": m.material, "grams_per_unit": quantity_out(m.grams_per_unit), "spool_id": m.spool_id}
            for m in recipe.materials
        ],
        "print_hours_per_unit": hours_out(recipe.print_hours_per_unit),
        "labour_cost_per_unit": recipe.labour_cost_per_unit,
        "packaging_cost_per_unit": recipe.packaging_cost_per_unit,
        "overhead_cost_per_unit": recipe.overhead_cost_per_unit,
        "machine_cost_per_hour": recipe.machine_cost_per_hour,
        "currency": currency,
        "created_at": iso_z(recipe.created_at),
        "updated_at": iso_z(recipe.updated_at),
    }


def item_body(item: RunItem) -> dict[str, Any]:
    """A run's item, as the seed shows it."""
    return {
        "id": item.id,
        "product_id": item.product_id,
        "product_name": item.product_name,
        "quantity": item.quantity,
        "successful_quantity": item.successful_quantity,
        "failed_quantity": item.failed_quantity,
        "estimated_material_cost": money_out(item.estimated_material_cost),
        "estimated_total_cost": money_out(item.estimated_total_cost),
    }


def material_body(material: RunMaterial) -> dict[str, Any]:
    """A run's material, as the seed shows it."""
    return {
        "id": material.id,
        "spool_id": material.spool_id,
        "spool_name": material.spool_name,
        "estimated_weight_grams": quantity_out(material.estimated_weight_grams),
        "actual_weight_grams": quantity_out(material.actual_weight_grams),
        "spool_weight_before_grams": quantity_out(material.spool_weight_before_grams),
        "spool_weight_after_grams": quantity_out(material.spool_weight_after_grams),
        "estimated_purge_grams": quantity_out(material.estimated_purge_grams),
        "actual_purge_grams": quantity_out(material.actual_purge_grams),
        "cost_per_gram": rate_out(material.cost_per_gram),
    }


def run_summary(run: ProductionRun) -> dict[str, Any]:
    """A run as the seed's list shows it."""
    return {
        "id": run.id,
        "status": run.status,
        "printer_name": run.printer_name,
        "started_at": iso_z(run.started_at),
        "completed_at": iso_z(run.completed_at),
        "estimated_print_time_hours": hours_out(run.estimated_print_time_hours),
        "actual_print_time_hours": hours_out(run.actual_print_time_hours),
        "estimated_total_filament_grams": quantity_out(run.estimated_total_filament_grams),
        "actual_total_filament_grams": quantity_out(run.actual_total_filament_grams),
        "quality_rating": run.quality_rating,
        "created_at": iso_z(run.created_at),
    }


def run_body(run: ProductionRun) -> dict[str, Any]:
    """A run with its items, materials and variance."""
    return {
        **run_summary(run),
        "updated_at": iso_z(run.updated_at),
        "notes": run.notes,
        "quality_notes": run.quality_notes,
        "recipe_id": run.recipe_id,
        "items": [item_body(item) for item in run.items],
        "materials": [material_body(material) for material in run.materials],
        "variance_analysis": variance_analysis(run),
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


def recipe_run_body(run: ProductionRun, *, business_id: str) -> dict[str, Any]:
    """A run from a recipe as DayZero's `RunResponse` (money in integer cents)."""
    return {
        "id": run.id,
        "business_id": business_id,
        "recipe_id": run.recipe_id,
        "name": run.name,
        "total_units": run.total_units,
        "unit_sale_price": run.unit_sale_price,
        "status": run.status,
        "cost_snapshot": run.cost_snapshot,
        "created_at": iso_z(run.created_at),
        "updated_at": iso_z(run.updated_at),
    }
