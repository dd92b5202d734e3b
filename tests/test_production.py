"""Production runs (seed 000) and runs from recipes (seed 001) through REST, storage, entities and actions."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.print_farm.api.production_runs import PRODUCTION_VIEWS
from custom_components.print_farm.api.recipe_runs import INVENTORY_VIEWS
from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.runtime.production import STORAGE_KEY

V1 = "/api/print_farm/v1"
RUNS = f"{V1}/production-runs"
RECIPE_RUNS = f"{V1}/inventory/production/runs"

# The seed's example bodies, as written (ids filled in where the seed shows "550e8400-...").
SEED_CREATE = {
    "started_at": "2024-01-15T10:00:00Z",
    "estimated_print_time_hours": 4.0,
    "estimated_total_filament_grams": 150.0,
    "printer_name": "Bambu P1S",
    "status": "in_progress",
    "notes": "Batch print for order #1234",
}
SEED_ITEM = {"quantity": 3, "estimated_material_cost": 3.75, "estimated_total_cost": 5.25}
SEED_MATERIAL = {"estimated_weight_grams": 135.0, "estimated_purge_grams": 5.0, "cost_per_gram": 0.025}
SEED_USAGE = {"spool_weight_before_grams": 850.0, "spool_weight_after_grams": 710.0}
SEED_PATCH = {"status": "completed", "quality_rating": 4, "quality_notes": "Good quality overall"}


@pytest.fixture
async def farm(hass: HomeAssistant, socket_enabled: None) -> MockConfigEntry:
    entry = MockConfigEntry(domain=DOMAIN, title="Print Farm", data={"discovery_port": 0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def client(hass_client: Any, farm: MockConfigEntry) -> TestClient:
    return await hass_client()


async def created(response: Any) -> dict[str, Any]:
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def ok(response: Any) -> Any:
    assert response.status == 200, await response.text()
    return await response.json()


async def refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) >= {"error", "message"}
    return body


async def add_spool(client: TestClient, **data: Any) -> dict[str, Any]:
    body = {
        "name": "PLA Black (Polymaker)",
        "material": "PLA",
        "color": "Black",
        "vendor": "Polymaker",
        **data,
    }
    return await created(await client.post(f"{V1}/spools", json=body))


async def add_product(client: TestClient, name: str = "Phone Stand", **data: Any) -> dict[str, Any]:
    return await created(await client.post(f"{V1}/products", json={"name": name, **data}))


async def seed_run(client: TestClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The seed's run: one product, one spool holding 850 g, weighed down to 710 g."""
    spool = await add_spool(client, remaining_grams=850, net_weight_grams=1000, cost_per_gram=0.025)
    product = await add_product(client)
    run = await created(await client.post(RUNS, json=SEED_CREATE))
    await created(
        await client.post(f"{RUNS}/{run['id']}/items", json={"product_id": product["id"], **SEED_ITEM})
    )
    material = await created(
        await client.post(f"{RUNS}/{run['id']}/materials", json={"spool_id": spool["id"], **SEED_MATERIAL})
    )
    return run, spool, material


@pytest.fixture
async def seed_client(
    hass: HomeAssistant,
    hass_admin_user: Any,
    aiohttp_client: Any,
    farm: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> TestClient:
    """A client on the seed's day (2024-01-15 09:45 UTC), whose token outlives the hours the example spans."""
    freezer.move_to("2024-01-15T09:45:00Z")
    refresh = await hass.auth.async_create_refresh_token(
        hass_admin_user,
        client_name="seed",
        token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN,
        access_token_expiration=timedelta(days=1),
    )
    token = hass.auth.async_create_access_token(refresh)
    return await aiohttp_client(hass.http.app, headers={"Authorization": f"Bearer {token}"})


async def test_seed_worked_example(
    hass: HomeAssistant, seed_client: TestClient, freezer: FrozenDateTimeFactory, hass_storage: dict[str, Any]
) -> None:
    """850 g -> 710 g is 140 g; 155 g against 150 g is 5 g, 3.3 %; 4.5 h against 4.0 h is 0.5 h, 12.5 %."""
    client = seed_client
    run, spool, material = await seed_run(client)
    assert run["status"] == "in_progress"
    assert run["created_at"] == "2024-01-15T09:45:00Z"
    assert run["started_at"] == "2024-01-15T10:00:00Z"
    usage = await ok(await client.patch(f"{RUNS}/{run['id']}/materials/{material['id']}", json=SEED_USAGE))
    assert usage == {
        "id": material["id"],
        "spool_id": spool["id"],
        "spool_name": "PLA Black (Polymaker)",
        "estimated_weight_grams": 135.0,
        "actual_weight_grams": 140.0,
        "spool_weight_before_grams": 850.0,
        "spool_weight_after_grams": 710.0,
        "estimated_purge_grams": 5.0,
        "actual_purge_grams": None,
        "cost_per_gram": 0.025,
        "deducted_grams": None,
    }
    # A second spool gave the last 15 g: 155 g in all.
    other = await add_spool(client, name="PLA White", color="White", remaining_grams=200)
    await created(
        await client.post(
            f"{RUNS}/{run['id']}/materials",
            json={"spool_id": other["id"], "spool_weight_before_grams": 200, "spool_weight_after_grams": 185},
        )
    )
    freezer.move_to("2024-01-15T14:30:00Z")
    completion = await ok(await client.post(f"{RUNS}/{run['id']}/complete"))
    assert completion == {
        "id": run["id"],
        "status": "completed",
        "completed_at": "2024-01-15T14:30:00Z",
        "inventory_updated": True,
        "spools_updated": [
            {"spool_id": spool["id"], "previous_weight": 850.0, "new_weight": 710.0, "deducted": 140.0},
            {"spool_id": other["id"], "previous_weight": 200.0, "new_weight": 185.0, "deducted": 15.0},
        ],
    }
    # Saved before the answer: the stored books already hold the completed run.
    stored = hass_storage[STORAGE_KEY]["data"]
    assert next(r for r in stored["runs"] if r["id"] == run["id"])["status"] == "completed"
    # The seed's PATCH, sent as written to the completed run, records the quality.
    await ok(await client.patch(f"{RUNS}/{run['id']}", json=SEED_PATCH))
    detail = await ok(await client.get(f"{RUNS}/{run['id']}"))
    assert detail["variance_analysis"] == {
        "material_variance_grams": 5.0,
        "material_variance_percent": 3.3,
        "time_variance_hours": 0.5,
        "time_variance_percent": 12.5,
    }
    assert {key: detail[key] for key in ("status", "printer_name", "started_at", "completed_at")} == {
        "status": "completed",
        "printer_name": "Bambu P1S",
        "started_at": "2024-01-15T10:00:00Z",
        "completed_at": "2024-01-15T14:30:00Z",
    }
    assert detail["quality_rating"] == 4
    assert detail["quality_notes"] == "Good quality overall"
    assert detail["actual_print_time_hours"] == 4.5
    assert detail["actual_total_filament_grams"] == 155.0
    assert detail["items"] == [
        {
            "id": detail["items"][0]["id"],
            "product_id": detail["items"][0]["product_id"],
            "product_name": "Phone Stand",
            "quantity": 3,
            "successful_quantity": 0,
            "failed_quantity": 0,
            "estimated_material_cost": 3.75,
            "estimated_total_cost": 5.25,
        }
    ]
    item_id = detail["items"][0]["id"]
    # Outcomes are recorded after completion (the seed's item PATCH).
    item = await ok(
        await client.patch(
            f"{RUNS}/{run['id']}/items/{item_id}", json={"successful_quantity": 3, "failed_quantity": 0}
        )
    )
    assert item["successful_quantity"] == 3
    assert (await ok(await client.get(f"{V1}/spools/{spool['id']}")))["remaining_grams"] == 710.0
    listing = await ok(await client.get(RUNS, params={"status": "completed", "printer_name": "Bambu P1S"}))
    assert listing["total"] == 1
    assert listing["skip"] == 0
    assert listing["limit"] == 20
    assert listing["items"] == [
        {
            "id": run["id"],
            "status": "completed",
            "printer_name": "Bambu P1S",
            "started_at": "2024-01-15T10:00:00Z",
            "completed_at": "2024-01-15T14:30:00Z",
            "estimated_print_time_hours": 4.0,
            "actual_print_time_hours": 4.5,
            "estimated_total_filament_grams": 150.0,
            "actual_total_filament_grams": 155.0,
            "quality_rating": 4,
            "created_at": "2024-01-15T09:45:00Z",
        }
    ]


async def test_patch_to_completed_completes(client: TestClient) -> None:
    """The seed's PATCH with status completed, sent before completion, deducts like POST .../complete."""
    run, spool, material = await seed_run(client)
    body = await refused(await client.patch(f"{RUNS}/{run['id']}", json=SEED_PATCH), 409)
    assert body["problems"] == [
        {"material_id": material["id"], "spool_id": spool["id"], "reason": "no_actual_usage"}
    ]
    assert (await ok(await client.get(f"{RUNS}/{run['id']}")))["quality_rating"] is None  # nothing applied
    await ok(await client.patch(f"{RUNS}/{run['id']}/materials/{material['id']}", json=SEED_USAGE))
    detail = await ok(await client.patch(f"{RUNS}/{run['id']}", json=SEED_PATCH))
    assert detail["status"] == "completed"
    assert detail["quality_rating"] == 4
    assert (await ok(await client.get(f"{V1}/spools/{spool['id']}")))["remaining_grams"] == 710.0
    await refused(await client.post(f"{RUNS}/{run['id']}/complete"), 409)
    await refused(await client.patch(f"{RUNS}/{run['id']}", json={"status": "in_progress"}), 409)


async def test_completion_refusals_deduct_nothing(client: TestClient) -> None:
    run, spool, material = await seed_run(client)
    short = await add_spool(client, name="Almost empty", remaining_grams=10)
    await created(
        await client.post(
            f"{RUNS}/{run['id']}/materials", json={"spool_id": short["id"], "actual_weight_grams": 25}
        )
    )
    await ok(await client.patch(f"{RUNS}/{run['id']}/materials/{material['id']}", json=SEED_USAGE))
    body = await refused(await client.post(f"{RUNS}/{run['id']}/complete"), 409)
    assert body["problems"] == [
        {"spool_id": short["id"], "reason": "insufficient", "needed_grams": 25.0, "remaining_grams": 10.0}
    ]
    assert "Almost empty holds 10.0 g" in body["message"]
    for spool_id, grams in ((spool["id"], 850.0), (short["id"], 10.0)):
        assert (await ok(await client.get(f"{V1}/spools/{spool_id}")))["remaining_grams"] == grams
    assert (await ok(await client.get(f"{RUNS}/{run['id']}")))["status"] == "in_progress"
    # An unknown (deleted) spool refuses too.
    await ok(await client.delete(f"{V1}/spools/{short['id']}"))
    body = await refused(await client.post(f"{RUNS}/{run['id']}/complete"), 409)
    assert body["problems"] == [{"spool_id": short["id"], "reason": "unknown_spool"}]
    assert (await ok(await client.get(f"{V1}/spools/{spool['id']}")))["remaining_grams"] == 850.0


async def test_concurrent_completions_deduct_once(client: TestClient, farm: MockConfigEntry) -> None:
    """Five completions at once while the save is slow: one deducts, the other four are refused."""
    from unittest.mock import patch  # imported here: only this test of the module patches

    from homeassistant.helpers.storage import Store

    run, spool, material = await seed_run(client)
    await ok(await client.patch(f"{RUNS}/{run['id']}/materials/{material['id']}", json=SEED_USAGE))
    production = farm.runtime_data.production
    change, write = production.async_change, Store._async_write_data
    asked = 0
    all_asked = asyncio.Event()

    async def counted(operation: Any, context: Any = None) -> Any:
        nonlocal asked
        asked += 1
        if asked == 5:
            all_asked.set()
        return await change(operation, context)

    async def slow_write(store: Store[Any], path: str, data: dict[str, Any]) -> None:
        # The save lasts until all five completions have been asked for: they overlap for real, and
        # only the books' lock keeps the others from completing the run from the same "in progress".
        await asyncio.wait_for(all_asked.wait(), 10)
        await write(store, path, data)

    with (
        patch.object(production, "async_change", counted),
        patch.object(Store, "_async_write_data", slow_write),
    ):
        responses = await asyncio.gather(*(client.post(f"{RUNS}/{run['id']}/complete") for _ in range(5)))
    assert asked == 5
    assert sorted(response.status for response in responses) == [200, 409, 409, 409, 409]
    assert (await ok(await client.get(f"{V1}/spools/{spool['id']}")))["remaining_grams"] == 710.0
    assert production.books.material_used_grams == 140


async def test_bad_input(client: TestClient) -> None:
    run, spool, material = await seed_run(client)
    run_path = f"{RUNS}/{run['id']}"
    material_path = f"{run_path}/materials/{material['id']}"
    for body in (
        {"spool_weight_before_grams": -1},
        {"spool_weight_before_grams": 700, "spool_weight_after_grams": 710},
        {"actual_weight_grams": 5, "spool_weight_before_grams": 850, "spool_weight_after_grams": 710},
        {"actual_weight_grams": "140"},
        {"actual_weight_grams": True},
    ):
        await refused(await client.patch(material_path, json=body), 400)
    material_now = await ok(await client.get(run_path))
    assert material_now["materials"][0]["actual_weight_grams"] is None  # nothing half-written
    for body in (
        {"quality_rating": 6},
        {"quality_rating": 0},
        {"status": "finished"},
        {"started_at": "soon"},
    ):
        await refused(await client.patch(run_path, json=body), 400)
    await refused(await client.post(RUNS, json={"status": "completed"}), 400)
    await refused(await client.post(RUNS, data="not json"), 400)
    await refused(await client.post(RUNS, json={"estimated_total_filament_grams": -150}), 400)
    item = {"product_id": (await add_product(client, "Other"))["id"], "quantity": 2}
    await refused(
        await client.post(f"{run_path}/items", json={**item, "successful_quantity": 2, "failed_quantity": 1}),
        400,
    )
    await refused(await client.post(f"{run_path}/items", json={**item, "quantity": 0}), 400)
    await refused(await client.post(f"{run_path}/items", json={**item, "product_id": "nope"}), 404)
    await refused(await client.post(f"{run_path}/materials", json={"spool_id": "nope"}), 404)
    await refused(await client.get(f"{RUNS}/nope"), 404)
    await refused(await client.patch(f"{run_path}/items/nope", json={"quantity": 1}), 404)
    await refused(await client.delete(f"{run_path}/materials/nope"), 404)
    await refused(await client.post(f"{RUNS}/nope/complete"), 404)
    for params in ({"skip": "-1"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"status": "done"}):
        await refused(await client.get(RUNS, params=params), 400)
    await refused(
        await client.post(
            f"{V1}/spools", json={"name": "x", "material": "PLA", "price": 1, "cost_per_gram": 1}
        ),
        400,
    )
    await created(await client.post(f"{V1}/products", json={"name": "A", "sku": "S"}))
    await refused(await client.post(f"{V1}/products", json={"name": "B", "sku": "S"}), 409)
    # Once completed, materials are fixed.
    await ok(await client.patch(material_path, json=SEED_USAGE))
    await ok(await client.post(f"{run_path}/complete"))
    await refused(await client.patch(material_path, json={"actual_purge_grams": 8}), 409)
    await refused(await client.post(f"{run_path}/materials", json={"spool_id": spool["id"]}), 409)
    await refused(await client.delete(material_path), 409)


async def test_list_pages_and_filters(client: TestClient) -> None:
    for number in range(5):
        printer = "P1S" if number % 2 else "X1C"
        await created(await client.post(RUNS, json={"printer_name": printer, "notes": str(number)}))
    page = await ok(await client.get(RUNS, params={"skip": "1", "limit": "2"}))
    assert page["total"] == 5
    assert len(page["items"]) == 2
    assert (await ok(await client.get(RUNS, params={"printer_name": "P1S"})))["total"] == 2
    assert (await ok(await client.get(RUNS, params={"status": "pending"})))["total"] == 5
    run_id = page["items"][0]["id"]
    await ok(await client.delete(f"{RUNS}/{run_id}"))
    await refused(await client.get(f"{RUNS}/{run_id}"), 404)
    assert (await ok(await client.get(RUNS)))["total"] == 4


async def test_restart_keeps_completed_run_and_deducted_spool(
    hass: HomeAssistant, client: TestClient, farm: MockConfigEntry
) -> None:
    run, spool, material = await seed_run(client)
    await ok(await client.patch(f"{RUNS}/{run['id']}/materials/{material['id']}", json=SEED_USAGE))
    await ok(await client.post(f"{RUNS}/{run['id']}/complete"))
    assert await hass.config_entries.async_reload(farm.entry_id)
    await hass.async_block_till_done()
    assert (await ok(await client.get(f"{RUNS}/{run['id']}")))["status"] == "completed"
    assert (await ok(await client.get(f"{V1}/spools/{spool['id']}")))["remaining_grams"] == 710.0
    assert hass.states.get("sensor.print_farm_material_used").state == "140.0"


async def recipe(client: TestClient, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    spool = await add_spool(client, price=24.99, net_weight_grams=1000)
    product = await add_product(client)
    body = {
        "product_id": product["id"],
        "materials": [{"material": "PLA", "grams_per_unit": 45.5}],
        "print_hours_per_unit": 1.25,
        "labour_cost_per_unit": 120,
        "packaging_cost_per_unit": 35,
        "overhead_cost_per_unit": 15,
        "machine_cost_per_hour": 35,
        **overrides,
    }
    return await created(await client.post(f"{V1}/inventory/recipes", json=body)), spool


async def test_run_from_recipe(client: TestClient, farm: MockConfigEntry) -> None:
    made, spool = await recipe(client)
    assert made["name"] == "Phone Stand"
    assert made["currency"] == "EUR"
    request = {"recipe_id": made["id"], "name": "Order 42", "total_units": 10, "unit_sale_price": 500}
    run = await created(
        await client.post(RECIPE_RUNS, json=request, headers={"x-business-id": farm.entry_id})
    )
    assert set(run) == {
        "id", "business_id", "recipe_id", "name", "total_units", "unit_sale_price", "status",
        "cost_snapshot", "created_at", "updated_at",
    }  # fmt: skip
    assert run["business_id"] == farm.entry_id
    assert (run["name"], run["total_units"], run["unit_sale_price"], run["status"]) == (
        "Order 42",
        10,
        500,
        "pending",
    )
    snapshot = run["cost_snapshot"]
    assert (snapshot["materials"], snapshot["machine_time"], snapshot["total"], snapshot["per_unit"]) == (
        1137,
        438,
        3275,
        327,
    )
    assert (snapshot["margin_per_unit"], snapshot["margin_total"]) == (173, 1725)
    # Frozen: a new price does not change the run's snapshot.
    await ok(await client.patch(f"{V1}/spools/{spool['id']}", json={"price": 99.0}))
    assert (await ok(await client.get(f"{RECIPE_RUNS}/{run['id']}")))["cost_snapshot"] == snapshot
    assert [r["id"] for r in await ok(await client.get(RECIPE_RUNS))] == [run["id"]]
    # The same run is in the production-runs books, ready to weigh and complete.
    detail = await ok(await client.get(f"{RUNS}/{run['id']}"))
    assert detail["recipe_id"] == made["id"]
    assert detail["estimated_total_filament_grams"] == 455.0
    assert detail["materials"][0]["spool_id"] == spool["id"]
    assert detail["items"][0]["quantity"] == 10


async def test_recipe_run_errors(client: TestClient) -> None:
    made, _ = await recipe(client)
    # The seed's example request, as written: no recipe "string" here.
    await refused(await client.post(RECIPE_RUNS, json={"recipe_id": "string", "total_units": 0}), 404)
    await refused(
        await client.post(
            RECIPE_RUNS,
            json={"recipe_id": made["id"], "total_units": 1},
            headers={"x-business-id": "YOUR_BUSINESS_ID"},
        ),
        404,
    )
    await refused(await client.get(RECIPE_RUNS, headers={"x-business-id": "other"}), 404)
    for body in (
        {"recipe_id": made["id"]},
        {"recipe_id": made["id"], "total_units": "3"},
        {"total_units": 3},
    ):
        await refused(await client.post(RECIPE_RUNS, json=body), 422)
    await refused(await client.post(RECIPE_RUNS, data="{"), 422)
    await refused(await client.post(RECIPE_RUNS, json={"recipe_id": made["id"], "total_units": 0}), 400)
    await refused(
        await client.post(
            RECIPE_RUNS, json={"recipe_id": made["id"], "total_units": 1, "unit_sale_price": -5}
        ),
        400,
    )
    petg = await created(
        await client.post(
            f"{V1}/inventory/recipes",
            json={"product_id": made["product_id"], "materials": [{"material": "PETG", "grams_per_unit": 5}]},
        )
    )
    body = await refused(
        await client.post(RECIPE_RUNS, json={"recipe_id": petg["id"], "total_units": 2}), 400
    )
    assert "PETG" in body["message"]
    await refused(await client.post(f"{V1}/inventory/recipes", json={"product_id": "nope"}), 404)
    await refused(
        await client.post(
            f"{V1}/inventory/recipes", json={"product_id": made["product_id"], "labour_cost_per_unit": 1.5}
        ),
        422,
    )
    await refused(await client.delete(f"{V1}/products/{made['product_id']}"), 409)
    await ok(await client.delete(f"{V1}/inventory/recipes/{petg['id']}"))
    await refused(await client.get(f"{V1}/inventory/recipes/{petg['id']}"), 404)
    changed = await ok(
        await client.patch(f"{V1}/inventory/recipes/{made['id']}", json={"labour_cost_per_unit": 200})
    )
    assert changed["labour_cost_per_unit"] == 200
    plain = await created(await client.post(RUNS, json={}))
    await refused(await client.get(f"{RECIPE_RUNS}/{plain['id']}"), 404)


async def test_spool_entities_and_low_event(
    hass: HomeAssistant, client: TestClient, farm: MockConfigEntry
) -> None:
    events = async_capture_events(hass, "print_farm_spool_low")
    spool = await add_spool(client, remaining_grams=150, net_weight_grams=1000)
    await hass.async_block_till_done()
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"spool_{spool['id']}")})
    assert device is not None
    assert (device.name, device.manufacturer, device.model) == (
        "PLA Black (Polymaker)",
        "Polymaker",
        "PLA Black",
    )
    entities = {
        entry.translation_key: entry.entity_id
        for entry in er.async_entries_for_device(er.async_get(hass), device.id)
    }
    assert set(entities) == {"spool_remaining", "spool_remaining_percent", "spool_low"}
    assert hass.states.get(entities["spool_remaining"]).state == "150.0"
    assert hass.states.get(entities["spool_remaining_percent"]).state == "15.0"
    assert hass.states.get(entities["spool_low"]).state == "off"
    await hass.services.async_call(
        DOMAIN,
        "adjust_spool",
        {"device_id": device.id, "delta_grams": -60},
        blocking=True,
        return_response=True,
    )
    assert hass.states.get(entities["spool_remaining"]).state == "90.0"
    assert hass.states.get(entities["spool_low"]).state == "on"
    assert [event.data["remaining_grams"] for event in events] == [90.0]
    assert events[0].data["threshold_grams"] == 100.0
    # Staying low does not fire again; the threshold is a farm setting.
    await hass.services.async_call(
        DOMAIN, "adjust_spool", {"spool_id": spool["id"], "delta_grams": -10}, blocking=True
    )
    assert len(events) == 1
    await ok(await client.put(f"{V1}/settings", json={"spool_low_threshold_grams": 50}))
    await hass.async_block_till_done()
    assert hass.states.get(entities["spool_low"]).state == "off"
    await ok(await client.patch(f"{V1}/spools/{spool['id']}", json={"name": "Renamed"}))
    assert dr.async_get(hass).async_get(device.id).name == "Renamed"
    await ok(await client.delete(f"{V1}/spools/{spool['id']}"))
    await hass.async_block_till_done()
    assert dr.async_get(hass).async_get(device.id) is None
    assert hass.states.get(entities["spool_remaining"]) is None


async def test_farm_sensors(hass: HomeAssistant, client: TestClient) -> None:
    assert hass.states.get("sensor.print_farm_production_runs_in_progress").state == "0"
    assert hass.states.get("sensor.print_farm_material_used").state == "0.0"
    run, spool, material = await seed_run(client)
    assert hass.states.get("sensor.print_farm_production_runs_in_progress").state == "1"
    await ok(await client.patch(f"{RUNS}/{run['id']}/materials/{material['id']}", json=SEED_USAGE))
    await ok(await client.post(f"{RUNS}/{run['id']}/complete"))
    assert hass.states.get("sensor.print_farm_production_runs_in_progress").state == "0"
    assert hass.states.get("sensor.print_farm_material_used").state == "140.0"


async def test_actions(hass: HomeAssistant, client: TestClient, hass_read_only_user: Any) -> None:
    run, spool, material = await seed_run(client)
    usage = await hass.services.async_call(
        DOMAIN,
        "record_material_usage",
        {"run_id": run["id"], "material_id": material["id"], **SEED_USAGE, "actual_purge_grams": 8},
        blocking=True,
        return_response=True,
    )
    assert (usage["actual_weight_grams"], usage["actual_purge_grams"]) == (140.0, 8.0)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "record_material_usage",
            {"run_id": run["id"], "material_id": material["id"], "spool_weight_after_grams": 900},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "production_refused"
    completion = await hass.services.async_call(
        DOMAIN, "complete_production_run", {"run_id": run["id"]}, blocking=True, return_response=True
    )
    assert completion["spools_updated"] == [
        {"spool_id": spool["id"], "previous_weight": 850.0, "new_weight": 710.0, "deducted": 140.0}
    ]
    with pytest.raises(ServiceValidationError, match="already completed"):
        await hass.services.async_call(
            DOMAIN, "complete_production_run", {"run_id": run["id"]}, blocking=True, return_response=True
        )
    with pytest.raises(ServiceValidationError, match="below 0"):
        await hass.services.async_call(
            DOMAIN,
            "adjust_spool",
            {"spool_id": spool["id"], "delta_grams": -711},
            blocking=True,
            return_response=True,
        )
    set_to = await hass.services.async_call(
        DOMAIN,
        "adjust_spool",
        {"spool_id": spool["id"], "remaining_grams": 500},
        blocking=True,
        return_response=True,
    )
    assert set_to["remaining_grams"] == 500.0
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "adjust_spool",
            {"device_id": "nope", "remaining_grams": 1},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "not_a_spool"
    from homeassistant.core import Context

    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "adjust_spool",
            {"spool_id": spool["id"], "remaining_grams": 1},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )


async def test_admin_only_changes(read_only_client_books: TestClient) -> None:
    """Every route that changes the books answers 403 to a read-only user; reads are open."""
    for view in (*PRODUCTION_VIEWS, *INVENTORY_VIEWS):
        path = str(view.url).replace("{run_id}", "r").replace("{item_id}", "i").replace("{material_id}", "m")
        path = path.replace("{spool_id}", "s").replace("{product_id}", "p").replace("{recipe_id}", "x")
        for method in ("post", "patch", "delete"):
            if (handler := getattr(view, method, None)) is None:
                continue
            response = await read_only_client_books.request(method, path, json={})
            assert response.status == 403, (method, path)
            assert handler.operation.admin
    assert (await read_only_client_books.get(RUNS)).status == 200
    assert (await read_only_client_books.get(f"{V1}/spools")).status == 200


@pytest.fixture
async def read_only_client_books(
    hass: HomeAssistant, aiohttp_client: Any, hass_read_only_access_token: str, farm: MockConfigEntry
) -> TestClient:
    return await aiohttp_client(
        hass.http.app, headers={"Authorization": f"Bearer {hass_read_only_access_token}"}
    )


async def test_storage_migrations(hass: HomeAssistant, hass_storage: dict[str, Any]) -> None:
    """An older minor version loads with its missing collections empty; a newer major version is not overwritten."""
    hass_storage[STORAGE_KEY] = {
        "version": 1,
        "minor_version": 0,
        "key": STORAGE_KEY,
        "data": {"spools": [], "material_used_grams": "12.5"},
    }
    entry = MockConfigEntry(domain=DOMAIN, title="Print Farm", data={"discovery_port": 0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.production.books.material_used_grams == 12.5
    assert hass_storage[STORAGE_KEY]["minor_version"] == 2
    assert hass_storage[STORAGE_KEY]["data"]["recipes"] == []
    # 1.2 added the print jobs' deductions and the declined RFID spools.
    assert hass_storage[STORAGE_KEY]["data"]["job_deductions"] == []
    assert hass_storage[STORAGE_KEY]["data"]["dismissed_tray_uuids"] == []
    assert await hass.config_entries.async_unload(entry.entry_id)
    future = {"version": 2, "minor_version": 1, "key": STORAGE_KEY, "data": {"books": "new shape"}}
    hass_storage[STORAGE_KEY] = future
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert hass_storage[STORAGE_KEY] == future


async def test_inventory_crud(client: TestClient) -> None:
    spool = await add_spool(client, price=20, net_weight_grams=800, empty_spool_weight_grams=210)
    assert (spool["cost_per_gram"], spool["price"], spool["currency"], spool["low"]) == (
        0.025,
        20.0,
        "EUR",
        False,
    )
    assert (spool["remaining_grams"], spool["remaining_percent"]) == (800.0, 100.0)
    listed = await ok(await client.get(f"{V1}/spools"))
    assert (listed["total"], listed["items"][0]["id"]) == (1, spool["id"])
    changed = await ok(await client.patch(f"{V1}/spools/{spool['id']}", json={"remaining_grams": 60.5}))
    assert (changed["remaining_grams"], changed["remaining_percent"], changed["low"]) == (60.5, 7.6, True)
    await refused(await client.patch(f"{V1}/spools/{spool['id']}", json={"remaining_grams": -1}), 400)
    await refused(await client.patch(f"{V1}/spools/nope", json={"remaining_grams": 1}), 404)

    product = await add_product(client, sku="PS-1", notes="Walnut")
    assert (await ok(await client.get(f"{V1}/products/{product['id']}"))) == product
    renamed = await ok(
        await client.patch(f"{V1}/products/{product['id']}", json={"name": "Stand", "sku": "PS-2"})
    )
    assert (renamed["name"], renamed["sku"]) == ("Stand", "PS-2")
    assert (await ok(await client.get(f"{V1}/products")))["total"] == 1

    recipe = await created(
        await client.post(
            f"{V1}/inventory/recipes",
            json={
                "product_id": product["id"],
                "materials": [{"material": "PLA", "grams_per_unit": 20, "spool_id": spool["id"]}],
            },
        )
    )
    assert recipe["name"] == "Stand"
    assert recipe["materials"] == [{"material": "PLA", "grams_per_unit": 20.0, "spool_id": spool["id"]}]
    assert [r["id"] for r in await ok(await client.get(f"{V1}/inventory/recipes"))] == [recipe["id"]]
    assert (await ok(await client.get(f"{V1}/inventory/recipes/{recipe['id']}")))["id"] == recipe["id"]
    await refused(
        await client.patch(
            f"{V1}/inventory/recipes/{recipe['id']}",
            json={"materials": [{"material": "PLA", "grams_per_unit": 5, "spool_id": "nope"}]},
        ),
        404,
    )
    # A recipe's pinned spool that was deleted cannot price a run.
    await ok(await client.delete(f"{V1}/spools/{spool['id']}"))
    body = await refused(
        await client.post(RECIPE_RUNS, json={"recipe_id": recipe["id"], "total_units": 1}), 400
    )
    assert "no longer exists" in body["message"]
    await ok(await client.delete(f"{V1}/inventory/recipes/{recipe['id']}"))
    await ok(await client.delete(f"{V1}/products/{product['id']}"))
    await refused(await client.get(f"{V1}/products/{product['id']}"), 404)


async def test_items_and_materials_removed(client: TestClient) -> None:
    run, spool, material = await seed_run(client)
    item_id = (await ok(await client.get(f"{RUNS}/{run['id']}")))["items"][0]["id"]
    await ok(await client.delete(f"{RUNS}/{run['id']}/items/{item_id}"))
    await ok(await client.delete(f"{RUNS}/{run['id']}/materials/{material['id']}"))
    detail = await ok(await client.get(f"{RUNS}/{run['id']}"))
    assert (detail["items"], detail["materials"]) == ([], [])
    completion = await ok(await client.post(f"{RUNS}/{run['id']}/complete"))
    assert (completion["inventory_updated"], completion["spools_updated"]) == (False, [])
    assert (await ok(await client.get(f"{V1}/spools/{spool['id']}")))["remaining_grams"] == 850.0


async def test_seed_shape_with_a_given_total(client: TestClient) -> None:
    """The seed's own shape: one material of 140 g and the run's actual total given as 155 g."""
    run, spool, material = await seed_run(client)
    await ok(await client.patch(f"{RUNS}/{run['id']}/materials/{material['id']}", json=SEED_USAGE))
    await ok(await client.patch(f"{RUNS}/{run['id']}", json={"actual_total_filament_grams": 155.0}))
    await ok(await client.post(f"{RUNS}/{run['id']}/complete"))
    variance = (await ok(await client.get(f"{RUNS}/{run['id']}")))["variance_analysis"]
    assert (variance["material_variance_grams"], variance["material_variance_percent"]) == (5.0, 3.3)
    assert (await ok(await client.get(f"{V1}/spools/{spool['id']}")))["remaining_grams"] == 710.0


async def test_refusals_leave_storage_untouched(client: TestClient, hass_storage: dict[str, Any]) -> None:
    run, spool, material = await seed_run(client)
    stored = copy.deepcopy(hass_storage[STORAGE_KEY])
    for method, path, body, status in (
        ("post", f"{V1}/spools", {"name": "x", "material": "PLA", "net_weight_grams": 1e-30}, 400),
        ("post", f"{V1}/spools", {"name": "x", "material": "PLA", "price": 1e300}, 400),
        ("post", RUNS, {"estimated_total_filament_grams": 1e-30, "actual_total_filament_grams": 1e300}, 400),
        ("patch", f"{RUNS}/{run['id']}", {"status": None}, 400),
        (
            "patch",
            f"{RUNS}/{run['id']}/materials/{material['id']}",
            {"spool_weight_after_grams": 900, "spool_weight_before_grams": 850},
            400,
        ),
        ("post", f"{RUNS}/{run['id']}/complete", None, 409),
        ("patch", f"{RUNS}/{run['id']}", SEED_PATCH, 409),
        ("delete", f"{RUNS}/nope", None, 404),
        ("delete", f"{RUNS}/{run['id']}/items/nope", None, 404),
        ("delete", f"{V1}/spools/nope", None, 404),
        ("get", f"{V1}/spools/nope", None, 404),
        ("patch", f"{V1}/products/nope", {"name": "x"}, 404),
        ("delete", f"{V1}/products/nope", None, 404),
        ("patch", f"{V1}/inventory/recipes/nope", {"name": "x"}, 404),
        ("patch", f"{V1}/inventory/recipes/nope", {"materials": "PLA"}, 422),
        ("delete", f"{V1}/inventory/recipes/nope", None, 404),
        ("get", f"{RECIPE_RUNS}/nope", None, 404),
        # A wrong business is a 404, whatever the body.
        ("post", RECIPE_RUNS, {"total_units": "x"}, 404),
    ):
        headers = {"x-business-id": "someone-else"} if status == 404 and path == RECIPE_RUNS else {}
        response = await client.request(method, path, json=body, headers=headers)
        await refused(response, status)
    assert hass_storage[STORAGE_KEY] == stored
    # A null clears what it names and nothing else.
    detail = await ok(await client.patch(f"{RUNS}/{run['id']}", json={"quality_rating": 4}))
    detail = await ok(await client.patch(f"{RUNS}/{run['id']}", json={"quality_rating": None}))
    assert (detail["quality_rating"], detail["printer_name"]) == (None, "Bambu P1S")


async def test_one_low_event_per_crossing_under_concurrent_changes(
    hass: HomeAssistant, client: TestClient, farm: MockConfigEntry
) -> None:
    """Two changes at once, the second crossing the threshold: one event, from the second."""
    events = async_capture_events(hass, "print_farm_spool_low")
    spool = await add_spool(client, remaining_grams=150)
    production = farm.runtime_data.production
    store = production._store
    original_save = store.async_save

    async def slow_save(data: Any) -> None:
        await asyncio.sleep(0.05)  # the disk is slow: the other change would run meanwhile
        await original_save(data)

    store.async_save = slow_save  # type: ignore[method-assign]
    await asyncio.gather(
        client.patch(f"{V1}/spools/{spool['id']}", json={"remaining_grams": 140}),
        client.patch(f"{V1}/spools/{spool['id']}", json={"remaining_grams": 80}),
    )
    await hass.async_block_till_done()
    assert [event.data["remaining_grams"] for event in events] == [80.0]
