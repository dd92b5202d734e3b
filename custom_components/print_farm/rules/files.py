"""File names and sizes as the farm and the seeds want them."""

from __future__ import annotations

import re
import unicodedata

PRINTABLE_EXTENSIONS = (".gcode.3mf", ".3mf", ".gcode", ".bgcode")
_UNSAFE = re.compile(r"[^A-Za-z0-9._() -]+")
MAX_NAME_LENGTH = 120


class BadFileName(ValueError):
    """The name cannot be used for a print file."""


def sanitize_filename(name: str, extensions: tuple[str, ...] = PRINTABLE_EXTENSIONS) -> str:
    """Return a safe file name (no path, no control characters) that keeps a printable extension.

    Raises BadFileName when nothing usable is left or the extension is not one of `extensions`.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("_", base).strip(" .")
    lowered = base.lower()
    extension = next((ext for ext in extensions if lowered.endswith(ext)), None)
    if extension is None:
        raise BadFileName(f"'{name}' is not a printable file (expected {', '.join(extensions)})")
    stem = base[: len(base) - len(extension)].strip(" ._") or "print"
    return stem[: MAX_NAME_LENGTH - len(extension)] + base[len(base) - len(extension) :]


def format_size(size: int) -> str:
    """Format a byte count as the seeds do ("2.50 MB")."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.2f} KB"
    if size < 1024**3:
        return f"{size / 1024**2:.2f} MB"
    return f"{size / 1024**3:.2f} GB"
