"""The production-runs API (seed 000), with the spools and products it names: decimal currency.

/api/print_farm/v1/production-runs..., /v1/spools..., /v1/products...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..const import DOMAIN
from ..rules.books.costing import variance_analysis
from ..rules.books.money import hours_out, money_out, quantity_out, rate_out
from ..rules.books.records import (
    InventoryError,
    Product,
    ProductionRun,
    RunItem,
    RunMaterial,
    Spool,
    iso_z,
)
from ..rules.books.runs import Books, Completion, Deduction
from ..rules.books.schema import (
    DEFAULT_NET_GRAMS,
    ITEM_CREATE,
    ITEM_PATCH,
    MATERIAL_CREATE,
    MATERIAL_PATCH,
    PRODUCT_CREATE,
    PRODUCT_PATCH,
    RUN_CREATE,
    RUN_PATCH,
    RUN_STATUSES,
    SPOOL_CREATE,
    SPOOL_PATCH,
)
from ..runtime.production import ProductionManager
from .base import API_PREFIX, ApiError, FarmView, Operation, operation, whole_number

V1 = f"{API_PREFIX}/v1"
RUNS = f"{V1}/production-runs"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


# --- bodies -----------------------------------------------------------------------------------


def spool_body(spool: Spool, production: ProductionManager) -> dict[str, Any]:
    """A spool in the decimal API, in the farm's currency and with its low-spool threshold."""
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
        "currency": production.currency,
        "low": spool.remaining_grams < production.low_threshold,
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


class BooksView(FarmView):
    """A view of the production books: their errors become the seeds' error bodies."""

    def production(self) -> ProductionManager:
        """The farm's books."""
        return self.farm().production

    def read[T](self, query: Callable[[Books], T]) -> T:
        """Look something up (404 when it does not exist)."""
        try:
            return query(self.production().books)
        except InventoryError as err:
            raise ApiError(err.status, str(err), **err.extra) from None

    async def change[T](self, request: web.Request, operation: Callable[[Books], T]) -> T:
        """Change the books, saved before the answer; a refusal changes nothing."""
        try:
            return await self.production().async_change(operation, self.context(request))
        except InventoryError as err:
            raise ApiError(err.status, str(err), **err.extra) from None


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
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """A page of runs."""
        query = request.query
        skip = query_int(query, "skip", 0, 0, 1_000_000_000)
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
        )
    )
    async def patch(self, request: web.Request, run_id: str, body: dict[str, Any]) -> web.Response:
        """Change it."""
        return self.json(run_body(await self.change(request, lambda books: books.update_run(run_id, body))))

    @operation(
        Operation(
            summary="Delete a run (a completed run's deductions stay)",
            responses={200: "Deleted", **_RUN},
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
        )
    )
    async def patch(
        self, request: web.Request, run_id: str, item_id: str, body: dict[str, Any]
    ) -> web.Response:
        """Change it."""
        return self.json(
            run_item_body(await self.change(request, lambda books: books.update_item(run_id, item_id, body)))
        )

    @operation(Operation(summary="Remove an item", responses={200: "Removed", 404: "Unknown run or item"}))
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
        )
    )
    async def post(self, request: web.Request, run_id: str) -> web.Response:
        """Complete it."""
        return self.json(
            completion_body(await self.change(request, lambda books: books.complete_run(run_id)))
        )


def _check_weights(net: Decimal, remaining: Decimal) -> None:
    """A spool holds at most its net weight: a body that says otherwise is refused (400, nothing written)."""
    if remaining > net:
        raise InventoryError(
            f"remaining_grams ({quantity_out(remaining)}) is more than net_weight_grams"
            f" ({quantity_out(net)}): a spool holds at most its net weight."
        )


class SpoolsView(BooksView):
    """/v1/spools."""

    url = f"{V1}/spools"
    name = f"api:{DOMAIN}:v1:spools"

    @operation(Operation(summary="Every spool", admin=False, responses={200: "The spools"}))
    async def get(self, request: web.Request) -> web.Response:
        """Every spool."""
        production = self.production()
        spools = [spool_body(spool, production) for spool in production.books.spools.values()]
        return self.json({"items": spools, "total": len(spools)})

    @operation(
        Operation(
            summary="Add a spool (price or cost_per_gram in currency units)",
            body=SPOOL_CREATE,
            responses={201: "The spool", 400: "Invalid body, or remaining_grams above net_weight_grams"},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Add it."""

        def add(books: Books) -> Spool:
            net = body.get("net_weight_grams", DEFAULT_NET_GRAMS)
            _check_weights(net, body.get("remaining_grams", net))
            return books.add_spool(body)

        spool = await self.change(request, add)
        return self.json(spool_body(spool, self.production()), status_code=201)


class SpoolView(BooksView):
    """/v1/spools/{spool_id}."""

    url = f"{V1}/spools/{{spool_id}}"
    name = f"api:{DOMAIN}:v1:spool"

    @operation(Operation(summary="A spool", admin=False, responses={200: "The spool", 404: "Unknown spool"}))
    async def get(self, request: web.Request, spool_id: str) -> web.Response:
        """The spool."""
        return self.json(spool_body(self.read(lambda books: books.spool(spool_id)), self.production()))

    @operation(
        Operation(
            summary="Change a spool (remaining_grams included)",
            body=SPOOL_PATCH,
            responses={
                200: "The spool",
                400: "Invalid body, or remaining_grams above net_weight_grams",
                404: "Unknown spool",
            },
        )
    )
    async def patch(self, request: web.Request, spool_id: str, body: dict[str, Any]) -> web.Response:
        """Change it."""

        def update(books: Books) -> Spool:
            spool = books.spool(spool_id)
            if body.keys() & {"net_weight_grams", "remaining_grams"}:
                _check_weights(
                    body.get("net_weight_grams", spool.net_weight_grams),
                    body.get("remaining_grams", spool.remaining_grams),
                )
            return books.update_spool(spool_id, body)

        spool = await self.change(request, update)
        return self.json(spool_body(spool, self.production()))

    @operation(
        Operation(summary="Delete a spool (and its device)", responses={200: "Deleted", 404: "Unknown spool"})
    )
    async def delete(self, request: web.Request, spool_id: str) -> web.Response:
        """Delete it."""
        await self.change(request, lambda books: books.delete_spool(spool_id))
        return self.json({"message": "Spool deleted"})


class ProductsView(BooksView):
    """/v1/products."""

    url = f"{V1}/products"
    name = f"api:{DOMAIN}:v1:products"

    @operation(Operation(summary="Every product", admin=False, responses={200: "The products"}))
    async def get(self, request: web.Request) -> web.Response:
        """Every product."""
        products = [product_body(product) for product in self.production().books.products.values()]
        return self.json({"items": products, "total": len(products)})

    @operation(
        Operation(
            summary="Add a product",
            body=PRODUCT_CREATE,
            responses={201: "The product", 400: "Invalid body", 409: "SKU taken"},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Add it."""
        product = await self.change(request, lambda books: books.add_product(body))
        return self.json(product_body(product), status_code=201)


class ProductView(BooksView):
    """/v1/products/{product_id}."""

    url = f"{V1}/products/{{product_id}}"
    name = f"api:{DOMAIN}:v1:product"

    @operation(
        Operation(summary="A product", admin=False, responses={200: "The product", 404: "Unknown product"})
    )
    async def get(self, request: web.Request, product_id: str) -> web.Response:
        """The product."""
        return self.json(product_body(self.read(lambda books: books.product(product_id))))

    @operation(
        Operation(
            summary="Change a product",
            body=PRODUCT_PATCH,
            responses={200: "The product", 400: "Invalid body", 404: "Unknown product", 409: "SKU taken"},
        )
    )
    async def patch(self, request: web.Request, product_id: str, body: dict[str, Any]) -> web.Response:
        """Change it."""
        return self.json(
            product_body(await self.change(request, lambda books: books.update_product(product_id, body)))
        )

    @operation(
        Operation(
            summary="Delete a product no recipe uses",
            responses={200: "Deleted", 404: "Unknown product", 409: "A recipe uses it"},
        )
    )
    async def delete(self, request: web.Request, product_id: str) -> web.Response:
        """Delete it."""
        await self.change(request, lambda books: books.delete_product(product_id))
        return self.json({"message": "Product deleted"})


PRODUCTION_VIEWS: list[type[FarmView]] = [
    ProductionRunsView,
    ProductionRunView,
    RunItemsView,
    RunItemView,
    RunMaterialsView,
    RunMaterialView,
    RunCompleteView,
    SpoolsView,
    SpoolView,
    ProductsView,
    ProductView,
]
