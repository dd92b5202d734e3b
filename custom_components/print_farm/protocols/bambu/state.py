"""Merged printer state from Bambu Lab reports, with the set of public fields each report changed.

X1 printers send the whole `print` object every time; P1 and A1 printers send only the keys that
changed. Both are merged into one raw dictionary, and only the public fields whose raw keys a
report touched are recomputed, so a small delta costs a few microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import math
from typing import Any, Final

from .ams import AmsUnit, active_tray, external_trays, raw_tray, tray_source, unit_present, units
from .hms import errors
from .models import canonical_model, model_from_serial

# gcode_state values the printers send; "OFFLINE" is ours, for a printer we cannot hear.
GCODE_STATES: Final = ("IDLE", "SLICING", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED")
STATUS_OFFLINE: Final = "OFFLINE"
PRINTING_STATES: Final = frozenset({"PREPARE", "RUNNING", "PAUSE", "SLICING"})

# stg_cur values (the printer's current stage) and the slug we show for each.
STAGES: Final[dict[int, str]] = {
    -1: "idle",
    0: "printing",
    1: "auto_bed_leveling",
    2: "heatbed_preheating",
    3: "sweeping_xy_mech_mode",
    4: "changing_filament",
    5: "m400_pause",
    6: "paused_filament_runout",
    7: "heating_hotend",
    8: "calibrating_extrusion",
    9: "scanning_bed_surface",
    10: "inspecting_first_layer",
    11: "identifying_build_plate_type",
    12: "calibrating_micro_lidar",
    13: "homing_toolhead",
    14: "cleaning_nozzle_tip",
    15: "checking_extruder_temperature",
    16: "paused_user",
    17: "paused_front_cover_falling",
    18: "calibrating_lidar",
    19: "calibrating_extrusion_flow",
    20: "paused_nozzle_temperature_malfunction",
    21: "paused_heat_bed_temperature_malfunction",
    22: "filament_unloading",
    23: "paused_skipped_step",
    24: "filament_loading",
    25: "calibrating_motor_noise",
    26: "paused_ams_lost",
    27: "paused_low_fan_speed_heat_break",
    28: "paused_chamber_temperature_control_error",
    29: "cooling_chamber",
    30: "paused_user_gcode",
    31: "motor_noise_showoff",
    32: "paused_nozzle_filament_covered",
    33: "paused_cutter_error",
    34: "paused_first_layer_error",
    35: "paused_nozzle_clog",
}
STAGE_OPTIONS: Final = tuple(dict.fromkeys([*STAGES.values(), "unknown"]))


@dataclass(frozen=True, slots=True)
class Filament:
    """The filament the printer is feeding from."""

    material: str | None
    color: str | None
    name: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Tray:
    """A loaded filament the printer can print from, by the slot code ams_mapping uses.

    AMS and AMS Lite: unit id x 4 + tray (0-15); AMS HT: the unit's id (128-135); the external
    spool holder: 254.
    """

    code: int
    material: str
    color: str | None  # "#RRGGBB"


def _trays(raw: Mapping[str, Any], ams_units: tuple[AmsUnit, ...] | None = None) -> tuple[Tray, ...]:
    """Every tray with filament in it, AMS units first, then the external holders."""
    if ams_units is None:
        ams_units = units(raw)
    return tuple(
        Tray(tray.code, tray.material, tray.color)
        for trays in (*(unit.trays for unit in ams_units), external_trays(raw))
        for tray in trays
        if tray.material
    )


def _nozzle(raw: Mapping[str, Any]) -> float | None:
    try:
        value = float(raw.get("nozzle_diameter"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if 0 < value < 5 else None


# `fun` is a hex string of capability bits; this one says the printer's authorization control is
# on: it refuses project_file, gcode_file and gcode_line unless they are signed.
AUTHORIZATION_BIT: Final = 0x20000000


def _signing(raw: Mapping[str, Any]) -> bool | None:
    text = raw.get("fun")
    try:
        return bool(int(str(text), 16) & AUTHORIZATION_BIT) if text not in (None, "") else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    """Return an int from a number or a numeric string; None otherwise."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _temp(value: Any) -> float | None:
    """Return a temperature rounded to 0.1 °C, so sensor noise below that is not a change."""
    try:
        return round(float(value), 1)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    """Return a non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def _stage(raw: Mapping[str, Any]) -> str | None:
    stage = _int(raw.get("stg_cur"))
    if stage is None:
        return None
    if stage == 255:
        stage = -1
    # Stage 0 is reported while idle too; it only means "printing" when a print runs.
    if stage == 0 and raw.get("gcode_state") not in ("RUNNING", "PREPARE"):
        return "idle"
    return STAGES.get(stage, "unknown")


def _wifi(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("wifi_signal")
    if isinstance(value, str):
        return _int(value.removesuffix("dBm"))
    return _int(value)


def _chamber(raw: Mapping[str, Any]) -> float | None:
    if "chamber_temper" in raw:
        return _temp(raw["chamber_temper"])
    device = raw.get("device")
    if isinstance(device, dict):
        ctc = device.get("ctc")
        if isinstance(ctc, dict) and isinstance(ctc.get("info"), dict):
            return _temp(ctc["info"].get("temp"))
    return None


def _filament(raw: Mapping[str, Any]) -> Filament | None:
    code = active_tray(raw)
    tray = raw_tray(raw, code) if code is not None else None
    if not tray or code is None:
        return None
    return Filament(
        material=_text(tray.get("tray_type")),
        color=_text(tray.get("tray_color")),
        name=_text(tray.get("tray_sub_brands")) or _text(tray.get("tray_id_name")),
        source=tray_source(code),
    )


def _fan(key: str) -> Callable[[Mapping[str, Any]], int | None]:
    """A fan's speed in percent, in steps of 10: the printers report 0-15 (as text).

    Bambu's own app shows the same 10 % steps; 15ths (7, 13, 20...) would flap with every report.
    """

    def read(raw: Mapping[str, Any]) -> int | None:
        value = _int(raw.get(key))
        return math.ceil(value * 10 / 15) * 10 if value is not None and 0 <= value <= 15 else None

    return read


def _chamber_lights(raw: Mapping[str, Any]) -> tuple[tuple[str, bool], ...]:
    """Each chamber light (an H2D or H2S has two: chamber_light and chamber_light2) and whether it is on."""
    return tuple(
        (node, light.get("mode") == "on")
        for light in raw.get("lights_report") or ()
        if isinstance(light, dict)
        and isinstance(node := light.get("node"), str)
        and node.startswith("chamber_light")
    )


def _light(raw: Mapping[str, Any]) -> bool | None:
    """Whether a chamber light is on (either of two); None when the printer reports none."""
    lights = _chamber_lights(raw)
    return any(on for _, on in lights) if lights else None


# The nozzle materials the printers name; the H2D, H2S and P2S report a code instead (HS01: its
# second letter the material, S stainless, H hardened steel).
NOZZLE_MATERIALS: Final = ("stainless_steel", "hardened_steel")
_NOZZLE_CODES: Final = {"S": "stainless_steel", "H": "hardened_steel"}


def _nozzle_type(raw: Mapping[str, Any]) -> str | None:
    """The nozzle's material, whether the printer names it or reports its code; None if unknown."""
    value = _text(raw.get("nozzle_type"))
    if value in NOZZLE_MATERIALS:
        return value
    if value and len(value) == 4 and value[2:].isdigit():
        return _NOZZLE_CODES.get(value[1])
    return None


def _rtsp_url(raw: Mapping[str, Any]) -> str | None:
    ipcam = raw.get("ipcam")
    return _text(ipcam.get("rtsp_url")) if isinstance(ipcam, dict) else None


def _hms(raw: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(
        (_int(item.get("attr")) or 0) << 32 | (_int(item.get("code")) or 0)
        for item in raw.get("hms") or ()
        if isinstance(item, dict)
    )


# Public field -> (raw keys it reads, how to compute it). Adding a field is adding a row.
FIELDS: Final[dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], Any]]]] = {
    "gcode_state": (("gcode_state",), lambda r: _text(r.get("gcode_state"))),
    "stage": (("stg_cur", "gcode_state"), _stage),
    "progress": (("mc_percent",), lambda r: _int(r.get("mc_percent"))),
    "remaining_time": (("mc_remaining_time",), lambda r: _int(r.get("mc_remaining_time"))),
    "gcode_file": (("gcode_file",), lambda r: _text(r.get("gcode_file"))),
    "subtask_name": (("subtask_name",), lambda r: _text(r.get("subtask_name"))),
    "layer": (("layer_num",), lambda r: _int(r.get("layer_num"))),
    "total_layers": (("total_layer_num",), lambda r: _int(r.get("total_layer_num"))),
    "start_time": (("gcode_start_time",), lambda r: _int(r.get("gcode_start_time")) or None),
    "nozzle_temp": (("nozzle_temper",), lambda r: _temp(r.get("nozzle_temper"))),
    "nozzle_target": (("nozzle_target_temper",), lambda r: _temp(r.get("nozzle_target_temper"))),
    "bed_temp": (("bed_temper",), lambda r: _temp(r.get("bed_temper"))),
    "bed_target": (("bed_target_temper",), lambda r: _temp(r.get("bed_target_temper"))),
    "chamber_temp": (("chamber_temper", "device"), _chamber),
    "filament": (("ams", "vt_tray", "vir_slot", "device"), _filament),
    "print_error": (("print_error",), lambda r: _int(r.get("print_error")) or 0),
    "hms": (("hms",), _hms),
    "wifi_signal": (("wifi_signal",), _wifi),
    "trays": (("ams", "vt_tray", "vir_slot"), _trays),
    "nozzle_diameter": (("nozzle_diameter",), _nozzle),
    "signing_required": (("fun",), _signing),
    "ams_units": (("ams",), units),
    "external_trays": (("vt_tray", "vir_slot"), external_trays),
    "active_tray": (("ams", "device", "vir_slot"), active_tray),
    "rtsp_url": (("ipcam",), _rtsp_url),
    "errors": (("hms", "print_error"), errors),
    "part_fan": (("cooling_fan_speed",), _fan("cooling_fan_speed")),
    "aux_fan": (("big_fan1_speed",), _fan("big_fan1_speed")),
    "chamber_fan": (("big_fan2_speed",), _fan("big_fan2_speed")),
    "nozzle_type": (("nozzle_type",), _nozzle_type),
    "speed_level": (("spd_lvl",), lambda r: _int(r.get("spd_lvl"))),
    "chamber_light": (("lights_report",), _light),
    # True once a full report (msg 0) was merged: the AMS lists are then the whole truth. Read from
    # no raw key: merge sets it.
    "full_report": ((), lambda r: None),
    "chamber_light_nodes": (
        ("lights_report",),
        lambda r: tuple(node for node, _ in _chamber_lights(r)) or None,
    ),
}

# The fields computed from the AMS units (read once for both).
_UNIT_FIELDS: Final = frozenset({"ams_units", "trays"})

# Raw key -> the public fields that read it.
_FIELDS_BY_RAW_KEY: Final[dict[str, tuple[str, ...]]] = {}
for _name, (_keys, _) in FIELDS.items():
    for _key in _keys:
        _FIELDS_BY_RAW_KEY[_key] = (*_FIELDS_BY_RAW_KEY.get(_key, ()), _name)


class PrinterState:
    """One printer's merged raw report and the public fields computed from it."""

    __slots__ = ("ams_lite", "fields", "raw")

    def __init__(self, ams_lite: bool = False) -> None:
        """Start empty: every public field is None until a report says otherwise.

        ams_lite: the printer takes AMS Lites (ams.has_ams_lite), whose reports do not say so.
        """
        self.raw: dict[str, Any] = {}
        self.fields: dict[str, Any] = dict.fromkeys(FIELDS)
        self.ams_lite = ams_lite

    def set_ams_lite(self, ams_lite: bool) -> frozenset[str]:
        """Learn (from get_version) whether the units are AMS Lites; return the fields that changed."""
        if ams_lite == self.ams_lite:
            return frozenset()
        self.ams_lite = ams_lite
        if "ams" not in self.raw:
            return frozenset()
        value = units(self.raw, ams_lite)
        if value == self.fields["ams_units"]:
            return frozenset()
        self.fields["ams_units"] = value
        return frozenset({"ams_units"})

    def merge(self, report: Mapping[str, Any]) -> frozenset[str]:
        """Merge one `print` object (full or delta) and return the public fields it changed."""
        raw = self.raw
        touched: set[str] = set()
        fields_by_key = _FIELDS_BY_RAW_KEY
        # msg 0 marks a full report (pushall, every X1 report): its AMS lists are the whole truth.
        full = report.get("msg") == 0
        first_full = full and not self.fields["full_report"]
        for key, value in report.items():
            old = raw.get(key)
            fields = fields_by_key.get(key)
            if fields is None:
                # Nobody reads this key: keep it (diagnostics) without comparing. Nested objects
                # arrive partially in deltas, so they are merged one level.
                raw[key] = {**old, **value} if type(value) is dict and type(old) is dict else value
                continue
            if type(value) is dict:
                # A full report repeats the whole AMS every time: one comparison of the object
                # costs less than reading its units and trays again.
                if full and old == value:
                    continue
                if type(old) is not dict:
                    raw[key] = value
                elif key == "ams" and not full:
                    raw[key] = merge_ams(old, value)
                else:
                    raw[key] = {**old, **value}
            elif old == value and key in raw:
                continue
            else:
                raw[key] = value
            touched.update(fields)
        if first_full:
            self.fields["full_report"] = True
        if not touched:
            return frozenset({"full_report"}) if first_full else frozenset()
        changed = ["full_report"] if first_full else []
        current = self.fields
        # The units are read once per report, for both fields that list them (no cache shared
        # between printers: each merges in its own thread).
        ams_units: tuple[AmsUnit, ...] | None = None
        for name in touched:
            if name in _UNIT_FIELDS:
                if ams_units is None:
                    ams_units = units(raw, self.ams_lite)
                value = ams_units if name == "ams_units" else _trays(raw, ams_units)
            else:
                value = FIELDS[name][1](raw)
            if current[name] != value:
                current[name] = value
                changed.append(name)
        return frozenset(changed)

    def clear(self) -> None:
        """Forget everything (the printer restarted, or we reconnected and will get a full report)."""
        self.raw.clear()
        for name in self.fields:
            self.fields[name] = None


def merge_ams(old: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a delta's `ams` object: units by id, their trays by id, field by field.

    A P1 or A1 delta names only the units and trays that changed, and only their changed keys;
    whatever it does not name stays as it was.
    """
    merged = {**old, **delta}
    units = delta.get("ams")
    if isinstance(units, list) and isinstance(old.get("ams"), list):
        merged["ams"] = _merge_by_id(old["ams"], units, _merge_unit)
    if "ams_exist_bits" in delta and isinstance(merged.get("ams"), list):
        # A unit taken away is named only by its bit: forget what it said, so that a unit put back
        # in its place starts afresh.
        bits = delta["ams_exist_bits"]
        merged["ams"] = [
            unit
            for unit in merged["ams"]
            if not isinstance(unit, dict) or unit_present(_int(unit.get("id")), bits)
        ]
    return merged


def _merge_unit(old: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    merged = {**old, **delta}
    trays = delta.get("tray")
    if isinstance(trays, list) and isinstance(old.get("tray"), list):
        merged["tray"] = _merge_by_id(old["tray"], trays, lambda tray, changes: {**tray, **changes})
    return merged


def _merge_by_id(
    old: list[Any], delta: list[Any], merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
) -> list[Any]:
    """Each entry of delta merged into the old entry with its id (ids compared as text), or added.

    An entry without an id cannot be placed, and is left out rather than piled up delta after delta.
    """
    merged = list(old)
    index = {str(item.get("id")): at for at, item in enumerate(merged) if isinstance(item, dict)}
    for item in delta:
        if not isinstance(item, dict) or "id" not in item:
            continue
        key = str(item["id"])
        if (at := index.get(key)) is None:
            index[key] = len(merged)
            merged.append(item)
        else:
            merged[at] = merge(merged[at], item)
    return merged


@dataclass(frozen=True, slots=True)
class PrinterVersion:
    """What the printer says about itself in its get_version reply."""

    model: str | None
    firmware: str | None


def model_from_code(code: str | None) -> str | None:
    """Map a project or SSDP model code (C11, BL-P001, N2S...) to the model name."""
    return canonical_model(code)


def parse_version(info: Mapping[str, Any], serial: str) -> PrinterVersion:
    """Read the model and firmware from a get_version reply's `info` object."""
    for module in info.get("module") or ():
        if isinstance(module, dict) and module.get("name") == "ota":
            product = _text(module.get("product_name"))
            model = (
                canonical_model(product) or product.removeprefix("Bambu Lab ")
                if product
                else model_from_code(_text(module.get("project_name")))
            )
            return PrinterVersion(model or model_from_serial(serial), _text(module.get("sw_ver")))
    return PrinterVersion(model_from_serial(serial), None)
