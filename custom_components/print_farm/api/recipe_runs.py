"""The DayZero inventory API (seed 001) and the recipes it costs from: integer cents.

/api/print_farm/v1/inventory/production/runs... and /v1/inventory/recipes... A body that does not
fit the schema is a 422, as in the seed; `x-business-id`, when sent, must be the farm's entry id.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..const import DOMAIN
from ..rules.books.money import hours_out, quantity_out
from ..rules.books.records import ProductionRun, Recipe, iso_z
from ..rules.books.schema import RECIPE_CREATE, RECIPE_PATCH, RECIPE_RUN_CREATE
from .base import API_PREFIX, ApiError, FarmView, Operation, operation
from .catalogue import BooksView
from .shapes import INTEGER, MESSAGE, NUMBER, STRING, array, nullable, shape

INVENTORY = f"{API_PREFIX}/v1/inventory"
BUSINESS_HEADER = "x-business-id"
_BUSINESS = {404: "Unknown business (x-business-id) or resource"}


RECIPE_BODY = shape(
    {
        "id": STRING,
        "product_id": STRING,
        "name": STRING,
        "materials": array(
            shape({"material": STRING, "grams_per_unit": NUMBER, "spool_id": nullable(STRING)})
        ),
        "print_hours_per_unit": NUMBER,
        "labour_cost_per_unit": INTEGER,
        "packaging_cost_per_unit": INTEGER,
        "overhead_cost_per_unit": INTEGER,
        "machine_cost_per_hour": INTEGER,
        "currency": STRING,
        "created_at": STRING,
        "updated_at": STRING,
    }
)
# rules.books.costing.cost_snapshot(): every amount in integer cents.
_COST_LINE = shape(
    {
        "material": STRING,
        "spool_id": STRING,
        "spool_name": STRING,
        "grams": NUMBER,
        "cost_per_gram": NUMBER,
        "cost": INTEGER,
    }
)
_COST_SNAPSHOT = shape(
    {
        "currency": STRING,
        "units": INTEGER,
        "materials": INTEGER,
        "machine_time": INTEGER,
        "machine_hours": NUMBER,
        "labour": INTEGER,
        "packaging": INTEGER,
        "overhead": INTEGER,
        "total": INTEGER,
        "per_unit": INTEGER,
        "unit_sale_price": INTEGER,
        "sale_total": INTEGER,
        "margin_per_unit": INTEGER,
        "margin_total": INTEGER,
        "material_lines": array(_COST_LINE),
    }
)
RECIPE_RUN_BODY = shape(
    {
        "id": STRING,
        "business_id": STRING,
        "recipe_id": STRING,
        "name": nullable(STRING),
        "total_units": INTEGER,
        "unit_sale_price": INTEGER,
        "status": STRING,
        "cost_snapshot": _COST_SNAPSHOT,
        "created_at": STRING,
        "updated_at": STRING,
    }
)


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


class InventoryView(BooksView):
    """A view of the DayZero API: the farm is the business."""

    def check_request(self, request: web.Request) -> None:
        """A wrong `x-business-id` is a 404 whatever the body (checked before every operation)."""
        self.business_id(request)

    def business_id(self, request: web.Request) -> str:
        """The farm's entry id; a different `x-business-id` header is a 404."""
        farm_id = self.farm().entry.entry_id
        sent = request.headers.get(BUSINESS_HEADER)
        if sent is not None and sent.strip() != farm_id:
            raise ApiError(404, f"Business {sent.strip()} not found")
        return farm_id


class RecipeRunsView(InventoryView):
    """/v1/inventory/production/runs."""

    url = f"{INVENTORY}/production/runs"
    name = f"api:{DOMAIN}:v1:inventory:runs"

    @operation(
        Operation(
            summary="Runs created from recipes, newest first",
            admin=False,
            responses={200: "The runs", **_BUSINESS},
            returns={200: array(RECIPE_RUN_BODY)},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Every run made from a recipe."""
        business_id = self.business_id(request)
        runs = self.read(lambda books: books.recipe_runs())
        return self.json([recipe_run_body(run, business_id=business_id) for run in runs])

    @operation(
        Operation(
            summary="Create a production run from a recipe; costs are computed now and frozen (cents)",
            body=RECIPE_RUN_CREATE,
            invalid_status=422,
            responses={
                201: "RunResponse with cost_snapshot",
                400: "Invalid input (units below 1, a material without a priced spool)",
                404: "Unknown recipe or business",
                422: "Body does not fit RunCreateRequest",
            },
            returns={201: RECIPE_RUN_BODY},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Create it."""
        business_id = self.business_id(request)
        currency = self.production().currency
        run = await self.change(request, lambda books: books.add_recipe_run(body, currency=currency))
        return self.json(recipe_run_body(run, business_id=business_id), status_code=201)


class RecipeRunView(InventoryView):
    """/v1/inventory/production/runs/{run_id}."""

    url = f"{INVENTORY}/production/runs/{{run_id}}"
    name = f"api:{DOMAIN}:v1:inventory:run"

    @operation(
        Operation(
            summary="A run created from a recipe",
            admin=False,
            responses={200: "RunResponse", **_BUSINESS},
            returns={200: RECIPE_RUN_BODY},
        )
    )
    async def get(self, request: web.Request, run_id: str) -> web.Response:
        """The run."""
        business_id = self.business_id(request)
        run = self.read(lambda books: books.run(run_id))
        if run.recipe_id is None:
            raise ApiError(404, f"Production run {run_id} was not made from a recipe")
        return self.json(recipe_run_body(run, business_id=business_id))


class RecipesView(InventoryView):
    """/v1/inventory/recipes."""

    url = f"{INVENTORY}/recipes"
    name = f"api:{DOMAIN}:v1:inventory:recipes"

    @operation(
        Operation(
            summary="Every recipe",
            admin=False,
            responses={200: "The recipes", **_BUSINESS},
            returns={200: array(RECIPE_BODY)},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Every recipe."""
        production = self.production()
        return self.json(
            [
                recipe_body(recipe, currency=production.currency)
                for recipe in production.books.recipes.values()
            ]
        )

    @operation(
        Operation(
            summary="Add a recipe: a product's materials per unit, print hours, costs in cents",
            body=RECIPE_CREATE,
            invalid_status=422,
            responses={201: "The recipe", 404: "Unknown product, spool or business", 422: "Invalid body"},
            returns={201: RECIPE_BODY},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Add it."""
        recipe = await self.change(request, lambda books: books.add_recipe(body))
        return self.json(recipe_body(recipe, currency=self.production().currency), status_code=201)


class RecipeView(InventoryView):
    """/v1/inventory/recipes/{recipe_id}."""

    url = f"{INVENTORY}/recipes/{{recipe_id}}"
    name = f"api:{DOMAIN}:v1:inventory:recipe"

    @operation(
        Operation(
            summary="A recipe",
            admin=False,
            responses={200: "The recipe", **_BUSINESS},
            returns={200: RECIPE_BODY},
        )
    )
    async def get(self, request: web.Request, recipe_id: str) -> web.Response:
        """The recipe."""
        recipe = self.read(lambda books: books.recipe(recipe_id))
        return self.json(recipe_body(recipe, currency=self.production().currency))

    @operation(
        Operation(
            summary="Change a recipe (runs already made keep their snapshot)",
            body=RECIPE_PATCH,
            invalid_status=422,
            responses={
                200: "The recipe",
                404: "Unknown recipe, product, spool or business",
                422: "Invalid body",
            },
            returns={200: RECIPE_BODY},
        )
    )
    async def patch(self, request: web.Request, recipe_id: str, body: dict[str, Any]) -> web.Response:
        """Change it."""
        recipe = await self.change(request, lambda books: books.update_recipe(recipe_id, body))
        return self.json(recipe_body(recipe, currency=self.production().currency))

    @operation(
        Operation(summary="Delete a recipe", responses={200: "Deleted", **_BUSINESS}, returns={200: MESSAGE})
    )
    async def delete(self, request: web.Request, recipe_id: str) -> web.Response:
        """Delete it."""
        await self.change(request, lambda books: books.delete_recipe(recipe_id))
        return self.json({"message": "Recipe deleted"})


INVENTORY_VIEWS: list[type[FarmView]] = [RecipeRunsView, RecipeRunView, RecipesView, RecipeView]
