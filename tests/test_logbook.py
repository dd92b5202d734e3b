"""The logbook tells the farm's events in words, on the printer, shelf or spool they concern."""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.logbook import STAGE_MESSAGES
from custom_components.print_farm.rules.jobs import RUNNING_STAGES, STAGE_OF_STATUS
from custom_components.print_farm.rules.workflow import WORKFLOW_STAGES
from simulator.control import SimulatorControl

from .helpers import GCODE, queue_job, setup_farm, wait_until

API = "/api/print_farm"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_db_url: str, enable_custom_integrations: None) -> None:
    """The recorder's database before Home Assistant (the logbook reads it); then ours, as everywhere."""


async def _logbook(hass: HomeAssistant, client: Any, since: str) -> list[dict[str, Any]]:
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)
    response = await client.get(f"/api/logbook/{since}")
    assert response.status == 200, await response.text()
    return [entry for entry in await response.json() if entry.get("domain") == DOMAIN]


async def test_events_in_words(
    recorder_mock: Any,
    hass: HomeAssistant,
    hass_client: Any,
    hass_ws_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    entity_registry: er.EntityRegistry,
) -> None:
    """A job queued, printed, finished and cleared, a shelf set and an HMS error, as the logbook tells them."""
    since = dt_util.utcnow().isoformat()
    farm = await setup_farm(hass, sim_printer, names=["Bench"])
    assert await async_setup_component(hass, "logbook", {})
    client = await hass_client()
    serial = sim_printer["serial"]
    status = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_status")
    assert status is not None

    job_id = await queue_job(client, "cube.gcode", GCODE)
    assert (await client.post(f"{API}/print-jobs/{job_id}/start")).status == 202
    printer = farm.runtime_data.printer_by_id(1)
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    await simulator.advance(serial, 3600)
    await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[job_id].stage == "awaiting_removal")
    assert (await client.post(f"{API}/printers/1/bed-clear")).status == 200
    rack = await client.post(
        f"{API}/ottoracks",
        json={"name": "Wall", "number_of_shelves": 2, "shelf_spacing_mm": 80, "bed_size": "256x256"},
    )
    assert rack.status == 201
    body = {"has_plate": True, "plate_state": "with_print", "print_job_id": job_id}
    assert (await client.put(f"{API}/ottoracks/1/shelves/2", json=body)).status == 200
    await simulator.set_hms(serial, [{"attr": 0x03000100, "code": 0x00010007}])
    await wait_until(hass, lambda: bool(printer.client.fields["errors"]))

    entries = await _logbook(hass, client, since)
    told = [(entry["name"], entry["message"], entry.get("entity_id")) for entry in entries]
    shelf = entity_registry.async_get_entity_id(
        "select", DOMAIN, f"rack_{farm.runtime_data.rack_by_id(1).subentry.subentry_id}_shelf_2"
    )
    assert shelf is not None
    job = f"job {job_id} (cube.gcode)"
    assert told == [
        ("Bench", f"queued {job}", status),
        ("Bench", f"started printing {job}", status),
        ("Bench", f"{job} is printing", status),
        ("Bench", f"{job} finished printing, its plate waits to be taken off", status),
        ("Bench", f"completed {job}", status),
        ("Bench", f"{job} is completed", status),
        ("Wall", f"shelf 2 now holds a finished print (job {job_id})", shelf),
        (
            "Bench",
            "reported The heated bed temperature reading is abnormal; its sensor may be disconnected. "
            "(fatal HMS 0300_0100_0001_0007)",
            status,
        ),
    ]

    # Each device's page shows its own: the events' data name the device.
    registry = dr.async_get(hass)
    device = registry.async_get_device(identifiers={(DOMAIN, serial)})
    wall = registry.async_get_device(
        identifiers={(DOMAIN, f"rack_{farm.runtime_data.rack_by_id(1).subentry.subentry_id}")}
    )
    assert device is not None
    assert wall is not None
    ws = await hass_ws_client()
    for number, device_id in enumerate((device.id, wall.id), start=1):
        await ws.send_json(
            {"id": number, "type": "logbook/get_events", "start_time": since, "device_ids": [device_id]}
        )
        answer = await ws.receive_json()
        assert answer["success"], answer
        assert [entry["message"] for entry in answer["result"] if entry.get("domain") == DOMAIN] == [
            message for name, message, _ in told if name == ("Bench" if device_id == device.id else "Wall")
        ]


async def test_bus_only_events_in_words(
    recorder_mock: Any,
    hass: HomeAssistant,
    hass_client: Any,
    hass_ws_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """A job for any printer, one for a print started elsewhere; the spool events fired with their real payloads."""
    since = dt_util.utcnow().isoformat()
    await setup_farm(hass, sim_printer, names=["Bench"])
    assert await async_setup_component(hass, "logbook", {})
    client = await hass_client()
    status = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{sim_printer['serial']}_status")
    # A job for any printer is queued through REST; the spool events come from the books.
    item = await (await client.post(f"{API}/print-jobs/upload", data=_form())).json()
    assert (
        await client.post(
            f"{API}/print-jobs", json={"print_item_id": item["print_item_id"], "printer_id": None}
        )
    ).status == 201
    # A print started on the printer's screen gets a job of its own.
    await simulator.put_file(sim_printer["serial"], "Widget.gcode", GCODE)
    await simulator.start_print(sim_printer["serial"], "Widget.gcode")
    jobs = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.jobs
    await wait_until(hass, lambda: 2 in jobs.store.jobs)
    # A spool of the books runs low (below the default 100 g) when a person corrects what it holds.
    spool = await client.post(f"{API}/v1/spools", json={"name": "Galaxy black", "material": "PLA"})
    assert spool.status == 201, await spool.text()
    spool_id = (await spool.json())["id"]
    await hass.services.async_call(
        DOMAIN, "adjust_spool", {"spool_id": spool_id, "remaining_grams": 80}, blocking=True
    )
    hass.bus.async_fire(
        f"{DOMAIN}_spool_empty_soon",
        {
            "material": "PETG",
            "needed_grams": 412.5,
            "available_grams": 120,
            "job_ids": [1, 4],
            "message": "the next 2 jobs need 412.5 g of PETG, 120 g left",
        },
    )
    entries = await _logbook(hass, client, since)
    remaining = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"spool_{spool_id}_remaining")
    assert remaining is not None
    events = er.async_get(hass).async_get_entity_id(
        "event", DOMAIN, f"{hass.config_entries.async_entries(DOMAIN)[0].entry_id}_job_events"
    )
    assert [(entry["name"], entry["message"], entry.get("entity_id")) for entry in entries] == [
        ("Print Farm", "queued job 1 (cube.gcode) for the first free printer that fits", events),
        ("Bench", "gave job 2 (Widget.gcode) to a print started outside Home Assistant", status),
        ("Bench", "started printing job 2 (Widget.gcode)", status),
        ("Bench", "job 2 (Widget.gcode) is printing", status),
        ("Galaxy black", "is low: 80.0 g of PLA left (below 100.0 g)", remaining),
        ("Print Farm", "the queued jobs (1, 4) need 412.5 g of PETG, only 120 g is loaded", None),
    ]

    # The spool's device page shows it.
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"spool_{spool_id}")})
    assert device is not None
    ws = await hass_ws_client()
    await ws.send_json(
        {"id": 1, "type": "logbook/get_events", "start_time": since, "device_ids": [device.id]}
    )
    answer = await ws.receive_json()
    assert [entry["message"] for entry in answer["result"] if entry.get("domain") == DOMAIN] == [
        "is low: 80.0 g of PLA left (below 100.0 g)"
    ]


async def test_odd_event_data_is_told_as_well_as_it_can(
    recorder_mock: Any, hass: HomeAssistant, hass_client: Any, sim_printer: dict[str, Any]
) -> None:
    """Events fired by hand with data of the wrong shape: an entry each, no error."""
    since = dt_util.utcnow().isoformat()
    await setup_farm(hass, sim_printer, names=["Bench"])
    assert await async_setup_component(hass, "logbook", {})
    client = await hass_client()
    hass.bus.async_fire(f"{DOMAIN}_job_started", {"job": "12"})
    hass.bus.async_fire(f"{DOMAIN}_job_failed", {"job": {"id": 3, "printer": ["Bench"]}})
    hass.bus.async_fire(
        f"{DOMAIN}_shelf_changed",
        {"rack_name": "Wall", "shelf_number": 4, "has_plate": True, "plate_state": ["x"]},
    )
    hass.bus.async_fire(f"{DOMAIN}_workflow_storing", {"job_id": 5, "filename": "cube.gcode"})
    hass.bus.async_fire(f"{DOMAIN}_workflow_loading", {"job_id": 5, "shelf": 2, "printer_name": 7})
    entries = await _logbook(hass, client, since)
    assert [(entry["name"], entry["message"]) for entry in entries] == [
        ("Print Farm", "started printing job None"),
        ("Print Farm", "failed job 3"),
        ("Wall", "shelf 4 now holds an unknown content"),
        ("Print Farm", "job 5 (cube.gcode): the OttoEject stores the plate on the rack"),
        ("7", "job 5: the OttoEject loads a fresh plate from shelf 2"),
    ]


def test_every_stage_is_told() -> None:
    """Each stage a job can reach (docs/API.md's table, the code's lists) has its words: none vanishes."""
    table = (Path(__file__).resolve().parents[1] / "docs" / "API.md").read_text()
    start = table.index("| stage | status | meaning |")
    rows = table[start : table.index("\n\n", start)].splitlines()[2:]
    documented = {stage for row in rows for stage in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert len(documented) == 14
    stages = documented | set(WORKFLOW_STAGES) | set(STAGE_OF_STATUS.values()) | set(RUNNING_STAGES)
    assert stages - set(STAGE_MESSAGES) == set()


def _form() -> Any:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", GCODE, filename="cube.gcode")
    return form
