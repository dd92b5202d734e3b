"""Test helpers: set up the farm against simulated printers and wait for what they report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.config_entries import ConfigSubentryData, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.print_farm.const import DOMAIN

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
