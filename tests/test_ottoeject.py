"""OttoEject in Home Assistant against real Moonraker: flow, entities, run_macro, REST mirror."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl

API = "/api/print_farm/ottoeject"


def ejector_data(ejector: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "host": ejector["host"],
        "port": ejector["port"],
        "api_key": ejector["api_key"],
        "scan_interval": 5,
        "ack_timeout": 1,
        **overrides,
    }


async def setup_ejector(hass: HomeAssistant, ejector: dict[str, Any], **overrides: Any) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Print Farm",
        data={"discovery_port": 0},
        subentries_data=[
            ConfigSubentryData(
                data=ejector_data(ejector, **overrides),
                subentry_type="ottoeject",
                title="Robot",
                unique_id=None,
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = next(iter(entry.runtime_data.ejectors.values()))
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    return entry


def coordinator_of(entry: MockConfigEntry) -> Any:
    return next(iter(entry.runtime_data.ejectors.values()))


async def test_add_ottoeject_flow(hass: HomeAssistant, sim_ejector: dict[str, Any]) -> None:
    entry = MockConfigEntry(domain=DOMAIN, title="Print Farm", data={"discovery_port": 0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "ottoeject"), context={"source": SOURCE_USER}
    )
    form = {
        "name": "Robot",
        "host": sim_ejector["host"],
        "port": 1,
        "api_key": sim_ejector["api_key"],
        "advanced": {"scan_interval": 5, "ack_timeout": 30},
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "port": sim_ejector["port"], "api_key": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "port": sim_ejector["port"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["port"] == sim_ejector["port"]
    await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "ottoeject"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "port": sim_ejector["port"]}
    )
    assert result["errors"] == {"base": "already_configured"}


async def test_entities_and_buttons(
    hass: HomeAssistant, simulator: SimulatorControl, sim_ejector: dict[str, Any]
) -> None:
    entry = await setup_ejector(hass, sim_ejector)
    coordinator = coordinator_of(entry)
    assert hass.states.get("sensor.robot_status").state == "online"
    assert "OTTOEJECT_HOME" in coordinator.macros
    await hass.services.async_call("button", "press", {"entity_id": "button.robot_home"}, blocking=True)
    # ack_timeout is 1 s and the macro takes 20 simulated s on a manual clock: still running.
    await coordinator.async_refresh()
    assert hass.states.get("sensor.robot_status").state == "ejecting"
    assert hass.states.get("sensor.robot_current_macro").state == "OTTOEJECT_HOME"
    assert hass.states.get("button.robot_park").state == "unavailable"
    await simulator.advance_ottoeject(sim_ejector["id"], 25)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.robot_status").state == "online"
    scripts = (await simulator.ottoeject(sim_ejector["id"]))["scripts"]
    assert [script for script in scripts if "OTTOEJECT_HOME" in str(script)].__len__() == 1


async def test_status_mapping(
    hass: HomeAssistant, simulator: SimulatorControl, sim_ejector: dict[str, Any]
) -> None:
    entry = await setup_ejector(hass, sim_ejector)
    coordinator = coordinator_of(entry)
    await simulator.set_klippy(sim_ejector["id"], "shutdown")
    await coordinator.async_refresh()
    assert hass.states.get("sensor.robot_status").state == "issue"
    await simulator.stop_moonraker(sim_ejector["id"])
    await coordinator.async_refresh()
    assert hass.states.get("sensor.robot_status").state == "offline"
    assert hass.states.get("sensor.robot_current_macro").state == "unavailable"
    await simulator.start_moonraker(sim_ejector["id"])
    await simulator.set_klippy(sim_ejector["id"], "ready")


async def test_run_macro_action(
    hass: HomeAssistant, simulator: SimulatorControl, sim_ejector: dict[str, Any]
) -> None:
    entry = await setup_ejector(hass, sim_ejector, ack_timeout=30)
    device = next(device for device in dr.async_get(hass).devices.values() if device.model == "OttoEject")
    await simulator.set_macro_seconds(sim_ejector["id"], 0)
    response = await hass.services.async_call(
        DOMAIN,
        "run_macro",
        {"device_id": device.id, "macro": "park_ottoeject"},
        blocking=True,
        return_response=True,
    )
    assert response == {
        "macro": "PARK_OTTOEJECT",
        "acknowledged": True,
        "response": {"result": "ok"},
        "detail": None,
    }
    await simulator.advance_ottoeject(sim_ejector["id"], 1)  # its last move runs out
    await coordinator_of(entry).async_refresh()
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "run_macro", {"device_id": device.id, "macro": "LAUNCH_ROCKET"}, blocking=True
        )
    assert caught.value.translation_key == "unknown_macro"
    scripts = (await simulator.ottoeject(sim_ejector["id"]))["scripts"]
    assert not any("LAUNCH_ROCKET" in str(script) for script in scripts)
    assert coordinator_of(entry).ejector_id == 1


@pytest.fixture
async def client(hass: HomeAssistant, hass_client: Any, sim_ejector: dict[str, Any]) -> TestClient:
    await setup_ejector(hass, sim_ejector)
    return await hass_client()


async def test_rest_routes(
    hass: HomeAssistant, client: TestClient, simulator: SimulatorControl, sim_ejector: dict[str, Any]
) -> None:
    assert await (await client.get(API)).json() == [{"id": 1, "device_name": "Robot", "status": "ONLINE"}]
    assert await (await client.get(f"{API}/1")).json() == {
        "id": 1,
        "device_name": "Robot",
        "status": "ONLINE",
    }
    assert await (await client.get(f"{API}/1/status")).json() == {
        "id": 1,
        "device_name": "Robot",
        "status": "ONLINE",
    }
    assert (await client.get(f"{API}/7")).status == 404

    response = await client.post(f"{API}/1/macros", json={"macro": "NOPE"})
    assert response.status == 400
    # Past the acknowledgement wait (1 s here): the seed's 502 body, and the macro keeps running.
    response = await client.post(f"{API}/1/macros", json={"macro": "EJECT_FROM_P1"})
    assert response.status == 502
    body = await response.json()
    assert body["error"] == "Macro Execution Proxy Error"
    assert body["message"].startswith(
        "Command 'EJECT_FROM_P1' sent to Ottoeject, but acknowledgement from device timed out."
    )
    assert body["moonraker_details"] is None
    assert (await (await client.get(f"{API}/1/status")).json())["status"] == "EJECTING"
    response = await client.post(f"{API}/1/macros", json={"macro": "OTTOEJECT_HOME"})
    assert response.status == 409  # busy: never queued behind the running one
    await simulator.advance_ottoeject(sim_ejector["id"], 25)
    assert (await (await client.get(f"{API}/1/status")).json())["status"] == "ONLINE"
    scripts = [str(script) for script in (await simulator.ottoeject(sim_ejector["id"]))["scripts"]]
    assert sum("EJECT_FROM_P1" in script for script in scripts) == 1

    await simulator.set_macro_seconds(sim_ejector["id"], 0)
    response = await client.post(f"{API}/1/macros", json={"macro": "STORE_TO_SLOT_2"})
    assert response.status == 202
    assert await response.json() == {
        "message": "Macro 'STORE_TO_SLOT_2' command sent to Ottoeject 1.",
        "moonraker_response": {"result": "ok"},
    }
    await simulator.advance_ottoeject(sim_ejector["id"], 1)  # its last move runs out

    response = await client.put(f"{API}/1", json={"device_name": "Robot 2"})
    assert await response.json() == {
        "id": 1,
        "device_name": "Robot 2",
        "status": "ONLINE",
        "message": "Ottoeject updated successfully",
    }
    response = await client.put(f"{API}/1", json={"ip_address": "127.0.0.1", "port": 1})
    assert response.status == 502
    response = await client.delete(f"{API}/1")
    assert await response.json() == {"message": "Ottoeject deleted successfully"}
    assert (await client.get(f"{API}/1")).status == 404

    response = await client.post(
        API,
        json={
            "device_name": "Again",
            "ip_address": sim_ejector["host"],
            "port": sim_ejector["port"],
            "api_key": sim_ejector["api_key"],
        },
    )
    assert response.status == 201
    assert await response.json() == {
        "id": 2,
        "device_name": "Again",
        "status": "ONLINE",
        "message": "Ottoeject registered successfully",
    }
    response = await client.post(
        API, json={"device_name": "Twice", "ip_address": sim_ejector["host"], "port": sim_ejector["port"]}
    )
    assert response.status == 409
    assert (await client.post(API, json={"device_name": "No address"})).status == 400
    assert sim_ejector["api_key"] not in await (await client.get(f"{API}/2")).text()


async def test_rest_needs_admin(
    hass: HomeAssistant, aiohttp_client: Any, hass_read_only_access_token: str, client: TestClient
) -> None:
    reader = await aiohttp_client(
        hass.http.app, headers={"Authorization": f"Bearer {hass_read_only_access_token}"}
    )
    assert (await reader.get(API)).status == 200
    for method, path in (
        ("post", API),
        ("put", f"{API}/1"),
        ("delete", f"{API}/1"),
        ("post", f"{API}/1/macros"),
    ):
        assert (await getattr(reader, method)(path, json={})).status == 403
