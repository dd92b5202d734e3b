"""Setting up the farm: printers connect, subentries come and go without restarting the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.rules import files

from .conftest import printer_subentry_data
from .helpers import setup_farm, wait_until


async def test_setup_and_unload(hass: HomeAssistant, sim_printer: dict[str, Any]) -> None:
    entry = await setup_farm(hass, sim_printer)
    assert entry.state is ConfigEntryState.LOADED
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
    assert device is not None
    assert device.model == "P1S"
    assert device.sw_version
    assert device.serial_number == sim_printer["serial"]
    assert hass.states.get("sensor.printer_1_status").state == "idle"
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_subentry_added_and_removed_at_runtime(
    hass: HomeAssistant, sim_printer: dict[str, Any], sim_x1: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    first = next(iter(entry.runtime_data.printers.values()))
    subentry = ConfigSubentry(
        data=printer_subentry_data(sim_x1), subentry_type="printer", title="X1", unique_id=sim_x1["serial"]
    )
    hass.config_entries.async_add_subentry(entry, subentry)
    await hass.async_block_till_done()
    farm = entry.runtime_data
    assert set(farm.printers) == {first.subentry.subentry_id, subentry.subentry_id}
    # The first printer kept its connection.
    assert farm.printers[first.subentry.subentry_id] is first
    assert first.client.online
    await wait_until(
        hass, lambda: farm.printers[subentry.subentry_id].client.fields["gcode_state"] is not None
    )
    assert hass.states.get("sensor.x1_status").state == "idle"
    assert farm.printers[subentry.subentry_id].printer_id == 2

    hass.config_entries.async_remove_subentry(entry, subentry.subentry_id)
    await hass.async_block_till_done()
    assert set(farm.printers) == {first.subentry.subentry_id}
    assert er.async_get(hass).async_get("sensor.x1_status") is None
    assert hass.states.get("sensor.x1_status") is None


async def test_blocking_call_detector_sees_the_integration(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """The fixture that fails tests on blocking calls is live: an open() made by package code is reported."""
    package_file = files.__file__
    code = compile("Path(__file__).read_text()", package_file, "exec")
    exec(code, {"Path": Path, "__file__": package_file})  # runs as if it were a line of the package
    assert any("Detected blocking call" in record.getMessage() for record in caplog.records)
    caplog.clear()  # this one was on purpose
