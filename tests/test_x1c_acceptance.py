"""Issue 13's whole story on one simulated X1C with four AMS units, as a user sees it in Home Assistant.

Every tray shown, a camera frame read through Home Assistant's stream, an error decoded, and two
prints that fill a production run with their grams and costs: nobody types a number but the spools'
prices.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from homeassistant.components import camera
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from PIL import Image
import pytest

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl

from .helpers import V1, body_of, project, queue_file, setup_farm, wait_books, wait_until

JOBS = "/api/print_farm/print-jobs"
GREEN_UUID = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
BLUE_UUID = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


@pytest.fixture
async def x1c(simulator: SimulatorControl) -> Any:
    """A simulated X1C with four AMS units."""
    printer = await simulator.add_printer(model="X1C", ams_units=4)
    yield printer
    await simulator.remove_printer(printer["serial"])


def _tray_states(hass: HomeAssistant, entry_id: str, serial: str) -> dict[tuple[int, int], str]:
    """The tray sensors' states by (unit, slot), read from the entity registry's unique ids."""
    registry = er.async_get(hass)
    shown = {}
    for entity in er.async_entries_for_config_entry(registry, entry_id):
        if entity.domain != "sensor" or not entity.unique_id.startswith(f"{serial}_ams_"):
            continue
        parts = entity.unique_id.removeprefix(f"{serial}_ams_").split("_", 2)
        if len(parts) == 3 and parts[2] == "tray":
            state = hass.states.get(entity.entity_id)
            assert state is not None
            shown[int(parts[0]), int(parts[1])] = state.state
    return shown


async def test_an_x1c_with_four_ams_units_seen_and_accounted_for(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, x1c: dict[str, Any]
) -> None:
    serial = x1c["serial"]
    assert await async_setup_component(hass, "stream", {})
    entry = await setup_farm(hass, x1c)
    farm = entry.runtime_data
    client = await hass_client()

    # Every tray of the four units, each on its unit's device under the printer.
    await wait_until(hass, lambda: len(_tray_states(hass, entry.entry_id, serial)) == 17)
    trays = _tray_states(hass, entry.entry_id, serial)
    # Sixteen AMS trays (the simulator turns its stock spools round by unit) and the external holder.
    assert sorted(trays) == [*((unit, slot) for unit in range(4) for slot in range(4)), (254, 0)]
    assert [trays[unit, slot] for unit in (0, 3) for slot in range(4)] == [
        *("PLA", "PLA", "PETG", "PLA"),
        *("PLA", "PLA", "PLA", "PETG"),
    ]
    devices = dr.async_get(hass)
    printer_device = devices.async_get_device(identifiers={(DOMAIN, serial)})
    assert printer_device is not None
    for unit in range(4):
        device = devices.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_{unit}")})
        assert device is not None
        assert device.via_device_id == printer_device.id

    # A frame of its camera, through Home Assistant's stream of the printer's RTSPS.
    await simulator.set_liveview(serial, True)
    camera_id = er.async_get(hass).async_get_entity_id("camera", DOMAIN, f"{serial}_camera")
    assert camera_id is not None
    await wait_until(hass, lambda: hass.states.get(camera_id).attributes.get("liveview") == "on")
    url = await camera.async_request_stream(hass, camera_id, "hls")
    entity = camera.get_camera_from_entity_id(hass, camera_id)
    try:
        async with asyncio.timeout(30):  # the playlist waits for the first whole segment
            assert (await client.get(url.replace("master_playlist", "playlist"))).status == 200
        image = await camera.async_get_image(hass, camera_id)
        assert Image.open(io.BytesIO(image.content)).format == "JPEG"
    finally:
        assert entity.stream is not None
        for output in entity.stream.outputs().values():
            await entity.stream.remove_provider(output)

    # Its errors, decoded: a fatal HMS entry turns the Error sensor on and names the code.
    await simulator.set_hms(serial, [{"attr": 0x03000100, "code": 0x00010007}])
    error_sensor = er.async_get(hass).async_get_entity_id("binary_sensor", DOMAIN, f"{serial}_error")
    assert error_sensor is not None
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == "on")
    errors_sensor = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{serial}_errors")
    assert errors_sensor is not None
    errors = hass.states.get(errors_sensor)
    assert errors is not None
    assert [item["code"] for item in errors.attributes["errors"]] == ["0300_0100_0001_0007"]
    await simulator.set_hms(serial, [])
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == "off")

    # Two spools the trays' RFID tags place, a machine rate, and a run the two prints fill.
    await simulator.set_tray(serial, 0, 3, {"tray_uuid": GREEN_UUID, "remain": 80})
    await simulator.set_tray(
        serial, 3, 1, {"tray_type": "PETG", "tray_color": "0A2CA5FF", "tray_uuid": BLUE_UUID, "remain": 60}
    )
    spools = {}
    for name, material, uuid, price in (
        ("Green PLA", "PLA", GREEN_UUID, 0.02),
        ("Blue PETG", "PETG", BLUE_UUID, 0.03),
    ):
        body = await body_of(
            await client.post(
                f"{V1}/spools",
                json={"name": name, "material": material, "tray_uuid": uuid, "cost_per_gram": price},
            ),
            201,
        )
        spools[name] = body["id"]
    books = farm.production
    await wait_books(
        hass,
        entry,
        lambda: (books.books.spools[spools["Green PLA"]].tray, books.books.spools[spools["Blue PETG"]].tray)
        == (3, 13),
    )
    run = await body_of(await client.post(f"{V1}/production-runs", json={"status": "pending"}), 201)

    jobs = []
    for content in (project("40"), project("30", "PETG", "#0A2CA5")):
        job_id = await queue_file(client, content, production_run_id=run["id"])
        await body_of(await client.post(f"{JOBS}/{job_id}/start"), 202)
        await simulator.advance(serial, 4000)
        await wait_until(hass, lambda job_id=job_id: farm.jobs.store.jobs[job_id].stage == "awaiting_removal")
        await body_of(await client.post("/api/print_farm/printers/1/bed-clear"), 200)
        jobs.append(await body_of(await client.get(f"{JOBS}/{job_id}"), 200))

    # Each job says what it used and what it cost: 40 g at 0.02 and 30 g at 0.03 (the farm's machine
    # rate is 0 by default; the simulator's clock runs faster than the one machine time is read from).
    assert [[use["spool_id"] for use in job["filament_use"]] for job in jobs] == [
        [spools["Green PLA"]],
        [spools["Blue PETG"]],
    ]
    assert all(job["filament_deducted"] is True for job in jobs)
    assert [job["cost"] for job in jobs] == [0.8, 0.9]
    body = await body_of(await client.get(f"{V1}/production-runs/{run['id']}"), 200)
    assert sorted((m["spool_id"], m["actual_weight_grams"]) for m in body["materials"]) == sorted(
        [(spools["Green PLA"], 40.0), (spools["Blue PETG"], 30.0)]
    )
    assert (body["jobs_succeeded"], body["jobs_failed"]) == (2, 0)
    assert body["actual_print_time_hours"] is not None
    remaining = {
        name: (await body_of(await client.get(f"{V1}/spools/{spool_id}"), 200))["remaining_grams"]
        for name, spool_id in spools.items()
    }
    assert remaining == {"Green PLA": 960.0, "Blue PETG": 970.0}
