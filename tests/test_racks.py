"""OttoRacks: the subentry flow, the three shelf states, persistence, entities, actions, REST, events."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.print_farm.const import DOMAIN

API = "/api/print_farm/ottoracks"
RACK = {"number_of_shelves": 4, "shelf_spacing_mm": 80, "bed_size": "256x256"}


def rack_entry(*racks: tuple[str, dict[str, Any]]) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Print Farm",
        data={"discovery_port": 0},
        subentries_data=[
            ConfigSubentryData(data=data, subentry_type="rack", title=name, unique_id=None)
            for name, data in racks
        ],
    )


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def farm(hass: HomeAssistant) -> MockConfigEntry:
    entry = await setup(hass, rack_entry(("A", RACK)))
    # Jobs 1 to 12 exist (a shelf's finished print must be a job's); made as the store makes them.
    for _ in range(12):
        await entry.runtime_data.jobs.store.async_add_job(
            print_item_id=None, printer_id=1, ottoeject_id=None, auto_start=False, priority=1
        )
    return entry


@pytest.fixture
async def client(hass_client: Any, farm: MockConfigEntry) -> TestClient:
    return await hass_client()


async def test_add_rack_flow_and_reconfigure(hass: HomeAssistant, farm: MockConfigEntry) -> None:
    result = await hass.config_entries.subentries.async_init(
        (farm.entry_id, "rack"), context={"source": SOURCE_USER}
    )
    bad = {"name": "a", "number_of_shelves": 6, "shelf_spacing_mm": 100, "bed_size": "big"}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], bad)
    assert result["errors"] == {"name": "name_taken", "bed_size": "invalid_bed_size"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**bad, "name": "B", "bed_size": "300x300"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    rack_b = next(rack for rack in farm.runtime_data.racks.values() if rack.name == "B")
    assert rack_b.rack_id == 2
    assert len(rack_b.shelves) == 6
    assert hass.states.get("sensor.b_available_shelves").state == "6"

    await rack_b.async_set_shelf(5, has_plate=True, plate_state="empty")
    result = await farm.start_subentry_reconfigure_flow(hass, "rack", rack_b.subentry.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"number_of_shelves": 4, "shelf_spacing_mm": 100, "bed_size": "300x300"}
    )
    assert result["errors"] == {"number_of_shelves": "shelves_occupied"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"number_of_shelves": 8, "shelf_spacing_mm": 90, "bed_size": "300x300"}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert len(rack_b.shelves) == 8
    assert rack_b.shelf_spacing_mm == 90
    assert rack_b.shelves[4].plate_state == "empty"


async def test_rest_create_list_get(client: TestClient) -> None:
    response = await client.post(
        API, json={"name": "B", "number_of_shelves": 3, "shelf_spacing_mm": 100, "bed_size": "300x300"}
    )
    assert response.status == 201
    assert await response.json() == {
        "id": 2,
        "name": "B",
        "number_of_shelves": 3,
        "shelf_spacing_mm": 100,
        "bed_size": "300x300",
        "ottoeject_id": None,  # an extra key (docs/API.md)
        "shelves": [
            {"id": n, "shelf_number": n, "has_plate": False, "plate_state": None, "print_job_id": None}
            for n in (1, 2, 3)
        ],
        "message": "Ottorack created successfully",
    }
    assert (
        await client.post(
            API, json={"name": "b", "number_of_shelves": 3, "shelf_spacing_mm": 100, "bed_size": "300x300"}
        )
    ).status == 409
    for bad in ({"name": "C"}, {"name": "C", "number_of_shelves": 0, "shelf_spacing_mm": 80, "bed_size": "256x256"},
                {"name": "C", "number_of_shelves": 3, "shelf_spacing_mm": 80, "bed_size": "256 by 256"}):  # fmt: skip
        response = await client.post(API, json=bad)
        assert response.status == 400
        assert set(await response.json()) == {"error", "message"}

    await client.put(
        f"{API}/1/shelves/2", json={"has_plate": True, "plate_state": "empty", "print_job_id": None}
    )
    response = await client.get(API)
    assert await response.json() == [
        {"id": 1, "name": "A", "number_of_shelves": 4, "shelf_spacing_mm": 80, "bed_size": "256x256", "ottoeject_id": None, "occupied_shelves": 1, "available_shelves": 3},
        {"id": 2, "name": "B", "number_of_shelves": 3, "shelf_spacing_mm": 100, "bed_size": "300x300", "ottoeject_id": None, "occupied_shelves": 0, "available_shelves": 3},
    ]  # fmt: skip
    body = await (await client.get(f"{API}/1")).json()
    assert body["shelves"][1] == {
        "id": 2, "shelf_number": 2, "has_plate": True, "plate_state": "empty", "print_job_id": None, "print_job": None,
    }  # fmt: skip
    assert (body["occupied_shelves"], body["available_shelves"]) == (1, 3)
    assert (await client.get(f"{API}/9")).status == 404
    assert (await client.get(f"{API}/x")).status == 404


VALID = [
    ({"has_plate": True, "plate_state": "with_print", "print_job_id": 1}, "with_print"),
    ({"has_plate": True, "plate_state": "empty", "print_job_id": None}, "empty"),
    ({"has_plate": False, "plate_state": None, "print_job_id": None}, "no_plate"),
    ({"has_plate": True, "plate_state": "empty"}, "empty"),
]
INVALID = [
    {"has_plate": False, "plate_state": "empty", "print_job_id": None},
    {"has_plate": False, "plate_state": None, "print_job_id": 3},
    {"has_plate": True, "plate_state": "with_print", "print_job_id": None},
    {"has_plate": True, "plate_state": "empty", "print_job_id": 3},
    {"has_plate": True, "plate_state": None, "print_job_id": None},
    {"has_plate": True, "plate_state": "full", "print_job_id": None},
    {"has_plate": "yes", "plate_state": "empty"},
    {"plate_state": "empty"},
    {"has_plate": True, "plate_state": "with_print", "print_job_id": "five"},
]


@pytest.mark.parametrize(("body", "option"), VALID)
async def test_valid_shelf_states(
    hass: HomeAssistant, client: TestClient, body: dict[str, Any], option: str
) -> None:
    events = async_capture_events(hass, "print_farm_shelf_changed")
    await client.put(f"{API}/1/shelves/3", json={"has_plate": True, "plate_state": "empty"})
    response = await client.put(f"{API}/1/shelves/3", json=body)
    assert response.status == 200
    result = await response.json()
    assert result == {
        "id": 3,
        "shelf_number": 3,
        "has_plate": body["has_plate"],
        "plate_state": body.get("plate_state"),
        "print_job_id": body.get("print_job_id"),
        "ottorack_id": 1,
        "message": "Shelf updated successfully",
    }
    await hass.async_block_till_done()
    assert hass.states.get("select.a_shelf_3").state == option
    assert events[0].data["shelf_number"] == 3
    if option != "empty":
        assert events[-1].data["previous"]["plate_state"] == "empty"
        assert events[-1].data["rack_name"] == "A"


@pytest.mark.parametrize("body", INVALID)
async def test_invalid_shelf_states_write_nothing(
    hass: HomeAssistant, client: TestClient, farm: MockConfigEntry, body: dict[str, Any]
) -> None:
    events = async_capture_events(hass, "print_farm_shelf_changed")
    response = await client.put(f"{API}/1/shelves/2", json=body)
    assert response.status == 400
    assert (await response.json())["error"] == "Bad Request"
    rack = next(iter(farm.runtime_data.racks.values()))
    assert not rack.shelves[1].has_plate
    assert events == []


@pytest.mark.parametrize("shelf", ["0", "5", "x"])
async def test_shelf_out_of_range_is_400(client: TestClient, shelf: str) -> None:
    assert (await client.put(f"{API}/1/shelves/{shelf}", json={"has_plate": False})).status == 400
    assert (await client.post(f"{API}/1/shelves/{shelf}/reset")).status == 400


async def test_reset_and_unknown_rack(client: TestClient) -> None:
    await client.put(
        f"{API}/1/shelves/1", json={"has_plate": True, "plate_state": "with_print", "print_job_id": 7}
    )
    response = await client.post(f"{API}/1/shelves/1/reset")
    assert response.status == 200
    assert await response.json() == {
        "id": 1, "shelf_number": 1, "has_plate": False, "plate_state": None, "print_job_id": None,
        "ottorack_id": 1, "message": "Shelf reset successfully",
    }  # fmt: skip
    assert (await client.post(f"{API}/2/shelves/1/reset")).status == 404
    assert (await client.put(f"{API}/2/shelves/1", json={"has_plate": False})).status == 404


async def test_select_entity_sets_shelf_seen_by_rest(hass: HomeAssistant, client: TestClient) -> None:
    await hass.services.async_call(
        "select", "select_option", {"entity_id": "select.a_shelf_2", "option": "empty"}, blocking=True
    )
    body = await (await client.get(f"{API}/1")).json()
    assert body["shelves"][1]["plate_state"] == "empty"
    assert body["occupied_shelves"] == 1
    assert hass.states.get("sensor.a_occupied_shelves").state == "1"
    assert hass.states.get("sensor.a_available_shelves").state == "3"
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": "select.a_shelf_2", "option": "with_print"},
            blocking=True,
        )
    assert caught.value.translation_key == "invalid_shelf"


async def test_actions(hass: HomeAssistant, farm: MockConfigEntry) -> None:
    device = next(device for device in dr.async_get(hass).devices.values() if device.model == "OttoRack")
    response = await hass.services.async_call(
        DOMAIN, "set_shelf", {"device_id": device.id, "shelf": 4, "plate_state": "with_print", "print_job_id": 12},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert response == {
        "id": 4,
        "shelf_number": 4,
        "has_plate": True,
        "plate_state": "with_print",
        "print_job_id": 12,
        "ottorack_id": 1,
    }
    assert hass.states.get("select.a_shelf_4").attributes["print_job_id"] == 12
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "set_shelf", {"device_id": device.id, "shelf": 9, "plate_state": "empty"}, blocking=True
        )
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "reset_shelf", {"device_id": "nope", "shelf": 1}, blocking=True
        )
    assert caught.value.translation_key == "not_a_rack"
    await hass.services.async_call(DOMAIN, "reset_shelf", {"device_id": device.id, "shelf": 4}, blocking=True)
    assert hass.states.get("select.a_shelf_4").state == "no_plate"


async def test_shelves_survive_restart(hass: HomeAssistant, farm: MockConfigEntry) -> None:
    rack = next(iter(farm.runtime_data.racks.values()))
    await rack.async_set_shelf(2, has_plate=True, plate_state="with_print", print_job_id=5)
    assert await hass.config_entries.async_unload(farm.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(farm.entry_id)
    await hass.async_block_till_done()
    rack = next(iter(farm.runtime_data.racks.values()))
    assert rack.shelves[1].print_job_id == 5
    assert rack.rack_id == 1
    assert hass.states.get("select.a_shelf_2").state == "with_print"


async def test_read_only_user_cannot_change_shelves(
    hass: HomeAssistant,
    aiohttp_client: Any,
    hass_read_only_access_token: str,
    farm: MockConfigEntry,
    socket_enabled: None,
) -> None:
    client = await aiohttp_client(
        hass.http.app, headers={"Authorization": f"Bearer {hass_read_only_access_token}"}
    )
    assert (await client.get(API)).status == 200
    assert (await client.put(f"{API}/1/shelves/1", json={"has_plate": False})).status == 403
    assert (await client.post(f"{API}/1/shelves/1/reset")).status == 403
    assert (await client.post(API, json={})).status == 403
    assert (await client.delete(f"{API}/1?force=true")).status == 403
    assert len(farm.runtime_data.racks) == 1


async def refused_delete(client: TestClient, holder: str) -> None:
    response = await client.delete(f"{API}/1")
    assert response.status == 409
    body = await response.json()
    assert (body["error"], body["message"].startswith(holder)) == ("Conflict", True)
    assert (await client.get(f"{API}/1")).status == 200


async def test_delete_rack(hass: HomeAssistant, client: TestClient, farm: MockConfigEntry) -> None:
    """A free rack goes with its subentry, shelves and device; a rack a job still needs only when forced."""
    made = await client.post(API, json={"name": "B", **RACK})
    assert made.status == 201
    subentry_id = next(s.subentry_id for s in farm.subentries.values() if s.title == "B")
    response = await client.delete(f"{API}/2")
    assert response.status == 200
    assert await response.json() == {"message": "Ottorack deleted successfully"}
    assert (await client.get(f"{API}/2")).status == 404
    assert (await client.delete(f"{API}/2")).status == 404
    assert subentry_id not in farm.subentries
    assert [rack["name"] for rack in await (await client.get(API)).json()] == ["A"]
    assert dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"rack_{subentry_id}")}) is None
    assert farm.runtime_data.rack_store.rack_id(subentry_id) is None

    jobs = farm.runtime_data.jobs.store.jobs
    # Job 1 (queued) reserved shelves 1 and 2 of rack A.
    jobs[1].rack_id, jobs[1].store_shelf, jobs[1].grab_shelf = 1, 1, 2
    await refused_delete(client, "Print job 1")
    # Job 1 let them go; job 2's failed plate is on its way to shelf 3 (its workflow under way).
    jobs[1].rack_id = None
    jobs[2].status, jobs[2].workflow = "FAILED", {"step": "grab", "done": False}
    jobs[2].rack_id, jobs[2].store_shelf = 1, 3
    await refused_delete(client, "Print job 2")
    assert (await client.delete(f"{API}/1?force=maybe")).status == 400
    assert (await client.get(f"{API}/1")).status == 200
    jobs[2].workflow["done"] = True  # its plate is stored: the rack is free again, without force
    assert (await client.delete(f"{API}/1?force=false")).status == 200
    assert await (await client.get(API)).json() == []


async def test_delete_rack_by_force(client: TestClient, farm: MockConfigEntry) -> None:
    jobs = farm.runtime_data.jobs.store.jobs
    jobs[1].rack_id, jobs[1].store_shelf, jobs[1].grab_shelf = 1, 1, 2
    assert (await client.delete(f"{API}/1")).status == 409
    response = await client.delete(f"{API}/1?force=true")
    assert response.status == 200
    assert (await client.get(f"{API}/1")).status == 404
    assert not any(subentry.subentry_type == "rack" for subentry in farm.subentries.values())
    assert farm.runtime_data.racks == {}
