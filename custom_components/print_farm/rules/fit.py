"""Whether a printer can print a file: its model, its nozzle, and the filament it has loaded.

A job for "any printer" starts on a printer that fits it; a job pinned to a printer starts only when
it fits too (a wrong filament hangs a Bambu printer in "preparing AMS"). For a sliced 3MF the
filament fit is also the `ams_mapping` sent with the start:

- one entry per filament of the project up to the highest slot the plate uses (slots numbered from
  1 as the slicer numbers them), in order; the entry is the printer's slot code for that filament: AMS and AMS Lite units
  `unit x 4 + tray` (0-15), AMS HT units their id (128-135), the external spool holder 254 (and 255
  for the second holder of an H2D); -1 for a project filament the plate does not use;
- each used filament takes a loaded tray of the same material (PLA, PETG...) and, when the file
  states one, the same colour; the AMS before the external spool, lower slots first;
- `use_ams` is true when any entry is an AMS slot.

A plain G-code file carries no mapping: the printer prints it with the filament it feeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

EXTERNAL: Final = frozenset({254, 255})
# Models whose files may be swapped: the same motion system, bed and hotend (the P1S adds an
# enclosure and fans to the P1P; the X1 Carbon is the X1 with another finish).
INTERCHANGEABLE: Final = ({"P1P", "P1S"}, {"X1", "X1C"})
NOZZLE_TOLERANCE_MM: Final = 0.01


@dataclass(frozen=True, slots=True)
class Loaded:
    """A tray with filament in it: its slot code, material (upper case) and colour (#RRGGBB)."""

    code: int
    material: str
    color: str | None


@dataclass(frozen=True, slots=True)
class PrinterFacts:
    """What a printer reports that decides what it can print."""

    model: str | None  # the short name (X1C, P1S...), None when unknown
    nozzle_mm: float | None
    trays: tuple[Loaded, ...]


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a print file says about the printer it was sliced for."""

    file_format: str  # gcode, bgcode, gcode.3mf
    model: str | None  # short name, or the file's own name when it is not a Bambu model
    stated_model: bool  # the file names a printer at all
    nozzle_mm: float | None
    filaments: tuple[tuple[int, str | None, str | None], ...]  # (slot from 1, material, colour) used


@dataclass(frozen=True, slots=True)
class Fit:
    """How a file starts on a printer that can print it."""

    ams_mapping: list[int] | None  # None for plain G-code
    use_ams: bool


def file_facts(
    info: Mapping[str, Any], plate: int, model_of: Callable[[str | None], str | None]
) -> FileFacts:
    """Read the facts of an item's metadata (fileinfo's `to_json_dict`) for one plate.

    `model_of` turns a model name into the short one (None for a name that is not a Bambu model).
    """
    stated = info.get("printer_model")
    filaments: list[tuple[int, str | None, str | None]] = []
    plates = info.get("plates") or []
    tools = next((item.get("filaments") for item in plates if item.get("index") == plate), None)
    if tools is None:
        tools = info.get("filament_per_tool") or []
    for tool in tools:
        if tool.get("grams") == 0 and tool.get("mm") in (0, None):
            continue
        filaments.append((int(tool.get("tool", 0)) + 1, tool.get("material"), tool.get("color")))
    return FileFacts(
        file_format=str(info.get("file_format") or ""),
        model=model_of(stated) or stated,
        stated_model=bool(stated),
        nozzle_mm=info.get("nozzle_diameter_mm"),
        filaments=tuple(filaments),
    )


def models_match(file_model: str, printer_model: str) -> bool:
    """Whether a file sliced for one model prints on another."""
    return file_model == printer_model or any(
        file_model in group and printer_model in group for group in INTERCHANGEABLE
    )


def fit(file: FileFacts, printer: PrinterFacts) -> Fit | str:
    """How the file starts on the printer, or why the printer cannot print it."""
    if file.file_format == "bgcode":
        return "a binary G-code file does not print on a Bambu Lab printer"
    if (
        file.stated_model
        and file.model != printer.model
        and (printer.model is None or file.model is None or not models_match(file.model, printer.model))
    ):
        return f"it was sliced for {file.model}, not {printer.model or 'this printer'}"
    if (
        file.nozzle_mm is not None
        and printer.nozzle_mm is not None
        and abs(file.nozzle_mm - printer.nozzle_mm) > NOZZLE_TOLERANCE_MM
    ):
        return f"it was sliced for a {file.nozzle_mm:g} mm nozzle, the printer has {printer.nozzle_mm:g} mm"
    if file.file_format != "gcode.3mf":
        return Fit(None, False)
    mapping = ams_mapping(file.filaments, printer.trays)
    if isinstance(mapping, str):
        return mapping
    return Fit(mapping, any(0 <= code < 254 for code in mapping))


def ams_mapping(
    filaments: Sequence[tuple[int, str | None, str | None]], trays: Iterable[Loaded]
) -> list[int] | str:
    """The mapping of a plate's filaments to loaded trays, or what is missing ("no PETG loaded")."""
    loaded = sorted(trays, key=lambda tray: (tray.code in EXTERNAL, tray.code))
    size = max((slot for slot, _, _ in filaments), default=0)
    mapping = [-1] * size
    for slot, material, color in filaments:
        wanted = (material or "").strip().upper()
        colour = color.upper() if color else None
        same = [tray for tray in loaded if not wanted or tray.material == wanted]
        if not same:
            return f"no {wanted} loaded"
        matching = [tray for tray in same if colour is None or tray.color == colour]
        if not matching:
            return f"no {wanted} in {colour} loaded"
        mapping[slot - 1] = matching[0].code
    return mapping
