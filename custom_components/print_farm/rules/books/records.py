"""The books' records: spools, products, recipes and production runs, and the error they refuse with.

A production run (seed 000) has items (products and quantities) and materials (spools with the
estimated and actual grams). A run created from a recipe (seed 001) is the same kind of run, with
a cost snapshot in integer cents frozen at creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
import uuid

from .money import tenth

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


def new_id() -> str:
    """A new record id."""
    return str(uuid.uuid4())


def iso_z(moment: datetime | None) -> str | None:
    """An instant as the seeds write it: 2024-01-15T10:00:00Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    # The Bambu RFID tray_uuid of the spool (never the tag_uid: it changes with the side read), and
    # where it is placed: a printer's serial and the tray's slot code (254/255 the external holder).
    tray_uuid: str | None = None
    printer_serial: str | None = None
    tray: int | None = None

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
    # Of the actual grams, those the run's jobs already took from the spool when they ended.
    deducted_grams: Decimal | None = None


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
    # The results of the print jobs that belong to the run.
    jobs_succeeded: int = 0
    jobs_failed: int = 0

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
