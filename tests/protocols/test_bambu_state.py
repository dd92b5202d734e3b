"""Report parsing, merging and change detection, on the project's own messages and on real ones."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

from custom_components.print_farm.protocols.bambu import Filament, PrinterState
from custom_components.print_farm.protocols.bambu.ssdp import parse_notify
from custom_components.print_farm.protocols.bambu.state import parse_version

from ..conftest import SHARED_FIXTURES

BAMBU = SHARED_FIXTURES / "bambu"

FULL = {
    "command": "push_status",
    "gcode_state": "RUNNING",
    "stg_cur": 0,
    "mc_percent": 40,
    "mc_remaining_time": 25,
    "layer_num": 12,
    "total_layer_num": 50,
    "gcode_file": "cube.gcode.3mf",
    "subtask_name": "cube",
    "nozzle_temper": 219.96,
    "nozzle_target_temper": 220,
    "bed_temper": 55.02,
    "bed_target_temper": 55,
    "wifi_signal": "-45dBm",
    "print_error": 0,
    "hms": [],
    "ams": {
        "ams": [
            {
                "id": "0",
                "tray": [
                    {"id": "0", "tray_type": "PLA", "tray_color": "FF0000FF"},
                    {"id": "1", "tray_type": "PETG", "tray_color": "00FF00FF", "tray_sub_brands": "PETG HF"},
                ],
            }
        ],
        "tray_now": "1",
    },
    "vt_tray": {"id": "254", "tray_type": "TPU", "tray_color": "000000FF"},
}


def test_full_report_sets_every_field() -> None:
    state = PrinterState()
    changed = state.merge(FULL)
    assert changed >= {"gcode_state", "stage", "progress", "filament", "bed_temp", "wifi_signal"}
    assert state.fields["stage"] == "printing"
    assert state.fields["bed_temp"] == 55.0
    assert state.fields["wifi_signal"] == -45
    assert state.fields["filament"] == Filament("PETG", "00FF00FF", "PETG HF", "ams_1_tray_2")


def test_delta_changes_only_what_it_says() -> None:
    state = PrinterState()
    state.merge(FULL)
    assert state.merge({"command": "push_status", "mc_percent": 41, "sequence_id": "7"}) == {"progress"}
    # Sensor noise below 0.1 °C is not a change.
    assert state.merge({"bed_temper": 55.04}) == frozenset()
    assert state.merge({"bed_temper": 55.3}) == {"bed_temp"}
    # A partial nested object merges into the last one.
    assert state.merge({"ams": {"tray_now": "254"}}) == {"filament", "active_tray"}
    assert state.fields["filament"] == Filament("TPU", "000000FF", None, "external_spool")
    assert state.raw["ams"]["ams"][0]["id"] == "0"
    # The same full report again changes nothing.
    assert state.merge({**FULL, "ams": state.raw["ams"], "bed_temper": 55.3, "mc_percent": 41}) == frozenset()
    assert state.merge({"gcode_state": "FINISH"}) == {"gcode_state", "stage"}
    assert state.fields["stage"] == "idle"


def _tray(tray_id: str, material: str, color: str) -> dict[str, Any]:
    return {"id": tray_id, "remain": 80, "k": 0.02, "tray_type": material, "tray_color": color}


def test_ams_delta_updates_trays_field_by_field() -> None:
    """A P1 delta names one tray and its changed keys; every other unit, tray and key stays."""
    state = PrinterState()
    units = [
        {"id": "0", "humidity": "4", "tray": [_tray("0", "PLA", "FF0000FF"), _tray("1", "PETG", "00FF00FF")]},
        {"id": "1", "humidity": "3", "tray": [_tray("0", "ABS", "0000FFFF"), _tray("1", "ASA", "FFFFFFFF")]},
    ]
    state.merge({"command": "push_status", "msg": 0, "ams": {"ams": units, "tray_now": "1"}})
    trays = state.fields["trays"]
    assert [tray.code for tray in trays] == [0, 1, 4, 5]

    delta = {
        "command": "push_status",
        "msg": 1,
        "ams": {"ams": [{"id": "1", "tray": [{"id": "0", "remain": 35}]}]},
    }
    assert state.merge(delta) == {"ams_units"}  # the remaining percent changed; the trays did not
    assert state.fields["ams_units"][1].trays[0].remaining == 35
    assert state.fields["trays"] == trays
    assert state.raw["ams"]["ams"] == [
        units[0],
        {**units[1], "tray": [{**units[1]["tray"][0], "remain": 35}, units[1]["tray"][1]]},
    ]
    assert state.raw["ams"]["tray_now"] == "1"

    # A changed colour in a delta changes that tray only.
    assert state.merge(
        {"msg": 1, "ams": {"ams": [{"id": "0", "tray": [{"id": "1", "tray_color": "000000FF"}]}]}}
    ) == {
        "trays",
        "filament",
        "ams_units",
    }
    assert [(tray.code, tray.color) for tray in state.fields["trays"]] == [
        (0, "#FF0000"),
        (1, "#000000"),
        (4, "#0000FF"),
        (5, "#FFFFFF"),
    ]
    # A full report is the whole truth: a unit it leaves out was unplugged.
    state.merge({"command": "push_status", "msg": 0, "ams": {"ams": units[:1], "tray_now": "1"}})
    assert [tray.code for tray in state.fields["trays"]] == [0, 1]


def test_ssdp_notify() -> None:
    message = (
        b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1990\r\nLocation: 192.0.2.7\r\n"
        b"NT: urn:bambulab-com:device:3dprinter:1\r\nUSN: 01P00A123456789\r\n"
        b"DevModel.bambu.com: C12\r\nDevName.bambu.com: Shelf\r\nDevVersion.bambu.com: 01.07.00.00\r\n\r\n"
    )
    printer = parse_notify(message, "192.0.2.7")
    assert printer is not None
    assert (printer.serial, printer.host, printer.model, printer.name) == (
        "01P00A123456789",
        "192.0.2.7",
        "P1S",
        "Shelf",
    )
    assert parse_notify(b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n", "x") is None
    assert parse_notify(b"\xff\xfe garbage", "x") is None


def _load(path: Path) -> Any:
    text = path.read_text()
    if path.suffix == ".jsonc":  # annotated: drop // comments outside strings
        text = re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*', lambda m: m.group(1) or "", text)
        text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)


def _reports(document: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    report = document.get("push_all") or document.get("pushall") or document
    report = report.get("print", report)
    version = document.get("get_version")
    if isinstance(version, dict):
        version = version.get("info", version)
    return report, version


@pytest.mark.skipif(not BAMBU.is_dir(), reason="../shared/fixtures/bambu is not beside the checkout")
@pytest.mark.parametrize(
    "name", sorted(path.name for path in BAMBU.glob("*.json*")) if BAMBU.is_dir() else []
)
def test_real_printer_messages(name: str) -> None:
    report, version = _reports(_load(BAMBU / name))
    state = PrinterState()
    state.merge(report)
    fields = state.fields
    if "gcode_state" in report:
        assert fields["gcode_state"] == report["gcode_state"]
    if "mc_percent" in report:
        assert fields["progress"] == int(report["mc_percent"])
    if "total_layer_num" in report:
        assert fields["total_layers"] == int(report["total_layer_num"])
    if "print_error" in report:
        assert fields["print_error"] == report["print_error"]
    if "nozzle_temper" in report:
        assert fields["nozzle_temp"] == round(float(report["nozzle_temper"]), 1)
    if "wifi_signal" in report:
        assert fields["wifi_signal"] == int(report["wifi_signal"].removesuffix("dBm"))
    if version:
        parsed = parse_version(version, "01P00A000000000")
        assert parsed.firmware
        assert parsed.model in {"P1P", "P1S", "X1C", "X1", "X1E", "A1", "A1 mini"}


@pytest.mark.skipif(not BAMBU.is_dir(), reason="../shared/fixtures/bambu is not beside the checkout")
def test_real_models_and_states() -> None:
    expectations = {
        "P1P.json": ("FAILED", "P1P", 70),
        "MOCK-X1CMULTIAMS.json": ("FINISH", "X1C", 480),
        "MOCK-P1PNOAMS.json": ("FINISH", "P1P", 124),
        "MOCK-A1.json": ("IDLE", "A1", None),
    }
    for name, (gcode_state, model, layers) in expectations.items():
        report, version = _reports(_load(BAMBU / name))
        state = PrinterState()
        state.merge(report)
        assert state.fields["gcode_state"] == gcode_state, name
        assert parse_version(version or {}, "x").model == model, name
        if layers is not None:
            assert state.fields["total_layers"] == layers, name
