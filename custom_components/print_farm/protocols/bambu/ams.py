"""What a Bambu Lab printer has loaded: its AMS units, their trays, the external holders, the active tray.

Reads the merged `print` object (see state.py). Every AMS kind is covered: AMS and AMS Lite
(ids 0-3, four slots), AMS 2 Pro (ids 0-3, four slots) and AMS HT (ids 128-135, one slot), and
both ways a printer names the loaded tray: the older `ams.tray_now` and the newer
`device.extruder.info[].snow`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

EXTERNAL: Final = 254  # the external spool holder's unit and code (vt_tray)
EXTERNAL_2: Final = 255  # the second external holder of a two-nozzle printer (H2D)
NOTHING_LOADED: Final = 255  # ams.tray_now when no filament is loaded
SNOW_NOTHING: Final = 0xFFFF  # device.extruder.info[].snow when no filament is loaded
HT_FIRST, HT_LAST = 128, 135  # AMS HT unit ids

# The low hex digit of a unit's `info` says which kind of AMS it is; bits 8-11 which extruder it
# feeds, 0xE while the unit is not set up yet.
_KINDS: Final = {1: "ams", 2: "ams_lite", 3: "ams_2_pro", 4: "ams_ht"}
_UNINITIALISED: Final = 0xE
# The printers that take only an AMS Lite; their reports carry no `info` to say so.
AMS_LITE_MODELS: Final = frozenset({"A1", "A1 mini"})
_AMS_LITE_MODULE: Final = "ams_f1/"  # get_version's module name for an AMS Lite
UNIT_KINDS: Final = ("ams", "ams_lite", "ams_2_pro", "ams_ht")
_ZEROS: Final = frozenset("0")


@dataclass(frozen=True, slots=True)
class AmsTray:
    """One slot of an AMS unit, or an external spool holder."""

    unit: int  # AMS 0-3, AMS HT 128-135, external holder 254 (the second one: 255)
    slot: int  # 0-3 in an AMS; 0 in an AMS HT or an external holder
    code: int  # the slot code ams_mapping uses (unit*4+slot, the AMS HT's id, 254/255 external)
    material: str | None  # tray_type upper-case; None when the tray is empty
    color: str | None  # "#RRGGBB"
    name: str | None  # tray_sub_brands, else tray_id_name
    remaining: int | None  # percent, when the printer knows it
    tray_uuid: str | None  # the Bambu spool's RFID tray_uuid; None when missing or all zeros
    tag_uid: str | None  # None when missing or all zeros


@dataclass(frozen=True, slots=True)
class AmsUnit:
    """One AMS unit and every slot it reports."""

    id: int
    kind: str  # "ams", "ams_lite", "ams_2_pro", "ams_ht"
    humidity: int | None  # percent (humidity_raw), where reported
    humidity_level: int | None  # Bambu's 1-5 level (the `humidity` key): 5 the driest, 1 the wettest
    temperature: float | None  # where reported
    trays: tuple[AmsTray, ...]


def tray_code(unit: int, slot: int) -> int:
    """The slot code ams_mapping uses for a unit's slot."""
    return unit if unit >= HT_FIRST else unit * 4 + slot


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _hex(value: Any) -> int | None:
    try:
        return int(value, 16) if isinstance(value, str) else None
    except ValueError:
        return None


def _id(value: Any) -> str | None:
    """Return a non-empty id that is not all zeros, upper-case; None otherwise."""
    if not isinstance(value, str) or not value or set(value) <= _ZEROS:
        return None
    return value.upper()


def _unit_bit(unit: int) -> int:
    """The unit's bit in ams_exist_bits: 0-3 for AMS ids 0-3, 4-11 for AMS HT 128-135."""
    return unit - HT_FIRST + 4 if unit >= HT_FIRST else unit


def unit_present(unit: int | None, exist_bits: Any) -> bool:
    """Whether ams_exist_bits (a hex string) names the unit; True when either is unknown."""
    bits = _hex(exist_bits)
    return unit is None or bits is None or bool(bits >> _unit_bit(unit) & 1)


def _tray_bit(unit: int, slot: int) -> int:
    """The tray's bit in tray_exist_bits: unit*4+slot for AMS ids 0-3, 16-23 for AMS HT 128-135."""
    return unit - HT_FIRST + 16 if unit >= HT_FIRST else unit * 4 + slot


def _tray(raw: Mapping[str, Any], unit: int, slot: int, code: int, present: bool) -> AmsTray:
    material = raw.get("tray_type")
    if not present or not isinstance(material, str) or not material:
        return AmsTray(unit, slot, code, None, None, None, None, None, None)
    color = raw.get("tray_color")
    remain = _int(raw.get("remain"))
    name = raw.get("tray_sub_brands") or raw.get("tray_id_name")
    return AmsTray(
        unit=unit,
        slot=slot,
        code=code,
        material=material.upper(),
        color=f"#{color[:6].upper()}" if isinstance(color, str) and len(color) >= 6 else None,
        name=name if isinstance(name, str) and name else None,
        # An external holder has no way to measure and reports 0.
        remaining=min(remain, 100)
        if remain is not None and (remain > 0 if unit >= EXTERNAL else remain >= 0)
        else None,
        tray_uuid=_id(raw.get("tray_uuid")),
        tag_uid=_id(raw.get("tag_uid")),
    )


def _kind(info: int | None, unit_id: int, lite: bool) -> str:
    kind = _KINDS.get(info & 0xF) if info is not None else None
    return kind or ("ams_ht" if unit_id >= HT_FIRST else "ams_lite" if lite else "ams")


def has_ams_lite(model: str | None, version_info: Mapping[str, Any] | None = None) -> bool:
    """Whether the printer's units are AMS Lites: an A1 or A1 mini, or get_version names an ams_f1 module."""
    if model in AMS_LITE_MODELS:
        return True
    modules = version_info.get("module") if version_info else None
    return any(
        isinstance(module, dict) and str(module.get("name", "")).startswith(_AMS_LITE_MODULE)
        for module in modules or ()
    )


def units(raw: Mapping[str, Any], lite: bool = False) -> tuple[AmsUnit, ...]:
    """Every AMS unit the printer reports, in the order it lists them (empty when there is none).

    lite: the printer takes AMS Lites (has_ams_lite), for units whose report does not say its kind.
    """
    ams = raw.get("ams")
    return _read_units(ams, lite) if isinstance(ams, dict) else ()


def _read_units(ams: dict[str, Any], lite: bool) -> tuple[AmsUnit, ...]:
    listed = ams.get("ams")
    if not isinstance(listed, list):
        return ()
    exist_bits = _hex(ams.get("ams_exist_bits"))
    tray_bits = _hex(ams.get("tray_exist_bits"))
    result = []
    for unit in listed:
        unit_id = _int(unit.get("id")) if isinstance(unit, dict) else None
        if unit_id is None or not (0 <= unit_id < 4 or HT_FIRST <= unit_id <= HT_LAST):
            continue
        if exist_bits is not None and not exist_bits >> _unit_bit(unit_id) & 1:
            continue  # the printer says the unit is gone (a delta does not repeat the list)
        info = _hex(unit.get("info"))
        if info is not None and (info >> 8) & 0xF == _UNINITIALISED:
            continue  # not set up yet: it reports no trays worth showing
        trays = []
        for tray in unit.get("tray") or ():
            slot = _int(tray.get("id")) if isinstance(tray, dict) else None
            if slot is None or not 0 <= slot < (1 if unit_id >= HT_FIRST else 4):
                continue
            present = tray_bits is None or bool(tray_bits >> _tray_bit(unit_id, slot) & 1)
            trays.append(_tray(tray, unit_id, slot, tray_code(unit_id, slot), present))
        humidity = _int(unit.get("humidity_raw"))
        level = _int(unit.get("humidity"))
        try:
            temperature: float | None = round(float(unit["temp"]), 1)
        except (KeyError, TypeError, ValueError):
            temperature = None
        result.append(
            AmsUnit(
                id=unit_id,
                kind=_kind(info, unit_id, lite),
                # A unit just powered on reports 0 until its sensor has read.
                humidity=humidity if humidity is not None and 0 < humidity <= 100 else None,
                humidity_level=level if level is not None and 1 <= level <= 5 else None,
                # An AMS without a sensor (AMS Lite, the first AMS on P1 firmware) reports 0.0.
                temperature=temperature or None,
                trays=tuple(sorted(trays, key=lambda tray: tray.slot)),
            )
        )
    return tuple(result)


def external_trays(raw: Mapping[str, Any]) -> tuple[AmsTray, ...]:
    """The external spool holders: the newer `vir_slot` list, else `vt_tray`.

    A printer with one holder is 254 whatever id it reports; a printer with two names them 254 and 255.
    """
    holders = raw.get("vir_slot")
    if not isinstance(holders, list) or not holders:
        vt_tray = raw.get("vt_tray")
        holders = [vt_tray] if isinstance(vt_tray, dict) else []
    holders = [holder for holder in holders if isinstance(holder, dict)]
    if len(holders) == 1:
        return (_tray(holders[0], EXTERNAL, 0, EXTERNAL, True),)
    result = []
    for holder in holders:
        code = _int(holder.get("id"))
        if code in (EXTERNAL, EXTERNAL_2):
            result.append(_tray(holder, code, 0, code, True))
    return tuple(sorted(result, key=lambda tray: tray.code))


SWITCHING: Final = 0xF  # device.extruder.state's current extruder while it changes nozzles


def _active_extruder(extruder: Mapping[str, Any]) -> int | None:
    """Which extruder feeds: bits 4-7 of device.extruder.state (0 the right one, 1 the left).

    Bits 0-3 count the extruders, bits 8-11 name the one it switches to; the current one reads 0xF
    while it switches (None then). A report without the state means the only one, 0.
    """
    state = _int(extruder.get("state"))
    if state is None:
        return 0
    current = (state >> 4) & 0xF
    return None if current == SWITCHING else current


def active_tray(raw: Mapping[str, Any]) -> int | None:
    """The code of the tray feeding the (active) nozzle; None when nothing is loaded."""
    device = raw.get("device")
    extruder = device.get("extruder") if isinstance(device, dict) else None
    info = extruder.get("info") if isinstance(extruder, dict) else None
    if isinstance(info, list) and info:
        assert isinstance(extruder, dict)
        wanted = _active_extruder(extruder)
        if wanted is None:
            return None  # changing nozzles: no tray feeds until it is done
        entries = [entry for entry in info if isinstance(entry, dict) and "snow" in entry]
        entry = next((entry for entry in entries if _int(entry.get("id")) == wanted), None)
        if entry is None and entries:
            entry = entries[0]
        if entry is not None:
            return _from_snow(_int(entry.get("snow")), raw)
    ams = raw.get("ams")
    tray_now = _int(ams.get("tray_now")) if isinstance(ams, dict) else None
    if tray_now is None or tray_now == NOTHING_LOADED:
        return None
    if tray_now == EXTERNAL or 0 <= tray_now < 16 or HT_FIRST <= tray_now <= HT_LAST:
        return tray_now
    return None


def _from_snow(snow: int | None, raw: Mapping[str, Any]) -> int | None:
    """Decode `snow`: high byte the unit (0-3, 128-135, 254/255 external), low byte the slot."""
    if snow is None or snow == SNOW_NOTHING:
        return None
    unit, slot = snow >> 8, snow & 0xFF
    if 0 <= unit < 4 and slot < 4:
        return unit * 4 + slot
    if HT_FIRST <= unit <= HT_LAST and slot == 0:
        return unit
    if unit in (EXTERNAL, EXTERNAL_2) and slot == 0:
        holders = raw.get("vir_slot")
        return unit if isinstance(holders, list) and len(holders) > 1 else EXTERNAL
    return None


def raw_tray(raw: Mapping[str, Any], code: int) -> Mapping[str, Any] | None:
    """The report's own object for the tray with this code (a loaded one), or None."""
    if code >= EXTERNAL:
        holders = raw.get("vir_slot")
        if not isinstance(holders, list) or not holders:
            holders = [raw.get("vt_tray")]
        holders = [holder for holder in holders if isinstance(holder, dict)]
        if len(holders) == 1:
            return holders[0] if code == EXTERNAL else None
        return next((holder for holder in holders if _int(holder.get("id")) == code), None)
    unit_id, slot = (code, 0) if code >= HT_FIRST else divmod(code, 4)
    ams = raw.get("ams")
    if not isinstance(ams, dict) or not unit_present(unit_id, ams.get("ams_exist_bits")):
        return None
    tray_bits = _hex(ams.get("tray_exist_bits"))
    if tray_bits is not None and not tray_bits >> _tray_bit(unit_id, slot) & 1:
        return None
    # Ids come as strings ("0"); compared as strings, no conversion per tray.
    unit_key, slot_key = str(unit_id), str(slot)
    for unit in ams.get("ams") or ():
        if isinstance(unit, dict) and str(unit.get("id")) == unit_key:
            for tray in unit.get("tray") or ():
                if isinstance(tray, dict) and str(tray.get("id")) == slot_key:
                    return tray
            return None
    return None


def tray_source(code: int) -> str:
    """The `source` slug of the filament field for a tray code."""
    if code == EXTERNAL:
        return "external_spool"
    if code == EXTERNAL_2:
        return "external_spool_2"
    if code >= HT_FIRST:
        return f"ams_ht_{code - HT_FIRST + 1}"
    unit, slot = divmod(code, 4)
    return f"ams_{unit + 1}_tray_{slot + 1}"
