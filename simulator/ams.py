"""The simulated printer's AMS units: building them, changing them, and the delta a P1 or A1 sends.

Units: AMS and AMS Lite (ids 0-3, four slots), AMS 2 Pro (ids 0-3, four slots), AMS HT (ids
128-135, one slot). The bit fields (`ams_exist_bits`, `tray_exist_bits`...) are kept in step with
the units and trays, as the firmware does: bit u (AMS) or 4 + n (AMS HT 128 + n) of ams_exist_bits,
bit 4u + slot (AMS) or 16 + n (AMS HT) of tray_exist_bits.
"""

from __future__ import annotations

import copy
from typing import Any, Final

KINDS: Final = {"ams": 1, "ams_lite": 2, "ams_2_pro": 3, "ams_ht": 4}  # the low digit of `info`
HT_FIRST: Final = 128
STOCK: Final = (
    ("PLA", "GFA00", "PLA Basic", "FFFFFFFF"),
    ("PLA", "GFA01", "PLA Matte", "000000FF"),
    ("PETG", "GFG00", "PETG Basic", "F95959FF"),
    ("PLA", "GFA00", "PLA Basic", "00AE42FF"),
)


def new_tray(tray_id: str, material: str, info_idx: str, brand: str, color: str) -> dict[str, Any]:
    """A loaded tray as the printers report it (a third-party spool: no RFID ids)."""
    return {
        "id": tray_id,
        "remain": 100,
        "k": 0.02,
        "n": 1,
        "tag_uid": "0000000000000000",
        "tray_id_name": "",
        "tray_info_idx": info_idx,
        "tray_type": material,
        "tray_sub_brands": brand,
        "tray_color": color,
        "tray_weight": "1000",
        "tray_diameter": "1.75",
        "tray_temp": "0",
        "tray_time": "0",
        "bed_temp_type": "0",
        "bed_temp": "0",
        "nozzle_temp_max": "240",
        "nozzle_temp_min": "190",
        "xcam_info": "000000000000000000000000",
        "tray_uuid": "00000000000000000000000000000000",
        "cols": [color],
        "cali_idx": -1,  # no flow calibration chosen
        "ctype": 0,
    }


def _unit_bit(unit: int) -> int:
    return unit - HT_FIRST + 4 if unit >= HT_FIRST else unit


def _tray_bit(unit: int, slot: int) -> int:
    return unit - HT_FIRST + 16 if unit >= HT_FIRST else unit * 4 + slot


def _x1_tray(tray: dict[str, Any]) -> dict[str, Any]:
    return {**tray, "drying_temp": "0", "drying_time": "0", "state": 11, "total_len": 330000}


def new_unit(
    unit_id: int, kind: str = "ams", *, x1: bool, trays: list[dict[str, Any] | None] | None = None
) -> dict[str, Any]:
    """A unit of this kind with stock trays (or the given raw tray keys; None an empty slot)."""
    if kind not in KINDS:
        raise ValueError(f"unknown AMS kind {kind!r}: one of {sorted(KINDS)}")
    if (kind == "ams_ht") != (HT_FIRST <= unit_id <= HT_FIRST + 7) or not (
        0 <= unit_id < 4 or unit_id >= HT_FIRST
    ):
        raise ValueError("AMS ids are 0-3; AMS HT ids 128-135")
    slots = 1 if kind == "ams_ht" else 4
    if trays is not None and len(trays) != slots:
        raise ValueError(f"an {kind} unit has {slots} slot(s)")
    unit: dict[str, Any] = {
        "id": str(unit_id),
        "humidity": "4",
        "temp": "24.5" if kind != "ams_lite" else "0.0",
    }
    result = []
    for slot in range(slots):
        fields = trays[slot] if trays is not None else {}
        result.append(_filled(str(slot), fields, x1=x1, stock=STOCK[(unit_id + slot) % 4]))
    unit["tray"] = result
    if x1:
        unit.update(dry_time=0, humidity_raw="20", info=f"100{KINDS[kind]}")
    return unit


def _filled(slot: str, fields: dict[str, Any] | None, *, x1: bool, stock: tuple[str, ...]) -> dict[str, Any]:
    if fields is None:
        return {"id": slot, "state": 0} if x1 else {"id": slot}
    tray = new_tray(slot, *stock)
    tray.update(fields, id=slot)
    if "tray_color" in fields:
        tray["cols"] = [tray["tray_color"]]
    return _x1_tray(tray) if x1 else tray


def update_bits(ams: dict[str, Any]) -> None:
    """Set the bit fields from the units and trays present."""
    units = tray_bits = 0
    for unit in ams["ams"]:
        unit_id = int(unit["id"])
        units |= 1 << _unit_bit(unit_id)
        for tray in unit["tray"]:
            if tray.get("tray_type"):
                tray_bits |= 1 << _tray_bit(unit_id, int(tray["id"]))
    ams["ams_exist_bits"] = format(units, "x")
    if "ams_exist_bits_raw" in ams:
        ams["ams_exist_bits_raw"] = ams["ams_exist_bits"]
    for key in ("tray_exist_bits", "tray_is_bbl_bits", "tray_read_done_bits"):
        ams[key] = format(tray_bits, "x")


def set_units(ams: dict[str, Any], units: list[dict[str, Any]], *, x1: bool) -> None:
    """Replace every unit: each {"id", "kind"?, "trays"? (raw keys per slot, None empty), raw unit keys?}."""
    built = []
    for spec in units:
        if not isinstance(spec, dict) or type(spec.get("id")) is not int:
            raise ValueError("each unit needs an integer 'id'")
        extra = {key: value for key, value in spec.items() if key not in ("id", "kind", "trays")}
        if set(extra) - {"humidity", "humidity_raw", "temp"}:
            raise ValueError("unit keys: id, kind, trays, humidity, humidity_raw, temp")
        unit = new_unit(
            spec["id"],
            spec.get("kind", "ams_ht" if spec["id"] >= HT_FIRST else "ams"),
            x1=x1,
            trays=spec.get("trays"),
        )
        unit.update({key: str(value) for key, value in extra.items()})
        built.append(unit)
    if len({unit["id"] for unit in built}) != len(built):
        raise ValueError("unit ids must differ")
    ams["ams"] = built
    update_bits(ams)


def remove_unit(ams: dict[str, Any], unit_id: int) -> None:
    """Take a unit away."""
    kept = [unit for unit in ams["ams"] if unit["id"] != str(unit_id)]
    if len(kept) == len(ams["ams"]):
        raise LookupError(f"no AMS unit {unit_id}")
    ams["ams"] = kept
    update_bits(ams)


def set_tray(
    ams: dict[str, Any], unit_id: int, slot: int, fields: dict[str, Any] | None, *, x1: bool
) -> None:
    """Empty a tray (fields None), or load it: raw keys over the tray's own (a stock spool if it was empty)."""
    for unit in ams["ams"]:
        if unit["id"] == str(unit_id):
            for at, tray in enumerate(unit["tray"]):
                if tray["id"] == str(slot):
                    if fields is None or not tray.get("tray_type"):
                        unit["tray"][at] = _filled(
                            str(slot), fields, x1=x1, stock=STOCK[(unit_id + slot) % 4]
                        )
                    else:
                        tray.update(fields)
                        if "tray_color" in fields:
                            tray["cols"] = [tray["tray_color"]]
                    update_bits(ams)
                    return
    raise LookupError(f"no tray {slot} in AMS unit {unit_id}")


def delta(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The `ams` object of a P1/A1 delta: the changed keys, units and trays only, each by its id."""
    if not isinstance(old, dict):
        return copy.deepcopy(new)
    body = {key: copy.deepcopy(value) for key, value in new.items() if key != "ams" and old.get(key) != value}
    before = {unit["id"]: unit for unit in old.get("ams") or ()}
    units = []
    for unit in new.get("ams") or ():
        previous = before.get(unit["id"])
        if previous is None:
            units.append(copy.deepcopy(unit))
            continue
        if previous == unit:
            continue
        changes: dict[str, Any] = {
            key: copy.deepcopy(value)
            for key, value in unit.items()
            if key != "tray" and previous.get(key) != value
        }
        trays_before = {tray["id"]: tray for tray in previous.get("tray") or ()}
        trays = [
            {
                "id": tray["id"],
                **{
                    key: copy.deepcopy(value)
                    for key, value in tray.items()
                    if trays_before.get(tray["id"], {}).get(key) != value
                },
            }
            for tray in unit.get("tray") or ()
            if trays_before.get(tray["id"]) != tray
        ]
        if trays:
            changes["tray"] = trays
        units.append({**changes, "id": unit["id"]})
    if units:
        body["ams"] = units
    return body
