"""The catalogue: spools, products and recipes, each change checked before anything is written."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from .money import quantity_out
from .records import InventoryError, Product, Recipe, RecipeMaterial, Spool, new_id


class Catalogue:
    """Spools, products and recipes, with the rules that keep them consistent."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        """An empty catalogue; `now` gives the current instant (UTC)."""
        self._now = now
        self.spools: dict[str, Spool] = {}
        self.products: dict[str, Product] = {}
        self.recipes: dict[str, Recipe] = {}

    def now(self) -> datetime:
        """The current instant, to the second (the seeds show seconds)."""
        return self._now().astimezone(UTC).replace(microsecond=0)

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

    # spools

    def add_spool(self, data: Mapping[str, Any]) -> Spool:
        """A new spool; full unless `remaining_grams` says otherwise."""
        _one_price(data)
        self.check_tray_uuid(data.get("tray_uuid"), None)
        net = data.get("net_weight_grams", Decimal(1000))
        now = self.now()
        spool = Spool(
            id=new_id(),
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
            tray_uuid=data["tray_uuid"].upper() if data.get("tray_uuid") else None,
        )
        self.spools[spool.id] = spool
        return spool

    def update_spool(self, spool_id: str, changes: Mapping[str, Any]) -> Spool:
        """Change a spool; a new price replaces a given cost per gram and the other way round."""
        spool = self.spool(spool_id)
        _one_price(changes)
        self.check_tray_uuid(changes.get("tray_uuid"), spool_id)
        values = {key: value for key, value in changes.items() if key not in ("price", "cost_per_gram")}
        if changes.get("tray_uuid"):
            values["tray_uuid"] = changes["tray_uuid"].upper()
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

    def check_tray_uuid(self, tray_uuid: str | None, own_id: str | None) -> None:
        """A tray_uuid names one spool only (409)."""
        if tray_uuid is None:
            return
        wanted = tray_uuid.upper()
        for other in self.spools.values():
            if (other.tray_uuid or "").upper() == wanted and other.id != own_id:
                raise InventoryError(f"tray_uuid {tray_uuid} is already spool {other.name}.", 409)

    # products

    def add_product(self, data: Mapping[str, Any]) -> Product:
        """A new product; a SKU names one product only."""
        self._check_sku(data.get("sku"), None)
        now = self.now()
        product = Product(
            id=new_id(),
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
            id=new_id(),
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


_RECIPE_COSTS: Final = (
    "print_hours_per_unit",
    "labour_cost_per_unit",
    "packaging_cost_per_unit",
    "overhead_cost_per_unit",
    "machine_cost_per_hour",
)


def _one_price(data: Mapping[str, Any]) -> None:
    if data.get("price") is not None and data.get("cost_per_gram") is not None:
        raise InventoryError("Give the spool's price or its cost per gram, not both.")
