"""Every name a Bambu Lab printer model goes by, in one table.

A model is named by its SSDP announcement (`DevModel`), its project id (`project_name` in
get_version, `printer_model_id` in a sliced 3MF), its product name (`Bambu Lab X1 Carbon` in
get_version and in the slicer's `printer_model`), and the first three characters of its serial
number. `canonical_model` turns any of them into the short name this integration uses (X1C, P1S...).
Codes marked "reported" come from public descriptions, not from a printer at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Model:
    """One printer model and its names."""

    name: str  # the short name this integration shows
    codes: tuple[str, ...]  # project ids and SSDP DevModel values
    products: tuple[str, ...]  # product and slicer names
    serial_prefixes: tuple[str, ...] = ()
    # Whether project_file's url names the file as file:///sdcard/<file>; newer models want ftp:///<file>.
    sdcard_url: bool = False


MODELS: Final = (
    Model(
        "X1C",
        ("BL-P001", "3DPrinter-X1-Carbon"),
        ("Bambu Lab X1 Carbon", "Bambu Lab X1-Carbon", "X1 Carbon"),
        ("00M",),
        sdcard_url=True,
    ),
    Model("X1", ("BL-P002", "3DPrinter-X1"), ("Bambu Lab X1",), ("00W",), sdcard_url=True),
    Model("X1E", ("C13",), ("Bambu Lab X1E",), ("03W",), sdcard_url=True),
    Model("P1P", ("C11",), ("Bambu Lab P1P",), ("01S",), sdcard_url=True),
    Model("P1S", ("C12",), ("Bambu Lab P1S",), ("01P",), sdcard_url=True),
    Model("A1", ("N2S",), ("Bambu Lab A1",), ("039",), sdcard_url=True),
    Model("A1 mini", ("N1",), ("Bambu Lab A1 mini",), ("030",), sdcard_url=True),
    Model("H2D", ("O1D",), ("Bambu Lab H2D",), ("094",)),  # code reported
    Model("H2S", ("O1S",), ("Bambu Lab H2S",)),  # code reported
    Model("P2S", ("N7",), ("Bambu Lab P2S",)),  # code reported
)
_BY_NAME: Final = {
    alias.casefold(): model.name for model in MODELS for alias in (model.name, *model.codes, *model.products)
}
_BY_SERIAL: Final = {prefix: model.name for model in MODELS for prefix in model.serial_prefixes}
_SDCARD_URL: Final = frozenset(model.name for model in MODELS if model.sdcard_url)


def canonical_model(name: str | None) -> str | None:
    """The short model name for any name a model goes by; None when it is not a known Bambu model."""
    if not name:
        return None
    return _BY_NAME.get(" ".join(name.split()).casefold())


def model_from_serial(serial: str) -> str | None:
    """Guess the model from the serial number's prefix (Bambu's factory scheme)."""
    return _BY_SERIAL.get(serial[:3])


def project_file_url(model: str | None, filename: str) -> str:
    """The url project_file names a stored file by: file:///sdcard/ on the X1, P1 and A1 families.

    Every other model (the H2 family, and any model newer than this table) reads ftp:///<file>.
    """
    return f"file:///sdcard/{filename}" if canonical_model(model) in _SDCARD_URL else f"ftp:///{filename}"
