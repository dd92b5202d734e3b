"""File names and sizes as the farm and the seeds want them."""

from __future__ import annotations

import hashlib
import re
import unicodedata

PRINTABLE_EXTENSIONS = (".gcode.3mf", ".3mf", ".gcode", ".bgcode")
_UNSAFE = re.compile(r"[^A-Za-z0-9._() -]+")
MAX_NAME_LENGTH = 120


class BadFileName(ValueError):
    """The name cannot be used for a print file."""


def sanitize_filename(name: str, extensions: tuple[str, ...] = PRINTABLE_EXTENSIONS) -> str:
    """Return a safe file name (no path, no control characters) that keeps a printable extension.

    The printers' storage gets ASCII names: other letters are transliterated ("ü" to "u") or
    dropped, and a name that was not ASCII gains a short hash of the original, so that two names
    stay two files (the same name always gets the same hash: sent again, it replaces only itself).
    Raises BadFileName when the extension is not one of `extensions`.
    """
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    extension = next((ext for ext in extensions if base.lower().endswith(ext)), None)
    if extension is None:
        raise BadFileName(f"'{name}' is not a printable file (expected {', '.join(extensions)})")
    original, suffix = base[: len(base) - len(extension)], base[len(base) - len(extension) :]
    stem = unicodedata.normalize("NFKD", original).encode("ascii", "ignore").decode()
    stem = _UNSAFE.sub("_", stem).strip(" ._") or "print"
    tag = "" if original.isascii() else "-" + hashlib.sha256(original.encode()).hexdigest()[:8]
    suffix = suffix if suffix.isascii() else extension
    return stem[: MAX_NAME_LENGTH - len(extension) - len(tag)] + tag + suffix


def format_size(size: int) -> str:
    """Format a byte count as the seeds do ("2.50 MB")."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.2f} KB"
    if size < 1024**3:
        return f"{size / 1024**2:.2f} MB"
    return f"{size / 1024**3:.2f} GB"
