"""AMS units, trays, external holders and the active tray, read from real reports and from deltas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.print_farm.protocols.bambu import PrinterState
from custom_components.print_farm.protocols.bambu.ams import (
    AmsTray,
    AmsUnit,
    active_tray,
    has_ams_lite,
    units,
)
from custom_components.print_farm.protocols.bambu.models import canonical_model
from simulator import ams as sim_ams

from ..conftest import SHARED_FIXTURES

BAMBU, NEWER = SHARED_FIXTURES / "bambu", SHARED_FIXTURES / "bambu-newer"


def _report(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    wrapped = document.get("push_all") or document.get("pushall")
    report: dict[str, Any] = wrapped.get("print", wrapped)
    return report


def _state(path: Path, *, ams_lite: bool = False) -> PrinterState:
    """The state after the fixture's report, merged as the printer sent it (some carry no msg)."""
    state = PrinterState(ams_lite=ams_lite)
    state.merge(_report(path))
    return state


def _empty(unit: int, slot: int, code: int) -> AmsTray:
    return AmsTray(unit, slot, code, None, None, None, None, None, None)


@pytest.mark.skipif(not BAMBU.is_dir(), reason="../shared/fixtures/bambu is not beside the checkout")
def test_x1c_with_four_units() -> None:
    """MOCK-X1CMULTIAMS: two AMS, an AMS 2 Pro drying with its first slot empty, an AMS HT."""
    fields = _state(BAMBU / "MOCK-X1CMULTIAMS.json").fields
    units: tuple[AmsUnit, ...] = fields["ams_units"]
    assert [(u.id, u.kind, u.humidity, u.humidity_level, u.temperature) for u in units] == [
        (0, "ams", 8, 5, 26.2),
        (1, "ams", 4, 5, 25.4),
        (2, "ams_2_pro", 9, 4, 65.0),
        (128, "ams_ht", 8, 5, 45.2),
    ]
    assert [len(u.trays) for u in units] == [4, 4, 4, 1]
    assert units[1].trays[0] == AmsTray(
        unit=1,
        slot=0,
        code=4,
        material="ABS",
        color="#D32941",
        name="ABS",
        remaining=21,
        tray_uuid="AD76420E81274E7DA363EEE5A6CAF619",
        tag_uid="5336A73600000100",
    )
    assert units[2].trays[0] == _empty(2, 0, 8)
    assert units[3].trays[0] == AmsTray(
        128,
        0,
        128,
        "PA-CF",
        "#000000",
        "PAHT-CF",
        100,
        "3912400D8BFC4A4D9578E9E643162E10",
        "9A7233A600000100",
    )
    # The one external holder is empty; nothing is loaded (tray_now 255, snow 0xFFFF).
    assert fields["external_trays"] == (_empty(254, 0, 254),)
    assert fields["active_tray"] is None
    assert fields["filament"] is None
    assert [tray.code for tray in fields["trays"]] == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 128]


@pytest.mark.skipif(not BAMBU.is_dir(), reason="../shared/fixtures/bambu is not beside the checkout")
def test_older_printers() -> None:
    """P1P: AMS without sensors and tray 0 loaded; P1P without AMS feeding from the external spool."""
    p1p = _state(BAMBU / "P1P.json").fields
    assert [(u.id, u.kind, u.humidity, u.humidity_level, u.temperature) for u in p1p["ams_units"]] == [
        (0, "ams", None, 3, None)
    ]
    assert p1p["ams_units"][0].trays[0] == AmsTray(0, 0, 0, "PLA", "#D357FE", None, None, None, None)
    assert p1p["active_tray"] == 0
    assert (p1p["filament"].source, p1p["filament"].material) == ("ams_1_tray_1", "PLA")
    assert p1p["external_trays"] == (AmsTray(254, 0, 254, "PLA", "#161616", None, None, None, None),)

    no_ams = _state(BAMBU / "MOCK-P1PNOAMS.json").fields
    assert no_ams["ams_units"] == ()
    assert no_ams["active_tray"] == 254
    assert (no_ams["filament"].source, no_ams["filament"].material) == ("external_spool", "PETG")

    a1 = _state(BAMBU / "MOCK-A1.json", ams_lite=has_ams_lite("A1")).fields
    # An A1's report has no `info`: the model says its unit is an AMS Lite.
    assert [unit.kind for unit in a1["ams_units"]] == ["ams_lite"]
    assert [tray.color for tray in a1["ams_units"][0].trays] == ["#76D9F4", "#FFF144", "#FF80FF", "#0ACC38"]
    assert a1["active_tray"] is None  # tray_now 255: nothing loaded, not the external spool
    assert a1["filament"] is None


@pytest.mark.skipif(not NEWER.is_dir(), reason="../shared/fixtures/bambu-newer is not beside the checkout")
def test_newer_printers() -> None:
    """H2D, H2S, P2S and an X1C with an AMS 2 Pro and an AMS HT: snow, vir_slot and the unit kinds."""
    h2d = _state(NEWER / "H2D.json").fields
    assert [(u.id, u.kind, u.humidity, u.humidity_level) for u in h2d["ams_units"]] == [
        (0, "ams", 24, 4),
        (128, "ams_ht", 6, None),  # humidity level 0: not a level
    ]
    assert h2d["active_tray"] == 128  # extruder 0 (the active one) snow 0x8000: AMS HT 128, slot 0
    assert (h2d["filament"].source, h2d["filament"].material) == ("ams_ht_1", "PA-GF")
    assert h2d["external_trays"] == (_empty(254, 0, 254), _empty(255, 0, 255))

    external = _state(NEWER / "MOCK-H2DEXTSPOOLACTIVE.json").fields
    assert [(u.id, u.kind) for u in external["ams_units"]] == [
        (0, "ams_2_pro"),
        (1, "ams"),
        (2, "ams"),
        (3, "ams_2_pro"),
        (128, "ams_ht"),
        (129, "ams_ht"),
    ]
    assert external["active_tray"] == 255  # snow 0xFF00: the second external holder
    assert external["external_trays"] == (
        AmsTray(254, 0, 254, "PLA", "#76D9F4", None, None, None, None),
        AmsTray(255, 0, 255, "TPU", "#9B9EA0", None, None, None, None),
    )
    assert (external["filament"].source, external["filament"].material) == ("external_spool_2", "TPU")
    first = external["ams_units"][0].trays
    assert first[0] == AmsTray(0, 0, 0, "PETG", "#FFFFFF", None, None, None, None)  # remain -1: unknown
    assert first[1] == _empty(0, 1, 1)
    assert external["ams_units"][5].trays == (
        AmsTray(129, 0, 129, "PETG", "#000000", None, None, None, None),
    )

    h2s = _state(NEWER / "MOCK-H2S.json").fields
    assert [(u.id, u.kind, [t.material for t in u.trays]) for u in h2s["ams_units"]] == [
        (0, "ams_2_pro", ["ABS", None, None, None])
    ]
    assert h2s["active_tray"] == 0
    p2s = _state(NEWER / "MOCK-P2S.json").fields
    assert p2s["active_tray"] == 3
    assert p2s["filament"].source == "ams_1_tray_4"
    assert p2s["rtsp_url"] == "disable"
    assert (
        _state(NEWER / "MOCK-H2S.json").fields["rtsp_url"] == "rtsps://192.168.178.140:322/streaming/live/1"
    )

    mixed = _state(NEWER / "2AMS1-1AMS2-1AMSHT.json").fields
    assert [u.kind for u in mixed["ams_units"]] == ["ams", "ams", "ams_2_pro", "ams_ht"]
    assert mixed["active_tray"] is None


@pytest.mark.skipif(not NEWER.is_dir(), reason="../shared/fixtures/bambu-newer is not beside the checkout")
def test_newer_models_are_known() -> None:
    for name in ("H2D", "H2S", "P2S"):
        assert canonical_model(f"Bambu Lab {name}") == name


@pytest.mark.parametrize(
    ("snow", "tray_now", "expected"),
    [
        (0xFFFF, "0", None),  # snow wins over tray_now
        (0x0203, None, 11),  # unit 2 slot 3
        (0x8100, None, 129),  # AMS HT 129
        (0xFE00, None, 254),  # the external holder
        (0xFEFF, None, None),  # no slot: nothing
        (None, "255", None),  # nothing loaded (today shown as the external spool)
        (None, "254", 254),
        (None, "129", 129),
        (None, "6", 6),
        (None, "77", None),  # not a tray code
    ],
)
def test_active_tray_in_both_formats(snow: int | None, tray_now: str | None, expected: int | None) -> None:
    raw: dict[str, Any] = {}
    if snow is not None:
        raw["device"] = {"extruder": {"info": [{"id": 0, "snow": snow}], "state": 1}}
    if tray_now is not None:
        raw["ams"] = {"tray_now": tray_now}
    assert active_tray(raw) == expected


def test_second_extruder_when_it_is_active() -> None:
    """device.extruder.state bits 4-7 name the extruder that feeds (H2D: 1 the left one).

    Bits 0-3 count the extruders and bits 8-11 name the target of a switch: neither says which feeds.
    """
    info = [{"id": 0, "snow": 0x0001}, {"id": 1, "snow": 0x0102}]
    assert active_tray({"device": {"extruder": {"info": info, "state": 0x0002}}}) == 1
    assert active_tray({"device": {"extruder": {"info": info, "state": 0x0012}}}) == 6
    # Switching to the left one (target 1): the right one still counts until the switch is done...
    assert active_tray({"device": {"extruder": {"info": info, "state": 0x0102}}}) == 1
    # ...and while it switches (current 0xF) no tray feeds.
    assert active_tray({"device": {"extruder": {"info": info, "state": 0x01F2}}}) is None


def _p1_state(units: int = 2) -> tuple[dict[str, Any], PrinterState]:
    ams: dict[str, Any] = {"ams": [], "tray_now": "255"}
    sim_ams.set_units(ams, [{"id": unit} for unit in range(units)], x1=False)
    state = PrinterState()
    state.merge({"msg": 0, "ams": json.loads(json.dumps(ams))})
    return ams, state


def _send_delta(ams: dict[str, Any], before: dict[str, Any], state: PrinterState) -> frozenset[str]:
    return state.merge({"msg": 1, "ams": sim_ams.delta(before, ams)})


def test_deltas_add_empty_and_remove() -> None:
    """A P1 delta names only what changed; trays emptied, units added and removed all show."""
    ams, state = _p1_state()
    assert [u.id for u in state.fields["ams_units"]] == [0, 1]

    before = json.loads(json.dumps(ams))
    sim_ams.set_tray(ams, 1, 2, None, x1=False)
    delta = sim_ams.delta(before, ams)
    assert delta["ams"] == [{"id": "1", "tray": [{"id": "2"}]}]  # the tray's id, and the bits
    assert set(delta) == {"ams", "tray_exist_bits", "tray_is_bbl_bits", "tray_read_done_bits"}
    assert state.merge({"msg": 1, "ams": delta}) >= {"ams_units", "trays"}
    assert state.fields["ams_units"][1].trays[2] == _empty(1, 2, 6)
    assert 6 not in [tray.code for tray in state.fields["trays"]]

    before = json.loads(json.dumps(ams))
    sim_ams.set_tray(ams, 1, 2, {"tray_type": "PETG", "tray_color": "112233FF", "remain": 40}, x1=False)
    _send_delta(ams, before, state)
    assert state.fields["ams_units"][1].trays[2].material == "PETG"
    assert state.fields["ams_units"][1].trays[2].remaining == 40

    before = json.loads(json.dumps(ams))
    sim_ams.set_units(ams, [*({"id": unit} for unit in range(2)), {"id": 128, "kind": "ams_ht"}], x1=False)
    _send_delta(ams, before, state)
    assert [u.id for u in state.fields["ams_units"]] == [0, 1, 128]

    before = json.loads(json.dumps(ams))
    sim_ams.remove_unit(ams, 1)
    delta = sim_ams.delta(before, ams)
    assert [unit["id"] for unit in delta.get("ams", [])] == []  # the delta names no unit: only the bits
    state.merge({"msg": 1, "ams": delta})
    assert [u.id for u in state.fields["ams_units"]] == [0, 128]
    assert [unit["id"] for unit in state.raw["ams"]["ams"]] == ["0", "128"]
    assert [tray.code for tray in state.fields["trays"]] == [0, 1, 2, 3, 128]


def test_exist_bits_decide_which_units_and_trays_are_there() -> None:
    """ams_exist_bits: bit u for AMS u, bit 4 + n for AMS HT 128 + n; tray_exist_bits likewise per slot."""
    tray = {"id": "0", "tray_type": "PLA", "tray_color": "FFFFFFFF"}
    raw = {
        "ams": {
            "ams": [{"id": "0", "tray": [tray]}, {"id": "1", "tray": [tray]}, {"id": "128", "tray": [tray]}],
            "ams_exist_bits": "11",  # units 0 and 128
            "tray_exist_bits": "10000",  # only the AMS HT's slot holds filament
        }
    }
    assert [(unit.id, unit.trays[0].material) for unit in units(raw)] == [(0, None), (128, "PLA")]


def test_fans_in_steps_of_ten() -> None:
    """The 0-15 fan levels read in 10 % steps, as Bambu's app shows them: no 7, 13, 20..."""
    state = PrinterState()
    shown = []
    for level in range(16):
        state.merge({"cooling_fan_speed": str(level)})
        shown.append(state.fields["part_fan"])
    assert shown == [0, 10, 20, 20, 30, 40, 40, 50, 60, 60, 70, 80, 80, 90, 100, 100]


def test_humidity_zero_is_no_reading() -> None:
    """A unit just powered on reports humidity_raw 0: no reading yet, not a bone-dry AMS."""
    ams = {"ams": [{"id": "0", "humidity": "5", "humidity_raw": "0", "temp": "0.0", "tray": []}]}
    (unit,) = units({"ams": ams})
    assert (unit.humidity, unit.humidity_level) == (None, 5)


def test_chamber_light_on_while_either_is() -> None:
    """An H2D or H2S reports chamber_light and chamber_light2: the light is on while either is."""
    state = PrinterState()

    def lights(first: str, second: str) -> list[dict[str, str]]:
        return [
            {"node": "chamber_light", "mode": first},
            {"node": "chamber_light2", "mode": second},
            {"node": "work_light", "mode": "on"},
        ]

    state.merge({"lights_report": lights("off", "on")})
    assert state.fields["chamber_light"] is True
    assert state.fields["chamber_light_nodes"] == ("chamber_light", "chamber_light2")
    state.merge({"lights_report": lights("off", "off")})
    assert state.fields["chamber_light"] is False


def test_which_printers_take_an_ams_lite() -> None:
    """The A1 family by model, any other by get_version naming an ams_f1 module."""
    assert has_ams_lite("A1 mini")
    assert not has_ams_lite("P1S", {"module": [{"name": "ams/0"}, {"name": "ota"}]})
    assert has_ams_lite(None, {"module": [{"name": "ota"}, {"name": "ams_f1/0"}]})
    state = PrinterState()
    state.merge({"ams": {"ams": [{"id": "0", "tray": []}]}})
    assert state.fields["ams_units"][0].kind == "ams"
    assert state.set_ams_lite(True) == {"ams_units"}  # learnt from get_version: the units follow
    assert state.fields["ams_units"][0].kind == "ams_lite"


def test_uninitialised_unit_left_out() -> None:
    """A unit whose info names extruder 0xE is not set up yet: no unit until it is."""
    listed = [{"id": "0", "info": "1001", "tray": []}, {"id": "1", "info": "1E01", "tray": []}]
    assert [unit.id for unit in units({"ams": {"ams": listed}})] == [0]


@pytest.mark.skipif(not NEWER.is_dir(), reason="../shared/fixtures/bambu-newer is not beside the checkout")
def test_h2d_full_reports_without_msg() -> None:
    """An H2D's reports carry no msg: each is merged as a delta, yet a tray emptied or a unit taken
    away in a later report is gone, not kept from the first one."""
    report = _report(NEWER / "H2D.json")
    assert "msg" not in report
    state = PrinterState()
    state.merge(report)
    later = json.loads(json.dumps(report))
    ams = later["ams"]
    # Slot 3 of unit 0 emptied (the printer sends the slot with only its id), the AMS HT taken away.
    ams["ams"] = [unit for unit in ams["ams"] if unit["id"] == "0"]
    ams["ams"][0]["tray"][2] = {"id": "2"}
    ams["tray_exist_bits"] = "b"
    ams["ams_exist_bits"] = "1"
    state.merge(later)
    (unit,) = state.fields["ams_units"]
    assert (unit.id, [tray.material for tray in unit.trays]) == (0, ["PLA", "PLA", None, "PETG"])
    assert [tray.code for tray in state.fields["trays"]] == [0, 1, 3]


def test_nozzle_type_named_or_decoded() -> None:
    """Older printers name the nozzle's material; the H2D, H2S and P2S report a code (HS01, HH01)."""
    state = PrinterState()
    shown = []
    for reported in ("hardened_steel", "HS01", "HH01", "HX05", "brass?"):
        state.merge({"nozzle_type": reported})
        shown.append(state.fields["nozzle_type"])
    assert shown == ["hardened_steel", "stainless_steel", "hardened_steel", None, None]
