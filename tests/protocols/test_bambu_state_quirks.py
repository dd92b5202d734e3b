"""Reports that are odd but arrive: values that cannot be read are unknown (never a wrong value, never a crash)."""

from __future__ import annotations

from custom_components.print_farm.protocols.bambu import PrinterState
from custom_components.print_farm.protocols.bambu.state import Tray, parse_version


def test_values_that_cannot_be_read_are_unknown_and_the_rest_is_read() -> None:
    state = PrinterState()
    changed = state.merge(
        {
            "msg": 0,
            "gcode_state": "IDLE",
            "stg_cur": "n/a",
            "mc_percent": "forty",
            "bed_temper": "hot",
            "nozzle_temper": 24.96,
            "nozzle_diameter": "auto",
            "fun": "not hex",
            "wifi_signal": -52,  # some firmware sends a number, not "-52dBm"
            "device": {"fan": {"state": 0}},  # no chamber sensor (ctc)
            "ams": {
                "ams": [
                    {"tray": [{"id": "0", "tray_type": "ABS"}]},  # a unit without an id: not placed
                    {"id": "0", "tray": [{"id": "0", "tray_type": "pla", "tray_color": "FF0000FF"}]},
                ],
                "tray_now": "5",  # unit 1, tray 2: not reported
            },
        }
    )
    fields = state.fields
    assert (fields["stage"], fields["progress"], fields["bed_temp"]) == (None, None, None)
    assert (fields["nozzle_diameter"], fields["signing_required"], fields["chamber_temp"]) == (
        None,
        None,
        None,
    )
    assert fields["filament"] is None  # the tray it feeds from is not in the report
    assert fields["nozzle_temp"] == 25.0
    assert fields["wifi_signal"] == -52
    assert fields["trays"] == (Tray(0, "PLA", "#FF0000"),)
    assert {"nozzle_temp", "wifi_signal", "trays", "gcode_state"} <= changed


def test_a_report_that_changes_nothing_read_changes_no_field() -> None:
    state = PrinterState()
    state.merge({"gcode_state": "RUNNING", "mc_percent": 10})
    assert state.merge({"gcode_state": "RUNNING", "mc_percent": 10, "sequence_id": "7"}) == frozenset()
    assert state.merge({"stg": [2, 14, 1]}) == frozenset()
    assert state.raw["stg"] == [2, 14, 1]  # kept for diagnostics


def test_an_ams_delta_adds_a_new_unit_and_leaves_out_entries_without_an_id() -> None:
    """A second AMS plugged in arrives as a delta naming only it."""
    state = PrinterState()
    state.merge({"msg": 0, "ams": {"ams": [{"id": "0", "tray": [{"id": "0", "tray_type": "PLA"}]}]}})
    changed = state.merge(
        {
            "msg": 1,
            "ams": {
                "ams": [
                    {"id": "1", "tray": [{"id": "2", "tray_type": "PETG", "tray_color": "00FF00"}]},
                    {"tray": [{"id": "0", "tray_type": "TPU"}]},
                    "garbage",
                ]
            },
        }
    )
    assert "trays" in changed
    assert state.fields["trays"] == (Tray(0, "PLA", None), Tray(6, "PETG", "#00FF00"))
    assert [unit["id"] for unit in state.raw["ams"]["ams"]] == ["0", "1"]


def test_a_version_reply_names_the_model_by_its_product_or_project_name_or_serial() -> None:
    ota = {"name": "ota", "sw_ver": "01.08.00.00"}
    named = parse_version({"module": [{**ota, "product_name": "Bambu Lab P1S"}]}, "01P00A000000000")
    assert (named.model, named.firmware) == ("P1S", "01.08.00.00")
    unknown = parse_version({"module": [{**ota, "product_name": "Bambu Lab Q9 Ultra"}]}, "01P00A000000000")
    assert unknown.model == "Q9 Ultra"  # a model newer than the table keeps its own name
    by_project = parse_version({"module": [{**ota, "project_name": "C12"}]}, "XXX00A000000000")
    assert by_project.model == "P1S"
    by_serial = parse_version({"module": [{"name": "mc", "sw_ver": "00.00.30.00"}]}, "01P00A000000000")
    assert (by_serial.model, by_serial.firmware) == ("P1S", None)
