"""Test helpers: set up the farm against simulated printers and wait for what they report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import io
from typing import Any
import zipfile

from homeassistant.config_entries import ConfigSubentryData, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl

from .conftest import printer_subentry_data


def farm_entry(*printers: dict[str, Any], names: list[str] | None = None) -> MockConfigEntry:
    """A Print Farm entry with one subentry per simulated printer (discovery on loopback, port 0)."""
    subentries = [
        ConfigSubentryData(
            data=printer_subentry_data(printer),
            subentry_type="printer",
            title=(names[index] if names else f"Printer {index + 1}"),
            unique_id=printer["serial"],
        )
        for index, printer in enumerate(printers)
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        title="Print Farm",
        data={"discovery_host": "127.0.0.1", "discovery_port": 0},
        subentries_data=subentries,
    )


async def setup_farm(
    hass: HomeAssistant, *printers: dict[str, Any], names: list[str] | None = None
) -> MockConfigEntry:
    """Add and set up the farm, and wait until every printer has reported."""
    entry = farm_entry(*printers, names=names)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for printer in entry.runtime_data.printers.values():
        await printer.client.wait_for_first_report(10)
        await wait_until(hass, lambda printer=printer: printer.client.fields["gcode_state"] is not None)
    await hass.async_block_till_done()
    return entry


async def wait_until(hass: HomeAssistant, condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for a condition that a printer's report or a job's change will make true, woken by each."""
    changed = asyncio.Event()
    farms = [
        entry.runtime_data
        for entry in hass.config_entries.async_entries(DOMAIN)
        if hasattr(entry, "runtime_data")
    ]
    removers = [
        printer.client.add_listener(lambda fields: changed.set())
        for farm in farms
        for printer in farm.printers.values()
    ]
    removers += [farm.jobs.async_add_listener(changed.set) for farm in farms]
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await changed.wait()
                changed.clear()
    finally:
        for remove in removers:
            remove()
    await hass.async_block_till_done()


JOBS_API = "/api/print_farm/print-jobs"


async def upload_item(client: Any, name: str, content: bytes) -> Any:
    """Upload a file as a print item (POST /print-jobs/upload); the response."""
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", content, filename=name)
    return await client.post(f"{JOBS_API}/upload", data=form)


async def queue_job(client: Any, name: str, content: bytes, **job: Any) -> int:
    """Upload a file and queue a job of it on printer 1 (`job` adds to the body); the job's id."""
    item = await (await upload_item(client, name, content)).json()
    response = await client.post(
        JOBS_API, json={"print_item_id": item["print_item_id"], "printer_id": 1, **job}
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


EJECTOR = "ottoeject-1"
RACK = "rack-1"


def ejection_entry(
    printers: list[tuple[dict[str, Any], str]], ejector: dict[str, Any], shelves: int
) -> MockConfigEntry:
    """A farm whose printers (with their positions) share one OttoEject and its rack."""
    subentries = [
        ConfigSubentryDataWithId(
            subentry_id=EJECTOR,
            data={
                "host": ejector["host"],
                "port": ejector["port"],
                "api_key": ejector["api_key"],
                "scan_interval": 5,
                "ack_timeout": 1,
            },
            subentry_type="ottoeject",
            title="OttoEject",
            unique_id=None,
        ),
        ConfigSubentryDataWithId(
            subentry_id=RACK,
            data={
                "number_of_shelves": shelves,
                "shelf_spacing_mm": 80,
                "bed_size": "256x256",
                "ottoeject": EJECTOR,
            },
            subentry_type="rack",
            title="Rack",
            unique_id=None,
        ),
    ]
    subentries += [
        ConfigSubentryDataWithId(
            subentry_id=f"printer-{index}",
            data={
                **printer_subentry_data(printer),
                "ottoeject": EJECTOR,
                "ottoeject_position": position,
                "settle_s": 0,
            },
            subentry_type="printer",
            title=f"Printer {index}",
            unique_id=printer["serial"],
        )
        for index, (printer, position) in enumerate(printers, start=1)
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        title="Print Farm",
        data={"discovery_host": "127.0.0.1", "discovery_port": 0},
        subentries_data=subentries,
    )


async def setup_ejection(hass: HomeAssistant, entry: MockConfigEntry, empty_plates: list[int]) -> Any:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    farm = entry.runtime_data
    for printer in farm.printers.values():
        await printer.client.wait_for_first_report(10)
        await wait_until(hass, lambda printer=printer: printer.client.fields["gcode_state"] is not None)
        await farm.jobs.async_set_bed_clear(printer.printer_id)
    rack = farm.racks[RACK]
    for number in empty_plates:
        await rack.async_set_shelf_content(number, "empty")
    ejector = farm.ejectors[EJECTOR]
    await ejector.async_refresh()
    await wait_until(hass, lambda: ejector.watcher.connected)
    return farm


# --- shared by the test modules: files, jobs, OttoEject runs, spools --------------------------------

# A small G-code file with its slicer's metadata (45 minutes of print).
GCODE = (
    b"; generated by PrusaSlicer 2.7.4 on 2026-01-01 at 10:00:00 UTC\n"
    b"G28\n;LAYER_CHANGE\nG1 Z0.2\n;LAYER_CHANGE\nG1 Z0.4\n"
    b"; filament used [mm] = 1520.50\n; filament used [g] = 4.53\n"
    b"; estimated printing time (normal mode) = 45m 30s\n; total layers count = 2\n"
)
# A shorter one (10 minutes): a print the ejection tests finish within a few simulated minutes.
EJECTION_GCODE = (
    b"; generated by PrusaSlicer 2.7.4 on 2026-01-01 at 10:00:00 UTC\n"
    b"G28\n;LAYER_CHANGE\nG1 Z0.2\n; estimated printing time (normal mode) = 10m 0s\n"
)


async def start_one(hass: HomeAssistant, hass_client: Any, entry: MockConfigEntry) -> Any:
    """Queue a job of EJECTION_GCODE on printer 1 with auto start; the job once it prints."""
    client = await hass_client()
    job_id = await queue_job(client, "cube.gcode", EJECTION_GCODE, auto_start=True)
    jobs = entry.runtime_data.jobs
    await wait_until(hass, lambda: jobs.store.jobs[job_id].status == "PRINTING")
    return jobs.store.jobs[job_id]


async def finish_and_cool(hass: HomeAssistant, simulator: SimulatorControl, serial: str, job: Any) -> None:
    """Print the job to its end and let the bed cool."""
    await simulator.advance(serial, 900)  # the bed may cool after FINISH within these 900 s
    await wait_until(hass, lambda: job.workflow is not None)
    await simulator.advance(serial, 300)


async def drive(
    hass: HomeAssistant, simulator: SimulatorControl, ejector_id: int, done: Callable[[], bool]
) -> None:
    """Let every macro the OttoEject runs end, until done() holds."""
    async with asyncio.timeout(30):
        while not done():
            details = await simulator.ottoeject(ejector_id)
            if details["running"] or details["idle_timeout"] == "Printing":
                await simulator.advance_ottoeject(ejector_id, 20)
            await asyncio.sleep(0.05)
    await hass.async_block_till_done()


async def set_templates(
    hass: HomeAssistant, entry: MockConfigEntry, ejector: dict[str, Any], **templates: str
) -> dict[str, Any]:
    """Change the OttoEject's macro templates with its reconfigure form; the form's result."""
    flow = await entry.start_subentry_reconfigure_flow(hass, "ottoeject", EJECTOR)
    result: dict[str, Any] = await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        {
            "host": ejector["host"],
            "port": ejector["port"],
            "advanced": {"scan_interval": 5, "ack_timeout": 1},
            "macros": templates,
        },
    )
    await hass.async_block_till_done()
    return result


def paused(job: Any) -> bool:
    """The job's ejection workflow waits for a person."""
    return job.workflow is not None and job.workflow["state"] == "paused"


# The books' helpers: a spool placed by its RFID, a one-filament project, the books' next change.
V1 = "/api/print_farm/v1"
UUID = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
GREEN = 3  # the simulated AMS's fourth tray (unit 0, slot 3) holds green PLA


def project(grams: str = "12.34", material: str = "PLA", color: str = "#00AE42") -> bytes:
    """A one-plate .gcode.3mf of one filament, 30 minutes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "Metadata/slice_info.config",
            '<?xml version="1.0" encoding="UTF-8"?>\n<config>\n  <plate>\n'
            '    <metadata key="index" value="1"/>\n    <metadata key="prediction" value="1800"/>\n'
            f'    <filament id="1" type="{material}" color="{color}" used_m="4.10" used_g="{grams}"/>\n'
            "  </plate>\n</config>\n",
        )
        archive.writestr(
            "Metadata/plate_1.gcode",
            "; HEADER_BLOCK_START\n; BambuStudio 02.00.00.00\n; total estimated time: 30m 0s\n"
            "; total layer number: 60\n; HEADER_BLOCK_END\nG28\n",
        )
    return buffer.getvalue()


async def wait_books(hass: HomeAssistant, farm: Any, condition: Callable[[], bool]) -> None:
    """Wait for a condition the books' next changes make true."""
    changed = asyncio.Event()
    remove = farm.runtime_data.production.async_add_listener(changed.set)
    try:
        async with asyncio.timeout(10):
            while not condition():
                await changed.wait()
                changed.clear()
    finally:
        remove()


async def body_of(response: Any, status: int) -> Any:
    """The response's JSON body, once its status is the one expected."""
    assert response.status == status, await response.text()
    return await response.json()


async def queue_file(client: Any, content: bytes, name: str = "part.gcode.3mf", **job: Any) -> int:
    """Upload a file and queue a job of it on printer 1; the job's id."""
    item = await body_of(await upload_item(client, name, content), 200)
    created = await body_of(
        await client.post(JOBS_API, json={"print_item_id": item["print_item_id"], "printer_id": 1, **job}),
        201,
    )
    return int(created["id"])


async def placed_spool(
    hass: HomeAssistant, client: Any, farm: Any, simulator: SimulatorControl, serial: str, **spool: Any
) -> str:
    """A spool recording the green tray's RFID: the tray reads it, and the spool is placed there."""
    await simulator.set_tray(serial, 0, GREEN, {"tray_uuid": UUID, "remain": 80})
    body = await body_of(
        await client.post(
            f"{V1}/spools", json={"name": "Green PLA", "material": "PLA", "tray_uuid": UUID, **spool}
        ),
        201,
    )
    books = farm.runtime_data.production
    await wait_books(hass, farm, lambda: books.books.spools[body["id"]].tray == GREEN)
    return str(body["id"])
