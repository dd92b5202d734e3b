"""The production books' REST plumbing, and their catalogue: spools and products (seed 000).

/api/print_farm/v1/spools... and /v1/products...; `BooksView` turns the books' refusals into the
seeds' error bodies for every books route (production runs, recipes, runs from recipes too).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..const import DOMAIN
from ..rules.books.money import money_out, quantity_out, rate_out
from ..rules.books.records import InventoryError, Product, Spool, iso_z
from ..rules.books.runs import Books
from ..rules.books.schema import DEFAULT_NET_GRAMS, PRODUCT_CREATE, PRODUCT_PATCH, SPOOL_CREATE, SPOOL_PATCH
from ..runtime.production import ProductionManager
from .base import API_PREFIX, ApiError, FarmView, Operation, operation
from .shapes import BOOLEAN, INTEGER, MESSAGE, NUMBER, STRING, array, nullable, shape

V1 = f"{API_PREFIX}/v1"


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


# --- bodies, each with its JSON Schema ---------------------------------------------------------

SPOOL_BODY = shape(
    {
        "id": STRING,
        "name": STRING,
        "material": STRING,
        "color": nullable(STRING),
        "vendor": nullable(STRING),
        "net_weight_grams": NUMBER,
        "remaining_grams": NUMBER,
        "remaining_percent": NUMBER,
        "empty_spool_weight_grams": nullable(NUMBER),
        "price": nullable(NUMBER),
        "cost_per_gram": nullable(NUMBER),
        "currency": STRING,
        "low": BOOLEAN,
        "created_at": STRING,
        "updated_at": STRING,
        "tray_uuid": nullable(STRING),
        "location": nullable(shape({"printer_serial": STRING, "tray": INTEGER})),
    }
)
PRODUCT_BODY = shape(
    {
        "id": STRING,
        "name": STRING,
        "sku": nullable(STRING),
        "notes": nullable(STRING),
        "created_at": STRING,
        "updated_at": STRING,
    }
)


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
        # Extras of ours: the Bambu RFID tray_uuid, and the printer tray the spool is placed in.
        "tray_uuid": spool.tray_uuid,
        "location": None
        if spool.printer_serial is None or spool.tray is None
        else {"printer_serial": spool.printer_serial, "tray": spool.tray},
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

    @operation(
        Operation(
            summary="Every spool",
            admin=False,
            responses={200: "The spools"},
            returns={200: shape({"items": array(SPOOL_BODY), "total": INTEGER})},
        )
    )
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
            returns={201: SPOOL_BODY},
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

    @operation(
        Operation(
            summary="A spool",
            admin=False,
            responses={200: "The spool", 404: "Unknown spool"},
            returns={200: SPOOL_BODY},
        )
    )
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
            returns={200: SPOOL_BODY},
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
        Operation(
            summary="Delete a spool (and its device)",
            responses={200: "Deleted", 404: "Unknown spool"},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, spool_id: str) -> web.Response:
        """Delete it."""
        await self.change(request, lambda books: books.delete_spool(spool_id))
        return self.json({"message": "Spool deleted"})


class ProductsView(BooksView):
    """/v1/products."""

    url = f"{V1}/products"
    name = f"api:{DOMAIN}:v1:products"

    @operation(
        Operation(
            summary="Every product",
            admin=False,
            responses={200: "The products"},
            returns={200: shape({"items": array(PRODUCT_BODY), "total": INTEGER})},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Every product."""
        products = [product_body(product) for product in self.production().books.products.values()]
        return self.json({"items": products, "total": len(products)})

    @operation(
        Operation(
            summary="Add a product",
            body=PRODUCT_CREATE,
            responses={201: "The product", 400: "Invalid body", 409: "SKU taken"},
            returns={201: PRODUCT_BODY},
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
        Operation(
            summary="A product",
            admin=False,
            responses={200: "The product", 404: "Unknown product"},
            returns={200: PRODUCT_BODY},
        )
    )
    async def get(self, request: web.Request, product_id: str) -> web.Response:
        """The product."""
        return self.json(product_body(self.read(lambda books: books.product(product_id))))

    @operation(
        Operation(
            summary="Change a product",
            body=PRODUCT_PATCH,
            responses={200: "The product", 400: "Invalid body", 404: "Unknown product", 409: "SKU taken"},
            returns={200: PRODUCT_BODY},
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
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, product_id: str) -> web.Response:
        """Delete it."""
        await self.change(request, lambda books: books.delete_product(product_id))
        return self.json({"message": "Product deleted"})


CATALOGUE_VIEWS: list[type[FarmView]] = [SpoolsView, SpoolView, ProductsView, ProductView]
