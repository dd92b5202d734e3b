"""AMS units and trays, decoded errors, chamber light and print speed, against simulated printers."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from syrupy.assertion import SnapshotAssertion

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.protocols.bambu import ConnectionState
from simulator.control import SimulatorControl

from .helpers import setup_farm, wait_until

CANCELLED = 0x0300400C


def _tray_entity(
    registry: er.EntityRegistry, serial: str, unit: int, slot: int, key: str = "tray"
) -> str | None:
    return registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_ams_{unit}_{slot}_{key}")


async def test_x1c_with_four_ams_units(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Every unit is a device under the printer, every tray a sensor, the external spool on the printer."""
    printer = await simulator.add_printer(model="X1C", ams_units=4, access_code="12345678")
    serial = printer["serial"]
    try:
        await simulator.set_tray(
            serial,
            2,
            1,
            {
                "tray_type": "PETG",
                "tray_color": "1E50DCFF",
                "remain": 37,
                "tray_uuid": "AB" * 16,
                "tag_uid": "CD" * 8,
            },
        )
        entry = await setup_farm(hass, printer, names=["Carbon"])
        await wait_until(hass, lambda: _tray_entity(entity_registry, serial, 3, 3) is not None)
        printer_device = device_registry.async_get_device(identifiers={(DOMAIN, serial)})
        assert printer_device is not None
        units = [
            device_registry.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_{n}")}) for n in range(4)
        ]
        assert all(unit is not None and unit.via_device_id == printer_device.id for unit in units)
        assert [unit.name for unit in units if unit] == [f"Carbon AMS {n}" for n in range(1, 5)]

        trays = [_tray_entity(entity_registry, serial, unit, slot) for unit in range(4) for slot in range(4)]
        assert all(trays)
        state = hass.states.get(_tray_entity(entity_registry, serial, 2, 1) or "")
        assert state is not None
        assert state.state == "PETG"
        assert state.attributes["color"] == "#1E50DC"
        assert state.attributes["color_name"] == "blue"
        assert (
            state.attributes["remaining"],
            state.attributes["tray_uuid"],
            state.attributes["tag_uid"],
        ) == (
            37,
            "AB" * 16,
            "CD" * 8,
        )
        assert state.attributes["active"] is False
        remaining = hass.states.get(_tray_entity(entity_registry, serial, 2, 1, "remaining") or "")
        assert remaining is not None
        assert remaining.state == "37"
        tray_entry = entity_registry.async_get(_tray_entity(entity_registry, serial, 2, 1) or "")
        assert tray_entry is not None
        assert tray_entry.device_id == units[2].id  # type: ignore[union-attr]
        external = entity_registry.async_get(_tray_entity(entity_registry, serial, 254, 0) or "")
        assert external is not None
        assert external.device_id == printer_device.id
        humidity = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_ams_3_humidity")
        assert humidity is not None
        humidity_state = hass.states.get(humidity)
        assert humidity_state is not None
        assert humidity_state.state == "20"
        active = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_active_tray")
        assert active is not None
        active_state = hass.states.get(active)
        assert active_state is not None
        assert active_state.state == "none"  # tray_now 255: nothing loaded
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await simulator.remove_printer(serial)


async def test_ams_changes_in_deltas(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A P1S's deltas: a tray emptied, a unit added, a unit removed with its device and entities."""
    printer = await simulator.add_printer(model="P1S", ams_units=2)
    serial = printer["serial"]
    try:
        entry = await setup_farm(hass, printer)
        await wait_until(hass, lambda: _tray_entity(entity_registry, serial, 1, 3) is not None)
        tray = _tray_entity(entity_registry, serial, 1, 2) or ""
        assert hass.states.get(tray).state == "PLA"  # type: ignore[union-attr]

        # A print feeds from unit 0's first tray (tray_now "0"): that tray is the active one.
        first = _tray_entity(entity_registry, serial, 0, 0) or ""
        assert hass.states.get(first).attributes["active"] is False  # type: ignore[union-attr]
        await simulator.put_file(serial, "cube.gcode", b"G28\n")
        await simulator.start_print(serial, "cube.gcode")
        await wait_until(hass, lambda: hass.states.get(first).attributes["active"])  # type: ignore[union-attr]
        assert hass.states.get(tray).attributes["active"] is False  # type: ignore[union-attr]
        active = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_active_tray") or ""
        assert hass.states.get(active).state == "ams_1_tray_1"  # type: ignore[union-attr]

        await simulator.set_tray(serial, 1, 2, None)
        await wait_until(hass, lambda: hass.states.get(tray).state == "empty")  # type: ignore[union-attr]
        remaining = hass.states.get(_tray_entity(entity_registry, serial, 1, 2, "remaining") or "")
        assert remaining is not None
        assert remaining.state == "unknown"

        await simulator.add_ams_unit(serial, {"id": 128, "kind": "ams_ht"})
        await wait_until(hass, lambda: _tray_entity(entity_registry, serial, 128, 0) is not None)
        ht = device_registry.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_128")})
        assert ht is not None
        assert ht.model == "AMS HT"
        assert (ht.name or "").endswith("AMS HT 1")

        kept = _tray_entity(entity_registry, serial, 0, 0)
        await simulator.remove_ams_unit(serial, 1)
        await wait_until(hass, lambda: _tray_entity(entity_registry, serial, 1, 0) is None)
        assert device_registry.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_1")}) is None
        assert hass.states.get(tray) is None
        assert entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_ams_1_humidity") is None
        assert _tray_entity(entity_registry, serial, 0, 0) == kept
        assert hass.states.get(kept or "").state == "PLA"  # type: ignore[union-attr]
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await simulator.remove_printer(serial)


async def test_errors_decoded_and_announced_once(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    entity_registry: er.EntityRegistry,
) -> None:
    """A fatal HMS entry: Error on, one event; an info entry is no error; the user's cancel neither."""
    serial = sim_printer["serial"]
    events: list[Event] = []
    hass.bus.async_listen(f"{DOMAIN}_printer_error", callback(lambda event: events.append(event)))
    await setup_farm(hass, sim_printer, names=["Shelf"])
    error_sensor = "binary_sensor.shelf_error"
    errors = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_errors") or ""
    assert hass.states.get(error_sensor).state == STATE_OFF  # type: ignore[union-attr]

    info_only = {"attr": 0x07002000, "code": 0x00040001}
    await simulator.set_hms(serial, [info_only])
    await wait_until(hass, lambda: hass.states.get(errors).state == "1")  # type: ignore[union-attr]
    assert hass.states.get(error_sensor).state == STATE_OFF  # type: ignore[union-attr]
    assert [event.data["severity"] for event in events] == ["info"]

    fatal = {"attr": 0x03000100, "code": 0x00010007}
    await simulator.set_hms(serial, [info_only, fatal])
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == STATE_ON)  # type: ignore[union-attr]
    await simulator.advance(serial, 30)  # more reports: the entry stays, no new event
    await hass.async_block_till_done()
    assert len(events) == 2
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, serial)})
    assert device is not None
    assert events[1].data == {
        "device_id": device.id,
        "name": "Shelf",
        "serial": serial,
        "code": "0300_0100_0001_0007",
        "kind": "hms",
        "severity": "fatal",
        "module": "motion_controller",
        "text": "The heated bed temperature reading is abnormal; its sensor may be disconnected.",
        "url": "https://wiki.bambulab.com/en/x1/troubleshooting/hmscode/0300_0100_0001_0007",
    }
    listed = hass.states.get(errors).attributes["errors"]  # type: ignore[union-attr]
    assert [(item["code"], item["severity"]) for item in listed] == [
        ("0700_2000_0004_0001", "info"),
        ("0300_0100_0001_0007", "fatal"),
    ]

    await simulator.set_hms(serial, [])
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == STATE_OFF)  # type: ignore[union-attr]

    # The user cancels a print: print_error 0300_400C is shown, but it is no error and no event.
    await simulator.put_file(serial, "cube.gcode", b"G28\n")
    await simulator.start_print(serial, "cube.gcode")
    await simulator.fail(serial, CANCELLED)
    print_error = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_print_error") or ""
    await wait_until(hass, lambda: hass.states.get(print_error).state == "0300_400C")  # type: ignore[union-attr]
    assert hass.states.get(error_sensor).state == STATE_OFF  # type: ignore[union-attr]
    assert len(events) == 2


async def test_light_and_speed_commands(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    """Each command is acknowledged before the state follows; a refused one is a translated error."""
    serial = sim_printer["serial"]
    await setup_farm(hass, sim_printer, names=["Shelf"])
    light, speed = "light.shelf_chamber_light", "select.shelf_print_speed"
    assert hass.states.get(light).state == STATE_ON  # type: ignore[union-attr]
    assert hass.states.get(speed).state == "standard"  # type: ignore[union-attr]

    await hass.services.async_call(Platform.LIGHT, "turn_off", {ATTR_ENTITY_ID: light}, blocking=True)
    await wait_until(hass, lambda: hass.states.get(light).state == STATE_OFF)  # type: ignore[union-attr]
    await hass.services.async_call(
        Platform.SELECT, "select_option", {ATTR_ENTITY_ID: speed, "option": "sport"}, blocking=True
    )
    await wait_until(hass, lambda: hass.states.get(speed).state == "sport")  # type: ignore[union-attr]
    commands = [entry["request"] for entry in (await simulator.printer(serial))["commands"]]
    assert {"command": "print_speed", "param": "3"}.items() <= commands[-1]["print"].items()
    assert commands[-2]["system"]["led_mode"] == "off"

    await simulator.refuse(serial, "ledctrl", "the light is broken")
    await simulator.refuse(serial, "print_speed", "not while calibrating")
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call(Platform.LIGHT, "turn_on", {ATTR_ENTITY_ID: light}, blocking=True)
    assert refused.value.translation_key == "printer_refused"
    assert refused.value.translation_placeholders == {"name": "Shelf", "reason": "the light is broken"}
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call(
            Platform.SELECT, "select_option", {ATTR_ENTITY_ID: speed, "option": "ludicrous"}, blocking=True
        )
    assert refused.value.translation_key == "printer_refused"
    await hass.async_block_till_done()
    assert hass.states.get(light).state == STATE_OFF  # type: ignore[union-attr]
    assert hass.states.get(speed).state == "sport"  # type: ignore[union-attr]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platform", [Platform.LIGHT, Platform.SELECT, Platform.SENSOR])
async def test_x1c_snapshot(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """The new entities of an X1C with four AMS units: its light, its speed select, the part sensors,
    the last unit's and the external spool's sensors (the other units' are the same but for their ids).
    """
    serial = {Platform.LIGHT: "00M00A000000301", Platform.SELECT: "00M00A000000302"}.get(
        platform, "00M00A000000303"
    )
    printer = await simulator.add_printer(model="X1C", serial=serial, access_code="12345678", ams_units=4)
    try:
        with patch("custom_components.print_farm.integration.PLATFORMS", [platform]):
            entry = await setup_farm(hass, printer, names=["Carbon"])
        await wait_until(
            hass,
            lambda: _tray_entity(entity_registry, serial, 3, 3) is not None or platform != Platform.SENSOR,
        )
        parts = {
            "part_fan",
            "aux_fan",
            "chamber_fan",
            "nozzle_type",
            "nozzle_diameter",
            "active_tray",
            "errors",
        }
        shown_entries = [
            entity_entry
            for entity_entry in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
            if entity_entry.domain == platform
            and (
                platform == Platform.LIGHT
                or entity_entry.unique_id == f"{serial}_print_speed"
                or (
                    platform == Platform.SENSOR
                    and (
                        entity_entry.unique_id.startswith((f"{serial}_ams_3", f"{serial}_ams_254"))
                        or entity_entry.unique_id.removeprefix(f"{serial}_") in parts
                    )
                )
            )
        ]
        assert shown_entries
        for entity_entry in shown_entries:
            state = hass.states.get(entity_entry.entity_id)
            assert state is not None
            shown = {
                "entity_id": entity_entry.entity_id,
                "unique_id": entity_entry.unique_id,
                "translation_key": entity_entry.translation_key,
                "device_class": entity_entry.original_device_class,
                "entity_category": entity_entry.entity_category,
                "capabilities": entity_entry.capabilities,
                "unit": entity_entry.unit_of_measurement,
                "state": state.state,
                "attributes": dict(state.attributes),
            }
            assert shown == snapshot(name=entity_entry.entity_id)
    finally:
        await simulator.remove_printer(serial)


async def test_unanswered_light_command(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    """A command the printer does not acknowledge in time is a translated error; the light stays."""
    serial = sim_printer["serial"]
    entry = await setup_farm(hass, sim_printer, names=["Shelf"])
    # The printer's subentry may set how long a command waits (10 s unless set): 1 s here.
    (subentry,) = entry.subentries.values()
    printer = entry.runtime_data.printers[subentry.subentry_id]
    before = printer.client
    hass.config_entries.async_update_subentry(entry, subentry, data={**subentry.data, "ack_timeout": 1})
    await hass.async_block_till_done()
    assert printer.client is not before  # a new client, built with the shorter wait
    await printer.client.wait_for_first_report(10)
    await wait_until(hass, lambda: hass.states.get("light.shelf_chamber_light").state == STATE_ON)  # type: ignore[union-attr]
    await simulator.set_latency(serial, 2)  # longer than the client waits for an answer
    try:
        with pytest.raises(HomeAssistantError) as unanswered:
            await hass.services.async_call(
                Platform.LIGHT, "turn_off", {ATTR_ENTITY_ID: "light.shelf_chamber_light"}, blocking=True
            )
        assert unanswered.value.translation_key == "printer_timeout"
        assert hass.states.get("light.shelf_chamber_light").state == STATE_ON  # type: ignore[union-attr]
    finally:
        await simulator.set_latency(serial, 0)


async def test_standing_error_not_announced_again_after_reload(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    """The errors announced are remembered: a reload repeats none; one cleared meanwhile fires again."""
    serial = sim_printer["serial"]
    events: list[Event] = []
    hass.bus.async_listen(f"{DOMAIN}_printer_error", callback(lambda event: events.append(event)))
    entry = await setup_farm(hass, sim_printer, names=["Shelf"])
    error_sensor = "binary_sensor.shelf_error"
    fatal = {"attr": 0x03000100, "code": 0x00010007}
    await simulator.set_hms(serial, [fatal])
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == STATE_ON)  # type: ignore[union-attr]
    assert len(events) == 1

    # Reloaded with the error standing: nothing new to announce.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == STATE_ON)  # type: ignore[union-attr]
    await simulator.advance(serial, 30)
    await hass.async_block_till_done()
    assert len(events) == 1

    # Cleared while the entry was unloaded: forgotten, so its return is announced once.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await simulator.set_hms(serial, [])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == STATE_OFF)  # type: ignore[union-attr]
    assert len(events) == 1
    await simulator.set_hms(serial, [fatal])
    await wait_until(hass, lambda: hass.states.get(error_sensor).state == STATE_ON)  # type: ignore[union-attr]
    await hass.async_block_till_done()
    assert [event.data["code"] for event in events] == ["0300_0100_0001_0007"] * 2


async def test_both_chamber_lights_of_an_h2d(hass: HomeAssistant, simulator: SimulatorControl) -> None:
    """An H2D reports two chamber lights: the light switches both, each acknowledged, on while either is."""
    printer = await simulator.add_printer(model="H2D", access_code="12345678")
    serial = printer["serial"]
    try:
        await setup_farm(hass, printer, names=["Duo"])
        light = "light.duo_chamber_light"
        assert hass.states.get(light).state == STATE_ON  # type: ignore[union-attr]
        await hass.services.async_call(Platform.LIGHT, "turn_off", {ATTR_ENTITY_ID: light}, blocking=True)
        await wait_until(hass, lambda: hass.states.get(light).state == STATE_OFF)  # type: ignore[union-attr]
        reported = await simulator.printer(serial)
        sent = [entry["request"]["system"] for entry in reported["commands"] if "system" in entry["request"]]
        assert sorted((body["led_node"], body["led_mode"]) for body in sent[-2:]) == [
            ("chamber_light", "off"),
            ("chamber_light2", "off"),
        ]
    finally:
        await simulator.remove_printer(serial)


async def test_unit_gone_while_unloaded_swept_after_full_report(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A unit unplugged while Home Assistant was away leaves no device or entity behind, once a full
    report says so; a delta that names only the other unit removes nothing."""
    printer = await simulator.add_printer(model="P1S", ams_units=2)
    serial = printer["serial"]
    try:
        entry = await setup_farm(hass, printer)
        await wait_until(hass, lambda: _tray_entity(entity_registry, serial, 1, 3) is not None)
        assert await hass.config_entries.async_unload(entry.entry_id)
        await simulator.remove_ams_unit(serial, 1)
        # The answer to pushall (the full report) comes late: a delta for unit 0 comes first.
        await simulator.set_latency(serial, 3)
        assert await hass.config_entries.async_setup(entry.entry_id)
        (coordinator,) = entry.runtime_data.printers.values()
        await wait_until(hass, lambda: coordinator.client.connection is ConnectionState.CONNECTED)
        await simulator.set_tray(serial, 254, 0, {"tray_type": "PLA", "tray_color": "00FF00FF"})
        await simulator.set_tray(serial, 0, 1, {"tray_type": "PETG", "tray_color": "FF0000FF"})
        fields = coordinator.client.fields
        await wait_until(
            hass, lambda: fields["ams_units"] is not None and fields["external_trays"] is not None
        )
        assert coordinator.client.fields["full_report"] is None
        assert [unit.id for unit in coordinator.client.fields["ams_units"]] == [0]
        await hass.async_block_till_done()
        assert _tray_entity(entity_registry, serial, 1, 3) is not None  # not swept on a delta
        assert device_registry.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_1")}) is not None

        await wait_until(hass, lambda: _tray_entity(entity_registry, serial, 1, 3) is None)
        assert device_registry.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_1")}) is None
        assert entity_registry.async_get_entity_id("sensor", DOMAIN, f"{serial}_ams_1_humidity") is None
        assert _tray_entity(entity_registry, serial, 0, 1) is not None
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await simulator.set_latency(serial, 0)
        await simulator.remove_printer(serial)


async def test_remove_ams_device_only_when_not_reported(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    device_registry: dr.DeviceRegistry,
    hass_ws_client: Any,
) -> None:
    """A person may delete an AMS unit's device that its printer no longer reports, no other."""
    assert await async_setup_component(hass, "config", {})
    serial = sim_printer["serial"]
    entry = await setup_farm(hass, sim_printer, names=["Shelf"])
    websocket = await hass_ws_client(hass)
    await wait_until(
        hass,
        lambda: device_registry.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_0")}) is not None,
    )
    reported = device_registry.async_get_device(identifiers={(DOMAIN, f"{serial}_ams_0")})
    printer_device = device_registry.async_get_device(identifiers={(DOMAIN, serial)})
    # A leftover: the device of a unit the printer does not report (left by an older version, say).
    leftover = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        config_subentry_id=next(iter(entry.subentries)),
        identifiers={(DOMAIN, f"{serial}_ams_3")},
    )
    for device, allowed in ((reported, False), (printer_device, False), (leftover, True)):
        assert device is not None
        await websocket.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": entry.entry_id,
                "device_id": device.id,
            }
        )
        response = await websocket.receive_json()
        assert response["success"] is allowed, device.identifiers
    assert device_registry.async_get(leftover.id) is None
    assert device_registry.async_get(reported.id) is not None  # type: ignore[union-attr]
