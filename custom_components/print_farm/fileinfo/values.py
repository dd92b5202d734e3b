"""Turning header values (text a slicer wrote, or anyone) into checked numbers and names, or None.

Every value goes through these functions: a value that is not a plain finite number, or lies
outside what a real print can be (negative, a year-long print, a tonne of filament), becomes None
("not stated") rather than an absurd figure.
"""

from __future__ import annotations

import math
import re

MAX_TIME_S = 366 * 24 * 3600
MAX_GRAMS = 100_000.0
MAX_MM = 100_000_000.0
MAX_LAYERS = 1_000_000
MAX_HEIGHT_MM = 10_000.0
MAX_LAYER_HEIGHT_MM = 10.0
MAX_NOZZLE_MM = 10.0
MAX_TOOLS = 64
MAX_TEXT = 80

_NUMBER = re.compile(r"[+-]?(?:\d{1,20}(?:\.\d{0,20})?|\.\d{1,20})(?:[eE][+-]?\d{1,3})?")
_DURATION = re.compile(r"\s*(?:\d{1,9}(?:\.\d{1,9})?\s*[A-Za-z]{1,7}[\s,]*){1,6}")
_DURATION_PART = re.compile(r"(\d{1,9}(?:\.\d{1,9})?)\s*([A-Za-z]{1,7})")
_UNITS = {
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
}
_COLOR = re.compile(r"#?([0-9A-Fa-f]{6})(?:[0-9A-Fa-f]{2})?")
_LENGTH = r"\s*(\d{1,12}(?:\.\d{1,9})?)\s*(mm|m|cm)?\b"  # compiled on first use
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def number(text: str | None, high: float, low: float = 0.0) -> float | None:
    """A plain decimal number within [low, high], else None (NaN, inf, 1e308, words, blanks)."""
    if text is None:
        return None
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    if not math.isfinite(value) or value < low or value > high:
        return None
    return value


def positive(text: str | None, high: float) -> float | None:
    """A number greater than zero and at most `high`, else None."""
    value = number(text, high)
    return value if value is not None and value > 0 else None


def count(text: str | None, high: int = MAX_LAYERS) -> int | None:
    """A whole number from 1 to `high`, else None."""
    value = number(text, high)
    if value is None or value < 1 or value != int(value):
        return None
    return int(value)


def number_list(text: str | None, high: float) -> list[float | None]:
    """A list such as "400.85, 0, 98.63" (commas or semicolons); bad items become None."""
    if text is None or not text.strip():
        return []
    return [number(item, high) for item in re.split(r"[,;]", text)[:MAX_TOOLS]]


def duration_s(text: str | None) -> int | None:
    """Seconds from "1h 6m 40s", "2d 3h", "1 hours 2 minutes", "29.5 minutes" or "6666" (seconds)."""
    if text is None:
        return None
    text = text.strip()
    seconds: float
    plain = number(text, MAX_TIME_S)
    if plain is not None:
        seconds = plain
    elif _DURATION.fullmatch(text):
        seconds = 0.0
        for amount, unit in _DURATION_PART.findall(text):
            factor = _UNITS.get(unit.lower())
            if factor is None:
                return None
            seconds += float(amount) * factor
    else:
        return None
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_TIME_S:
        return None
    return round(seconds)


def length_mm(text: str | None) -> float | None:
    """Millimetres from "170.3mm (1.1cm3)", "5.96619m", "1234.5 mm (1.23 m)" or "1234.5" (mm)."""
    if text is None:
        return None
    match = re.match(_LENGTH, text)
    if match is None:
        return None
    value = number(match.group(1), MAX_MM)
    if value is None:
        return None
    unit = match.group(2) or "mm"
    value *= {"mm": 1.0, "cm": 10.0, "m": 1000.0}[unit]
    return round(value, 4) if value <= MAX_MM else None


def mass_g(text: str | None) -> float | None:
    """Grams from "12.34 g (0.03 lb)", "[12.3]" or "12.34"."""
    if text is None:
        return None
    match = re.match(r"\s*\[?\s*(\d{1,9}(?:\.\d{1,9})?)\s*(?:g\b|\]|$|\s)", text)
    return number(match.group(1), MAX_GRAMS) if match else None


def color(text: str | None) -> str | None:
    """Upper-case "#RRGGBB" from "#ff8000", "FF8000" or "#00AE42FF" (alpha dropped), else None."""
    if text is None:
        return None
    match = _COLOR.fullmatch(text.strip().strip("\"'"))
    return "#" + match.group(1).upper() if match else None


def text_list(text: str | None, separators: str = ";") -> list[str | None]:
    """A list of names such as "PLA;PETG" (blank or unusable items become None)."""
    if text is None or not text.strip():
        return []
    return [name(item) for item in re.split(f"[{re.escape(separators)}]", text)[:MAX_TOOLS]]


def name(text: str | None) -> str | None:
    """A short printable name (quotes and control characters removed, at most 80 characters)."""
    if text is None:
        return None
    text = _CONTROL.sub("", text).strip().strip("\"'").strip()
    if not text:
        return None
    return text[:MAX_TEXT]


def round_g(value: float) -> float:
    """Grams rounded to what slicers state (0.01 g), without float noise from sums."""
    return round(value, 4)
