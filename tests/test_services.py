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
    farm = hass.config_entries.async_entries(DOMAIN)[0].runtime_data
    assert not farm.jobs.bed_is_clear(farm.printer_by_id(1))  # what it prints will be on the bed


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


async def test_start_print_keeps_the_bed_clear_rule(
    hass: HomeAssistant,
    hass_client: Any,
    device_id: str,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """The action and REST's start-print go through one farm method: neither starts on a plate."""
    farm = hass.config_entries.async_entries(DOMAIN)[0].runtime_data
    await farm.jobs.async_set_bed_clear(1, clear=False)  # a finished print's plate is on the bed

    def starts(commands: list[dict[str, Any]]) -> int:
        return sum(
            entry["request"].get("print", {}).get("command") in ("gcode_file", "project_file")
            for entry in commands
        )

    before = starts((await simulator.printer(sim_printer["serial"]))["commands"])
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "start_print", {"device_id": device_id, "filename": "cube.gcode"}, blocking=True
        )
    assert caught.value.translation_key == "bed_not_clear"
    assert caught.value.translation_placeholders == {"printer": "Printer 1"}
    client = await hass_client()
    response = await client.post("/api/print_farm/printers/1/start-print", json={"filename": "cube.gcode"})
    assert response.status == 409
    assert (await response.json())["error"] == "Conflict"
    assert starts((await simulator.printer(sim_printer["serial"]))["commands"]) == before  # nothing sent

    # Marked clear, the action starts the print, and the bed is not clear again afterwards.
    await hass.services.async_call(DOMAIN, "mark_bed_clear", {"device_id": device_id}, blocking=True)
    with pytest.raises(HomeAssistantError) as refused:  # the printer has no such file: it says so
        await hass.services.async_call(
            DOMAIN, "start_print", {"device_id": device_id, "filename": "cube.gcode"}, blocking=True
        )
    assert refused.value.translation_key == "printer_refused"
    assert farm.jobs.bed_is_clear(farm.printer_by_id(1))  # nothing started: still clear
