"""Actions: targets, validation errors by translation key, admin only, printer failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
import pytest

from simulator.control import SimulatorControl

from .helpers import setup_farm

DOMAIN = "print_farm"


@pytest.fixture
async def device_id(hass: HomeAssistant, sim_printer: dict[str, Any]) -> str:
    await setup_farm(hass, sim_printer)
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
    assert device is not None
    return device.id


async def test_send_gcode(
    hass: HomeAssistant, device_id: str, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    await hass.services.async_call(
        DOMAIN, "send_gcode", {"device_id": device_id, "gcode": "M400\nM17"}, blocking=True
    )
    assert {"M400", "M17"} <= set((await simulator.printer(sim_printer["serial"]))["gcode_lines"])


async def test_unknown_device_is_a_validation_error(hass: HomeAssistant, device_id: str) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "send_gcode", {"device_id": "nope", "gcode": "M400"}, blocking=True
        )
    assert caught.value.translation_key == "not_a_printer"


async def test_upload_file_and_start(
    hass: HomeAssistant,
    device_id: str,
    tmp_path: Path,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    local = tmp_path / "Bracket v2.gcode"
    local.write_bytes(b"; total layer number: 5\nG28\n")
    response = await hass.services.async_call(
        DOMAIN,
        "upload_file",
        {"device_id": device_id, "path": str(local)},
        blocking=True,
        return_response=True,
    )
    assert response == {"filename": "Bracket v2.gcode", "size": local.stat().st_size}
    assert "Bracket v2.gcode" in [
        item["name"] for item in (await simulator.printer(sim_printer["serial"]))["files"]
    ]
    await hass.services.async_call(
        DOMAIN,
        "start_print",
        {"device_id": device_id, "filename": "Bracket v2.gcode", "timelapse": True},
        blocking=True,
    )
    commands = (await simulator.printer(sim_printer["serial"]))["commands"]
    requests = [entry["request"].get("print", {}) for entry in commands]
    # Plain G-code starts with gcode_file (a .3mf project with project_file and its options).
    started = [request for request in requests if request.get("command") == "gcode_file"][-1]
    assert started["param"] == "/sdcard/Bracket v2.gcode"


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/etc/passwd", "path_not_allowed"),
        ("missing.gcode", "file_not_found"),
        ("notes.txt", "not_printable"),
    ],
)
async def test_upload_file_refusals(
    hass: HomeAssistant, device_id: str, tmp_path: Path, path: str, key: str
) -> None:
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    (tmp_path / "notes.txt").write_text("hello")
    full = path if path.startswith("/") else str(tmp_path / path)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "upload_file", {"device_id": device_id, "path": full}, blocking=True
        )
    assert caught.value.translation_key == key


async def test_printer_refusal_is_a_translated_error(hass: HomeAssistant, device_id: str) -> None:
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "start_print", {"device_id": device_id, "filename": "missing.3mf"}, blocking=True
        )
    assert caught.value.translation_key == "printer_refused"


async def test_actions_need_an_admin(hass: HomeAssistant, device_id: str, hass_read_only_user: Any) -> None:
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "send_gcode",
            {"device_id": device_id, "gcode": "M400"},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
