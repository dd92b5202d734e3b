"""Entities: snapshots of every platform, writes only on change, and a whole print seen through them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import patch

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, STATE_UNAVAILABLE, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from syrupy.assertion import SnapshotAssertion

from simulator.control import SimulatorControl

from .helpers import setup_farm, wait_until

SERIALS = {"sensor": "01P00A000000101", "binary_sensor": "01P00A000000102", "button": "01P00A000000103"}


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platform", [Platform.SENSOR, Platform.BINARY_SENSOR, Platform.BUTTON])
async def test_platform_snapshot(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    printer = await simulator.add_printer(model="P1S", serial=SERIALS[platform], access_code="12345678")
    try:
        with patch("custom_components.print_farm.integration.PLATFORMS", [platform]):
            entry = await setup_farm(hass, printer, names=["Workshop"])
        entries = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        assert entries
        for entity_entry in entries:
            assert entity_entry.domain == platform
            state = hass.states.get(entity_entry.entity_id)
            assert state is not None
            shown = {
                "entity_id": entity_entry.entity_id,
                "unique_id": entity_entry.unique_id.replace(entry.entry_id, "<entry_id>"),
                "translation_key": entity_entry.translation_key,
                "original_name": entity_entry.original_name,
                "device_class": entity_entry.original_device_class,
                "entity_category": entity_entry.entity_category,
                "capabilities": entity_entry.capabilities,
                "unit": entity_entry.unit_of_measurement,
                "subentry": entity_entry.config_subentry_id == next(iter(entry.subentries)),
                "state": state.state,
                "attributes": dict(state.attributes),
            }
            assert shown == snapshot(name=entity_entry.entity_id)
    finally:
        await simulator.remove_printer(printer["serial"])


async def test_state_written_only_when_value_changes(
    hass: HomeAssistant, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    client = next(iter(entry.runtime_data.printers.values())).client
    writes: list[str] = []

    def count(event: Event) -> None:
        writes.append(event.data["entity_id"])

    hass.bus.async_listen(EVENT_STATE_CHANGED, count)
    hass.bus.async_listen(EVENT_STATE_REPORTED, count, event_filter=callback(lambda data: True))

    def report(fields: dict[str, Any]) -> None:
        updates = client.ingest({"print": {"command": "push_status", **fields}})
        if updates is not None:
            client._report_received(updates)

    report({"mc_percent": 42})
    await hass.async_block_till_done()
    assert writes == ["sensor.printer_1_progress"]
    writes.clear()
    report({"mc_percent": 42, "wifi_signal": client.state.raw.get("wifi_signal"), "sequence_id": "99"})
    report({"bed_temper": (client.fields["bed_temp"] or 0) + 0.04})  # below display precision
    await hass.async_block_till_done()
    assert writes == []
    report({"nozzle_target_temper": 250, "bed_target_temper": 70})
    await hass.async_block_till_done()
    assert sorted(writes) == [
        "sensor.printer_1_bed_target_temperature",
        "sensor.printer_1_nozzle_target_temperature",
    ]
    # Temperatures are whole degrees: tenths move the client's field (REST shows them), not the state.
    report({"bed_temper": 60.2})
    await hass.async_block_till_done()
    writes.clear()
    report({"bed_temper": 60.4})
    await hass.async_block_till_done()
    assert client.fields["bed_temp"] == 60.4
    assert writes == []
    report({"bed_temper": 60.6})
    await hass.async_block_till_done()
    assert writes == ["sensor.printer_1_bed_temperature"]
    assert hass.states.get("sensor.printer_1_bed_temperature").state == "61"


async def test_whole_print_through_entities(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    client = next(iter(entry.runtime_data.printers.values())).client
    assert hass.states.get("button.printer_1_pause_print").state == STATE_UNAVAILABLE
    await simulator.put_file(sim_printer["serial"], "gear.gcode", b"; total layer number: 40\nG28\n")
    device_id = dr.async_get(hass).async_get_device(identifiers={("print_farm", sim_printer["serial"])}).id
    await hass.services.async_call(
        "print_farm", "start_print", {"device_id": device_id, "filename": "gear.gcode"}, blocking=True
    )
    await wait_until(hass, lambda: client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    assert hass.states.get("binary_sensor.printer_1_printing").state == "on"
    assert hass.states.get("button.printer_1_pause_print").state != STATE_UNAVAILABLE
    assert hass.states.get("button.printer_1_resume_print").state == STATE_UNAVAILABLE
    await simulator.advance(sim_printer["serial"], 600)
    await wait_until(
        hass, lambda: client.fields["gcode_state"] == "RUNNING" and (client.fields["layer"] or 0) > 0
    )
    assert hass.states.get("sensor.printer_1_status").state == "running"
    assert hass.states.get("sensor.printer_1_stage").state == "printing"
    assert hass.states.get("sensor.printer_1_total_layers").state == "40"
    assert hass.states.get("sensor.printer_1_end_time").state != "unknown"
    assert hass.states.get("sensor.printer_1_current_file").state == "gear"

    await hass.services.async_call(
        "button", "press", {"entity_id": "button.printer_1_pause_print"}, blocking=True
    )
    await wait_until(hass, lambda: client.fields["gcode_state"] == "PAUSE")
    assert hass.states.get("sensor.printer_1_status").state == "pause"
    assert hass.states.get("button.printer_1_resume_print").state != STATE_UNAVAILABLE
    assert hass.states.get("sensor.printer_1_end_time").state == "unknown"  # it ends when resumed
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.printer_1_resume_print"}, blocking=True
    )
    await wait_until(hass, lambda: client.fields["gcode_state"] == "RUNNING")
    await hass.async_block_till_done()
    end = dt_util.parse_datetime(hass.states.get("sensor.printer_1_end_time").state)
    expected = dt_util.utcnow() + timedelta(minutes=client.fields["remaining_time"])
    assert end is not None
    assert abs((end - expected).total_seconds()) <= 60
    await simulator.advance(sim_printer["serial"], 4 * 3600)
    await wait_until(hass, lambda: client.fields["gcode_state"] == "FINISH")
    assert hass.states.get("sensor.printer_1_status").state == "finish"
    assert hass.states.get("sensor.printer_1_progress").state == "100"
    assert hass.states.get("binary_sensor.printer_1_printing").state == "off"
    assert hass.states.get("sensor.printer_1_end_time").state == "unknown"


async def test_failure_and_offline(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    client = next(iter(entry.runtime_data.printers.values())).client
    await simulator.put_file(sim_printer["serial"], "gear.gcode", b"G28\n")
    await client.start_print("gear.gcode")
    await wait_until(hass, lambda: client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    await simulator.fail(sim_printer["serial"], 117473282)
    await wait_until(hass, lambda: client.fields["gcode_state"] == "FAILED")
    assert hass.states.get("binary_sensor.printer_1_error").state == "on"
    assert hass.states.get("sensor.printer_1_print_error").state == "0700_8002"

    await simulator.offline(sim_printer["serial"])
    await wait_until(hass, lambda: not client.online)
    assert hass.states.get("binary_sensor.printer_1_online").state == "off"
    assert hass.states.get("sensor.printer_1_status").state == "offline"
    assert hass.states.get("sensor.printer_1_progress").state == STATE_UNAVAILABLE
    await simulator.online(sim_printer["serial"])
    await wait_until(hass, lambda: client.online, timeout=20)
    assert hass.states.get("binary_sensor.printer_1_online").state == "on"
