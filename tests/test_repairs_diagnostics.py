"""Repairs for a refused access code and a changed certificate; diagnostics without secrets."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry

from simulator.control import SimulatorControl

from .helpers import setup_farm, wait_until

DOMAIN = "print_farm"


async def _fix(
    hass: HomeAssistant, hass_client: Any, issue_id: str, user_input: dict[str, Any] | None
) -> dict[str, Any]:
    client = await hass_client()
    response = await client.post("/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id})
    assert response.status == 200, await response.text()
    flow = await response.json()
    response = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json=user_input or {})
    assert response.status == 200, await response.text()
    return await response.json()


async def test_changed_certificate_raises_repair_then_trusted(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    entry = await setup_farm(hass, sim_printer)
    printer = next(iter(entry.runtime_data.printers.values()))
    new_fingerprint = await simulator.replace_certificate(sim_printer["serial"])
    await wait_until(hass, lambda: printer.client.connection == "certificate_changed", timeout=30)
    issue_id = f"certificate_changed_{printer.subentry.subentry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders["fingerprint"] == new_fingerprint

    result = await _fix(hass, hass_client, issue_id, {})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert entry.subentries[printer.subentry.subentry_id].data["fingerprint"] == new_fingerprint
    await wait_until(hass, lambda: printer.client.online, timeout=30)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_refused_access_code_raises_repair_then_fixed(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    entry = await setup_farm(hass, sim_printer)
    printer = next(iter(entry.runtime_data.printers.values()))
    await simulator.set_access_code(sim_printer["serial"], "24681357")
    await wait_until(hass, lambda: printer.client.connection == "auth_failed", timeout=30)
    issue_id = f"access_code_refused_{printer.subentry.subentry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    result = await _fix(hass, hass_client, issue_id, {"access_code": "11112222"})
    assert result["type"] == "form"
    assert result["errors"] == {"base": "invalid_auth"}
    client = await hass_client()
    response = await client.post(
        f"/api/repairs/issues/fix/{result['flow_id']}", json={"access_code": "24681357"}
    )
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert entry.subentries[printer.subentry.subentry_id].data["access_code"] == "24681357"
    # The new code did not re-pin the certificate.
    assert entry.subentries[printer.subentry.subentry_id].data["fingerprint"] == sim_printer["fingerprint"]
    await wait_until(hass, lambda: printer.client.online, timeout=30)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_diagnostics_hold_no_secret(
    hass: HomeAssistant, hass_client: Any, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    assert sim_printer["access_code"] not in text
    assert sim_printer["serial"] not in text
    assert diagnostics["printers"][0]["online"] is True
    assert diagnostics["printers"][0]["subentry"]["access_code"] == "**REDACTED**"


async def test_a_removed_printer_takes_its_repairs_with_it(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    printer = next(iter(entry.runtime_data.printers.values()))
    await simulator.set_access_code(sim_printer["serial"], "24681357")
    await wait_until(hass, lambda: printer.client.connection == "auth_failed", timeout=30)
    issue_id = f"access_code_refused_{printer.subentry.subentry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    hass.config_entries.async_remove_subentry(entry, printer.subentry.subentry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.printers == {}
    assert [key for key in ir.async_get(hass).issues if key[0] == DOMAIN] == []


async def test_a_removed_farm_takes_its_repairs_with_it(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    printer = next(iter(entry.runtime_data.printers.values()))
    await simulator.set_access_code(sim_printer["serial"], "24681357")
    await wait_until(hass, lambda: printer.client.connection == "auth_failed", timeout=30)
    assert [key for key in ir.async_get(hass).issues if key[0] == DOMAIN] != []
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert [key for key in ir.async_get(hass).issues if key[0] == DOMAIN] == []


async def test_an_access_code_refused_on_upload_raises_the_repair(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    """The upload's login is refused: the answer says why (not "offline"), and the repair asks for the code."""
    entry = await setup_farm(hass, sim_printer)
    printer = next(iter(entry.runtime_data.printers.values()))
    await simulator.set_access_code(sim_printer["serial"], "24681357")
    client = await hass_client()
    form = aiohttp.FormData()
    form.add_field("file", b"G28\n", filename="cube.gcode")
    response = await client.post("/api/print_farm/printers/1/upload", data=form)
    assert response.status == 502
    assert "refused the LAN access code" in (await response.json())["message"]
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"access_code_refused_{printer.subentry.subentry_id}")
    assert issue is not None
    assert issue.is_fixable
