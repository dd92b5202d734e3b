"""The hub flow, and the printer subentry flow: every error path ends in a working printer."""

from __future__ import annotations

import socket
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl
from simulator.ssdp import notify_message

from .helpers import farm_entry, setup_farm


def form_input(printer: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Garage P1S",
        "host": printer["host"],
        "serial": printer["serial"],
        "access_code": printer["access_code"],
        "advanced": {
            "mqtt_port": printer["mqtt_port"],
            "ftps_port": printer["ftps_port"],
            **({"camera_port": printer["camera_port"]} if printer["camera_port"] else {}),
        },
    }
    data.update(overrides)
    return data


async def test_hub_is_created_once(hass: HomeAssistant, socket_enabled: None) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER, "show_advanced_options": True}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"discovery_host": "127.0.0.1", "discovery_port": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Print Farm"
    assert result["data"] == {"discovery_host": "127.0.0.1", "discovery_port": 0}
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


async def _empty_farm(hass: HomeAssistant) -> Any:
    entry = farm_entry()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"host": "127.0.0.1", "advanced": {"mqtt_port": 1, "ftps_port": 990}}, "cannot_connect"),
        ({"access_code": "00000000"}, "invalid_auth"),
        ({"serial": "01P00A000000001"}, "wrong_serial"),
    ],
)
async def test_add_printer_errors_then_success(
    hass: HomeAssistant, sim_printer: dict[str, Any], bad: dict[str, Any], error: str
) -> None:
    entry = await _empty_farm(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "printer"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "connect"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(sim_printer, **bad)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    # The access code is never echoed back into the form.
    assert sim_printer["access_code"] not in str(result["data_schema"].schema)
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form_input(sim_printer))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Garage P1S"
    data = result["data"]
    assert data["serial"] == sim_printer["serial"]
    assert data["fingerprint"] == sim_printer["fingerprint"]
    assert data["camera_port"] == sim_printer["camera_port"]
    assert data["model"] == "P1S"
    assert data["firmware"]
    await hass.async_block_till_done()
    assert len(entry.runtime_data.printers) == 1


async def test_add_printer_already_configured_then_another(
    hass: HomeAssistant, sim_printer: dict[str, Any], sim_x1: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "printer"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form_input(sim_printer))
    assert result["errors"] == {"base": "already_configured"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(sim_x1, name="X1")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["model"] == "X1C"


async def test_reconfigure_keeps_access_code_and_tests_connection(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    subentry_id = next(iter(entry.subentries))
    result = await entry.start_subentry_reconfigure_flow(hass, "printer", subentry_id)
    assert result["step_id"] == "reconfigure"
    # A port where nothing listens: refused, nothing saved.
    bad = form_input(sim_printer, advanced={"mqtt_port": 1, "ftps_port": 990})
    del bad["name"], bad["access_code"]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], bad)
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.subentries[subentry_id].data["mqtt_port"] == sim_printer["mqtt_port"]
    # The printer got a new access code; the user enters it.
    await simulator.set_access_code(sim_printer["serial"], "87654321")
    good = form_input(sim_printer, access_code="87654321")
    del good["name"]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], good)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry_id].data["access_code"] == "87654321"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_discovered_printer_is_offered(hass: HomeAssistant, sim_printer: dict[str, Any]) -> None:
    port = _free_udp_port()
    entry = farm_entry()
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data={"discovery_host": "127.0.0.1", "discovery_port": port}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    message = notify_message(
        host=sim_printer["host"],
        serial=sim_printer["serial"],
        model_code="C12",
        name="Attic",
        firmware="01.07.00.00",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(message, ("127.0.0.1", port))
        sender.sendto(b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n", ("127.0.0.1", port))
    await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "printer"), context={"source": SOURCE_USER}
    )
    if result["step_id"] != "user":  # the datagram had not been read yet: one more loop turn
        await hass.async_block_till_done()
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, "printer"), context={"source": SOURCE_USER}
        )
    assert result["step_id"] == "user"
    options = result["data_schema"].schema["discovered"].config["options"]
    assert [option["value"] for option in options] == [sim_printer["serial"], "manual"]
    assert "P1S" in options[0]["label"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"discovered": sim_printer["serial"]}
    )
    assert result["step_id"] == "connect"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "host": sim_printer["host"],
            "serial": sim_printer["serial"],
            "access_code": sim_printer["access_code"],
            "advanced": {"mqtt_port": sim_printer["mqtt_port"], "ftps_port": sim_printer["ftps_port"]},
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "P1S " + sim_printer["serial"][-4:]
    assert result["data"]["camera_port"] == 6000  # not given: the printers' own port


async def test_reconfigure_does_not_trust_a_changed_certificate(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    subentry_id = next(iter(entry.subentries))
    await simulator.replace_certificate(sim_printer["serial"])
    result = await entry.start_subentry_reconfigure_flow(hass, "printer", subentry_id)
    form = form_input(sim_printer)
    del form["name"]
    # A changed connection is tested (an unchanged one is not: only the OttoEject settings changed).
    form["access_code"] = "87654321"
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "certificate_changed"}
    assert entry.subentries[subentry_id].data["fingerprint"] == sim_printer["fingerprint"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "serial": "01P00A000000077"}
    )
    assert result["errors"] == {"base": "serial_fixed"}
