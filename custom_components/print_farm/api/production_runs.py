"""The production-runs API (seed 000), with the spools and products it names: decimal currency.

/api/print_farm/v1/production-runs...; the spools and products (/v1/spools..., /v1/products...)
are in `catalogue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..const import DOMAIN
from ..rules.books.costing import variance_analysis
from ..rules.books.money import hours_out, money_out, quantity_out, rate_out
from ..rules.books.records import (
    ProductionRun,
    RunItem,
    RunMaterial,
    iso_z,
)
from ..rules.books.runs import Completion, Deduction
from ..rules.books.schema import (
    ITEM_CREATE,
    ITEM_PATCH,
    MATERIAL_CREATE,
    MATERIAL_PATCH,
    RUN_CREATE,
    RUN_PATCH,
    RUN_STATUSES,
)
from .base import API_PREFIX, ApiError, FarmView, Operation, operation, whole_number
from .catalogue import CATALOGUE_VIEWS, BooksView, spool_body
from .shapes import BOOLEAN, INTEGER, MESSAGE, NUMBER, STRING, array, extend, nullable, one_of, shape

# spool_body moved to `catalogue`; it is still exported from here for the actions that show a spool.
__all__ = ["PRODUCTION_VIEWS", "completion_body", "material_body", "run_body", "spool_body"]

V1 = f"{API_PREFIX}/v1"
RUNS = f"{V1}/production-runs"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_SKIP = 1_000_000_000


# --- bodies, each with its JSON Schema ---------------------------------------------------------

RUN_ITEM_BODY = shape(
    {
        "id": STRING,
        "product_id": STRING,
        "product_name": STRING,
        "quantity": INTEGER,
        "successful_quantity": INTEGER,
        "failed_quantity": INTEGER,
        "estimated_material_cost": nullable(NUMBER),
        "estimated_total_cost": nullable(NUMBER),
    }
)
MATERIAL_BODY = shape(
    {
        "id": STRING,
        "spool_id": STRING,
        "spool_name": STRING,
        **dict.fromkeys(
            (
                "estimated_weight_grams",
                "actual_weight_grams",
                "spool_weight_before_grams",
                "spool_weight_after_grams",
                "estimated_purge_grams",
                "actual_purge_grams",
                "cost_per_gram",
                "deducted_grams",
            ),
            nullable(NUMBER),
        ),
    }
)
RUN_SUMMARY_BODY = shape(
    {
        "id": STRING,
        "status": one_of(RUN_STATUSES),
        "printer_name": nullable(STRING),
        "started_at": nullable(STRING),
        "completed_at": nullable(STRING),
        "estimated_print_time_hours": nullable(NUMBER),
        "actual_print_time_hours": nullable(NUMBER),
        "estimated_total_filament_grams": nullable(NUMBER),
        "actual_total_filament_grams": nullable(NUMBER),
        "quality_rating": nullable(INTEGER),
        "created_at": STRING,
    }
)
# variance_analysis(run): actual against estimated, None where a side is not known.
_VARIANCE = shape(
    dict.fromkeys(
        (
            "material_variance_grams",
            "material_variance_percent",
            "time_variance_hours",
            "time_variance_percent",
        ),
        nullable(NUMBER),
    )
)
RUN_BODY = extend(
    RUN_SUMMARY_BODY,
    updated_at=STRING,
    notes=nullable(STRING),
    quality_notes=nullable(STRING),
    recipe_id=nullable(STRING),
    items=array(RUN_ITEM_BODY),
    materials=array(MATERIAL_BODY),
    variance_analysis=_VARIANCE,
    jobs_succeeded=INTEGER,
    jobs_failed=INTEGER,
)
_DEDUCTION_BODY = shape(
    dict.fromkeys(("previous_weight", "new_weight", "deducted"), NUMBER) | {"spool_id": STRING}
)
COMPLETION_BODY = shape(
    {
        "id": STRING,
        "status": one_of(RUN_STATUSES),
        "completed_at": nullable(STRING),
        "inventory_updated": BOOLEAN,
        "spools_updated": array(_DEDUCTION_BODY),
    }
)


def run_item_body(item: RunItem) -> dict[str, Any]:
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
        # An extra of ours: the grams the run's print jobs already took from the spool when they
        # ended; completing the run deducts only the rest.
        "deducted_grams": quantity_out(material.deducted_grams),
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
        "items": [run_item_body(item) for item in run.items],
        "materials": [material_body(material) for material in run.materials],
        "variance_analysis": variance_analysis(run),
        # Extras of ours: the results of the print jobs that belong to the run.
        "jobs_succeeded": run.jobs_succeeded,
        "jobs_failed": run.jobs_failed,
    }


def deduction_body(deduction: Deduction) -> dict[str, Any]:
    """The seed's `spools_updated` row."""
    return {
        "spool_id": deduction.spool_id,
        "previous_weight": quantity_out(deduction.previous),
        "new_weight": quantity_out(deduction.new),
        "deducted": quantity_out(deduction.deducted),
    }


def completion_body(completion: Completion) -> dict[str, Any]:
    """The seed's answer to completing a run."""
    return {
        "id": completion.run.id,
        "status": completion.run.status,
        "completed_at": iso_z(completion.run.completed_at),
        "inventory_updated": bool(completion.deductions),
        "spools_updated": [deduction_body(deduction) for deduction in completion.deductions],
    }


def query_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in range, or 400."""
    raw = query.get(name)
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None:
        raise ApiError(400, f"{name} must be a whole number written in digits 0-9.")
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}.")
    return value


_RUN = {404: "Unknown production run"}
_CHANGED = {400: "Invalid body", 404: "Unknown production run, spool or product"}


class ProductionRunsView(BooksView):
    """/v1/production-runs."""

    url = RUNS
    name = f"api:{DOMAIN}:v1:production_runs"

    @operation(
        Operation(
            summary="Production runs, newest first; ?skip, ?limit (1-100, default 20), ?status, ?printer_name",
            admin=False,
            responses={200: "A page of runs and the total that match", 400: "Bad filter"},
            returns={
                200: shape(
                    {"items": array(RUN_SUMMARY_BODY), "total": INTEGER, "skip": INTEGER, "limit": INTEGER}
                )
            },
            query={
                "skip": {"type": "integer", "minimum": 0, "maximum": MAX_SKIP},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                "status": one_of(RUN_STATUSES),
                "printer_name": STRING,
            },
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """A page of runs."""
        query = request.query
        skip = query_int(query, "skip", 0, 0, MAX_SKIP)
        limit = query_int(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        status = query.get("status")
        if status is not None and status not in RUN_STATUSES:
            raise ApiError(400, f"status is one of {', '.join(RUN_STATUSES)}.")
        runs, total = self.read(
            lambda books: books.list_runs(
                skip=skip, limit=limit, status=status, printer_name=query.get("printer_name")
            )
        )
        return self.json(
            {"items": [run_summary(run) for run in runs], "total": total, "skip": skip, "limit": limit}
        )

    @operation(
        Operation(
            summary="Create a production run (any status but completed)",
            body=RUN_CREATE,
            responses={201: "The run", 400: "Invalid body"},
            returns={201: RUN_BODY},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Create it."""
        run = await self.change(request, lambda books: books.add_run(body))
        return self.json(run_body(run), status_code=201)


class ProductionRunView(BooksView):
    """/v1/production-runs/{run_id}."""

    url = f"{RUNS}/{{run_id}}"
    name = f"api:{DOMAIN}:v1:production_run"

    @operation(
        Operation(
            summary="A production run with its items, materials and variance_analysis",
            admin=False,
            responses={200: "The run", **_RUN},
            returns={200: RUN_BODY},
        )
    )
    async def get(self, request: web.Request, run_id: str) -> web.Response:
        """The run."""
        return self.json(run_body(self.read(lambda books: books.run(run_id))))

    @operation(
        Operation(
            summary="Change a run; status completed completes it (deducts its materials, all or none)",
            body=RUN_PATCH,
            responses={200: "The run", 400: "Invalid body", 409: "Completion refused", **_RUN},
            returns={200: RUN_BODY},
        )
    )
    async def patch(self, request: web.Request, run_id: str, body: dict[str, Any]) -> web.Response:
        """Change it."""
        return self.json(run_body(await self.change(request, lambda books: books.update_run(run_id, body))))

    @operation(
        Operation(
            summary="Delete a run (a completed run's deductions stay)",
            responses={200: "Deleted", **_RUN},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, run_id: str) -> web.Response:
        """Delete it."""
        await self.change(request, lambda books: books.delete_run(run_id))
        return self.json({"message": "Production run deleted"})


class RunItemsView(BooksView):
    """/v1/production-runs/{run_id}/items."""

    url = f"{RUNS}/{{run_id}}/items"
    name = f"api:{DOMAIN}:v1:production_run_items"

    @operation(
        Operation(
            summary="Add a product to a run",
            body=ITEM_CREATE,
            responses={201: "The item", **_CHANGED},
            returns={201: RUN_ITEM_BODY},
        )
    )
    async def post(self, request: web.Request, run_id: str, body: dict[str, Any]) -> web.Response:
        """Add it."""
        item = await self.change(request, lambda books: books.add_item(run_id, body))
        return self.json(run_item_body(item), status_code=201)


class RunItemView(BooksView):
    """/v1/production-runs/{run_id}/items/{item_id}."""

    url = f"{RUNS}/{{run_id}}/items/{{item_id}}"
    name = f"api:{DOMAIN}:v1:production_run_item"

    @operation(
        Operation(
            summary="Change an item (successful and failed quantities)",
            body=ITEM_PATCH,
            responses={200: "The item", **_CHANGED},
            returns={200: RUN_ITEM_BODY},
        )
    )
    async def patch(
        self, request: web.Request, run_id: str, item_id: str, body: dict[str, Any]
    ) -> web.Response:
        """Change it."""
        return self.json(
            run_item_body(await self.change(request, lambda books: books.update_item(run_id, item_id, body)))
        )

    @operation(
        Operation(
            summary="Remove an item",
            responses={200: "Removed", 404: "Unknown run or item"},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, run_id: str, item_id: str) -> web.Response:
        """Remove it."""
        await self.change(request, lambda books: books.delete_item(run_id, item_id))
        return self.json({"message": "Item removed"})


class RunMaterialsView(BooksView):
    """/v1/production-runs/{run_id}/materials."""

    url = f"{RUNS}/{{run_id}}/materials"
    name = f"api:{DOMAIN}:v1:production_run_materials"

    @operation(
        Operation(
            summary="Add filament from a spool to a run",
            body=MATERIAL_CREATE,
            responses={201: "The material", 409: "The run is completed", **_CHANGED},
            returns={201: MATERIAL_BODY},
        )
    )
    async def post(self, request: web.Request, run_id: str, body: dict[str, Any]) -> web.Response:
        """Add it."""
        material = await self.change(request, lambda books: books.add_material(run_id, body))
        return self.json(material_body(material), status_code=201)


class RunMaterialView(BooksView):
    """/v1/production-runs/{run_id}/materials/{material_id}."""

    url = f"{RUNS}/{{run_id}}/materials/{{material_id}}"
    name = f"api:{DOMAIN}:v1:production_run_material"

    @operation(
        Operation(
            summary="Record usage: spool weights before and after give actual_weight_grams",
            body=MATERIAL_PATCH,
            responses={200: "The material", 409: "The run is completed", **_CHANGED},
            returns={200: MATERIAL_BODY},
        )
    )
    async def patch(
        self, request: web.Request, run_id: str, material_id: str, body: dict[str, Any]
    ) -> web.Response:
        """Change it."""
        material = await self.change(request, lambda books: books.update_material(run_id, material_id, body))
        return self.json(material_body(material))

    @operation(
        Operation(
            summary="Remove a material",
            responses={200: "Removed", 404: "Unknown run or material", 409: "The run is completed"},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, run_id: str, material_id: str) -> web.Response:
        """Remove it."""
        await self.change(request, lambda books: books.delete_material(run_id, material_id))
        return self.json({"message": "Material removed"})


class RunCompleteView(BooksView):
    """/v1/production-runs/{run_id}/complete."""

    url = f"{RUNS}/{{run_id}}/complete"
    name = f"api:{DOMAIN}:v1:production_run_complete"

    @operation(
        Operation(
            summary="Complete a run: deduct every material from its spool (all or none), compute variance",
            responses={
                200: "The completion: inventory_updated, spools_updated",
                404: "Unknown run",
                409: "Already completed, not completable, a material without usage, or a spool short",
            },
            returns={200: COMPLETION_BODY},
        )
    )
    async def post(self, request: web.Request, run_id: str) -> web.Response:
        """Complete it."""
        return self.json(
            completion_body(await self.change(request, lambda books: books.complete_run(run_id)))
        )


PRODUCTION_VIEWS: list[type[FarmView]] = [
    ProductionRunsView,
    ProductionRunView,
    RunItemsView,
    RunItemView,
    RunMaterialsView,
    RunMaterialView,
    RunCompleteView,
    *CATALOGUE_VIEWS,
]
