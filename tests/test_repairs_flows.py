"""A printer's repair flows when the printer leaves the farm while the repair is open."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from simulator.control import SimulatorControl

from .helpers import farm_entry, setup_farm, wait_until

DOMAIN = "print_farm"


async def _broken(
    kind: str,
    hass: HomeAssistant,
    simulator: SimulatorControl,
    printer: dict[str, Any],
    other: dict[str, Any],
) -> tuple[Any, str, dict[str, Any]]:
    """A farm whose printer needs the repair `kind`; the entry, the issue and what the form would get."""
    if kind == "wrong_printer":  # its stored ports now lead to another printer
        entry = await _farm_at(hass, printer, other)
    else:
        entry = await setup_farm(hass, printer)
    coordinator = next(iter(entry.runtime_data.printers.values()))
    if kind == "access_code_refused":
        await simulator.set_access_code(printer["serial"], "24681357")
        answer: dict[str, Any] = {"access_code": "24681357"}
    elif kind == "certificate_changed":
        await simulator.replace_certificate(printer["serial"])
        answer = {}
    else:
        answer = {"host": printer["host"]}
    state = "auth_failed" if kind == "access_code_refused" else kind
    await wait_until(hass, lambda: coordinator.client.connection == state, timeout=30)
    return entry, f"{kind}_{coordinator.subentry.subentry_id}", answer


async def _farm_at(hass: HomeAssistant, printer: dict[str, Any], other: dict[str, Any]) -> Any:
    entry = farm_entry({**printer, "mqtt_port": other["mqtt_port"], "ftps_port": other["ftps_port"]})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.mark.parametrize("kind", ["access_code_refused", "certificate_changed", "wrong_printer"])
async def test_a_repair_of_a_printer_removed_meanwhile_changes_nothing(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    sim_x1: dict[str, Any],
    kind: str,
) -> None:
    """The form was open when someone removed the printer: submitting it says so and brings nothing back."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    entry, issue_id, answer = await _broken(kind, hass, simulator, sim_printer, sim_x1)
    client = await hass_client()
    flow = await (
        await client.post("/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id})
    ).json()
    assert flow["type"] == "form"
    subentry_id = next(iter(entry.subentries))
    hass.config_entries.async_remove_subentry(entry, subentry_id)
    await hass.async_block_till_done()
    response = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json=answer)
    result = await response.json()
    assert (result["type"], result["reason"]) == ("abort", "printer_removed")
    assert entry.subentries == {}
    assert entry.runtime_data.printers == {}
    assert [key for key in ir.async_get(hass).issues if key[0] == DOMAIN] == []
