"""An OttoEject that refuses the API key, a macro call that cannot be sent, an address typed as a URL."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl

from .test_ottoeject import coordinator_of, setup_ejector


async def test_an_api_key_the_ottoeject_refuses_shows_it_offline_saying_why(
    hass: HomeAssistant, sim_ejector: dict[str, Any]
) -> None:
    """Its key was regenerated on the device: it shows offline until the key is entered again."""
    entry = await setup_ejector(hass, sim_ejector, api_key="0123456789abcdef0123456789abcdef")
    coordinator = coordinator_of(entry)
    assert not coordinator.last_update_success
    assert coordinator.last_exception.translation_key == "ottoeject_auth"
    assert str(coordinator.last_exception) == "Robot refused the API key"
    assert hass.states.get("sensor.robot_status").state == "offline"
    assert hass.states.get("sensor.robot_current_macro").state == "unavailable"
    # Reconfigured with the device's key (the form checks it first), it is back.
    subentry_id = coordinator.subentry.subentry_id
    flow = await entry.start_subentry_reconfigure_flow(hass, "ottoeject", subentry_id)
    form = {
        "host": sim_ejector["host"],
        "port": sim_ejector["port"],
        "api_key": sim_ejector["api_key"],
        "advanced": {"scan_interval": 5, "ack_timeout": 1},
    }
    result = await hass.config_entries.subentries.async_configure(flow["flow_id"], form)
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert coordinator.last_update_success
    assert hass.states.get("sensor.robot_status").state == "online"


@pytest.mark.parametrize(
    ("macro", "params", "error"),
    [
        ("EJECT FROM P1", None, "invalid macro name 'EJECT FROM P1'"),
        (
            "EJECT_FROM_P1",
            {"SPEED": "1\nM112"},
            "parameter SPEED has a value that cannot go on a G-code line",
        ),
        ("EJECT_FROM_P1", {"SPEED": "1;M112"}, "parameter SPEED has a value that cannot go on a G-code line"),
    ],
    ids=["spaces", "newline", "comment"],
)
async def test_a_macro_call_that_is_not_one_gcode_command_is_refused_unsent(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    sim_ejector: dict[str, Any],
    macro: str,
    params: dict[str, str] | None,
    error: str,
) -> None:
    await setup_ejector(hass, sim_ejector)
    device = next(device for device in dr.async_get(hass).devices.values() if device.model == "OttoEject")
    data: dict[str, Any] = {"device_id": device.id, "macro": macro}
    if params:
        data["params"] = params
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(DOMAIN, "run_macro", data, blocking=True)
    assert refused.value.translation_key == "bad_macro_call"
    assert refused.value.translation_placeholders["error"].startswith(error)
    assert (await simulator.ottoeject(sim_ejector["id"]))["scripts"] == []


async def test_an_address_typed_as_a_url_is_cannot_connect_and_the_form_goes_on(
    hass: HomeAssistant, sim_ejector: dict[str, Any]
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, title="Print Farm", data={"discovery_port": 0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "ottoeject"), context={"source": SOURCE_USER}
    )
    form = {
        "name": "Robot",
        "host": f"http://{sim_ejector['host']}",
        "port": sim_ejector["port"],
        "api_key": sim_ejector["api_key"],
        "advanced": {"scan_interval": 5, "ack_timeout": 30},
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "host": sim_ejector["host"]}
    )
    assert result["type"] == "create_entry"
    assert result["data"]["host"] == sim_ejector["host"]
