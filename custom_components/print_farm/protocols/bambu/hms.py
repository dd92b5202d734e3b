"""Bambu Lab HMS entries and print errors, decoded: module, severity, the wiki's code, a readable text.

An HMS entry is two 32-bit numbers: `attr` (its high byte the module) and `code` (its high 16 bits
the severity). Bambu's wiki writes one as `AAAA_AAAA_CCCC_CCCC` in hex (attr high and low 16 bits,
code high and low 16 bits). `print_error` is one 32-bit number written `XXXX_XXXX`, with no severity;
0x0300400C is the user's own cancel, not a fault. The texts are this project's own words for the
codes a farm meets most; every other code links to its wiki page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

CANCELLED: Final = 0x0300400C  # print_error when the user cancels a print
SEVERITIES: Final = {1: "fatal", 2: "serious", 3: "common", 4: "info"}
FAULT_SEVERITIES: Final = frozenset({"fatal", "serious"})
MODULES: Final = {
    0x03: "motion_controller",
    0x05: "mainboard",
    0x07: "ams",
    0x08: "toolhead",
    0x0C: "camera",
    0x12: "ams_lite",
}
WIKI: Final = "https://wiki.bambulab.com/en/{family}/troubleshooting/hmscode/{code}"
# A print error (one 32-bit number) has no page of its own: the wiki's HMS home instead.
WIKI_HOME: Final = "https://wiki.bambulab.com/en/hms/home"
# The wiki's section per model: the P1 codes are in the X1 section, H2D and H2S share one; a model
# it does not list links to the X1 pages.
_FAMILIES: Final = {
    "X1C": "x1",
    "X1": "x1",
    "X1E": "x1",
    "P1P": "x1",
    "P1S": "x1",
    "A1": "a1",
    "A1 mini": "a1-mini",
    "H2D": "h2",
    "H2S": "h2",
    "P2S": "p2s",
}

# Our own short texts, by the wiki form of the code.
TEXTS: Final = {
    "0300_400C": "The print was cancelled.",
    "0300_0100_0001_0007": "The heated bed temperature reading is abnormal; its sensor may be disconnected.",
    "0300_0100_0001_0001": "The heated bed temperature reading is abnormal.",
    "0700_2000_0002_0001": "AMS slot 1 ran out of filament.",
    "0700_2100_0002_0001": "AMS slot 2 ran out of filament.",
    "0700_2200_0002_0001": "AMS slot 3 ran out of filament.",
    "0700_2300_0002_0001": "AMS slot 4 ran out of filament.",
    "1200_8000_0002_0001": "The AMS Lite filament may be tangled or stuck.",
    "0300_4002": "Auto bed levelling failed; the print was stopped.",
    "0300_4006": "The nozzle is clogged.",
    "0300_4008": "The AMS failed to change filament.",
    "0700_8011": "The AMS ran out of filament.",
}


@dataclass(frozen=True, slots=True)
class PrinterError:
    """One decoded HMS entry or print error."""

    kind: str  # "hms" or "print_error"
    code: str  # the wiki form: 0300_0100_0001_0007 (HMS) or 0300_400C (print error)
    module: str  # motion_controller, mainboard, ams, toolhead, camera, ams_lite or unknown
    severity: str | None  # fatal, serious, common, info or unknown (HMS only)
    text: str | None  # our own words for a common code, else None

    @property
    def fault(self) -> bool:
        """Whether it stops or spoils a print: a fatal or serious HMS entry, or any print error."""
        return self.kind == "print_error" or self.severity in FAULT_SEVERITIES

    def url(self, model: str | None) -> str:
        """The code's page on Bambu's wiki for this printer model (the HMS home for a print error)."""
        if self.kind != "hms":
            return WIKI_HOME
        return WIKI.format(family=_FAMILIES.get(model or "", "x1"), code=self.code)


def _int(value: Any) -> int | None:
    try:
        return int(value) & 0xFFFFFFFF
    except (TypeError, ValueError):
        return None


def _halves(value: int) -> str:
    return f"{value >> 16:04X}_{value & 0xFFFF:04X}"


def decode_hms(attr: int, code: int) -> PrinterError:
    """Decode one HMS entry."""
    wiki = f"{_halves(attr)}_{_halves(code)}"
    return PrinterError(
        kind="hms",
        code=wiki,
        module=MODULES.get(attr >> 24, "unknown"),
        severity=SEVERITIES.get(code >> 16, "unknown"),
        text=TEXTS.get(wiki),
    )


def decode_print_error(value: int) -> PrinterError:
    """Decode a print_error number (0 is no error: do not call this for it)."""
    code = _halves(value)
    return PrinterError("print_error", code, MODULES.get(value >> 24, "unknown"), None, TEXTS.get(code))


def errors(raw: Mapping[str, Any]) -> tuple[PrinterError, ...]:
    """Every HMS entry and the print error of a merged report; the user's cancel is left out."""
    result = []
    for item in raw.get("hms") or ():
        if (
            isinstance(item, dict)
            and (attr := _int(item.get("attr"))) is not None
            and (code := _int(item.get("code"))) is not None
        ):
            result.append(decode_hms(attr, code))
    print_error = _int(raw.get("print_error"))
    if print_error and print_error != CANCELLED:
        result.append(decode_print_error(print_error))
    return tuple(result)


def format_print_error(value: int | None) -> str:
    """print_error in the wiki's form, 0300_400C; 0000_0000 when there is none."""
    return _halves((value or 0) & 0xFFFFFFFF)
