"""Bambu Lab printers' SSDP NOTIFY announcements (UDP port 2021, not the standard 1900)."""

from __future__ import annotations

from dataclasses import dataclass
import ipaddress
from typing import Final

from .models import canonical_model as model_from_code

DISCOVERY_PORT: Final = 2021
_PRINTER_NT: Final = "urn:bambulab-com:device:3dprinter:1"


@dataclass(frozen=True, slots=True)
class DiscoveredPrinter:
    """A printer heard on the LAN."""

    serial: str
    host: str
    model: str | None
    name: str | None
    firmware: str | None


def parse_notify(datagram: bytes, sender: str) -> DiscoveredPrinter | None:
    """Read a NOTIFY datagram; None when it is not a Bambu printer's."""
    try:
        text = datagram.decode("utf-8", "replace")
    except UnicodeDecodeError:  # pragma: no cover - "replace" never raises
        return None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    if not lines or not lines[0].upper().startswith("NOTIFY"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    serial = headers.get("usn", "")
    if headers.get("nt") != _PRINTER_NT or not serial or len(serial) > 64:
        return None
    host = headers.get("location") or sender
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = sender
    return DiscoveredPrinter(
        serial=serial,
        host=host,
        model=model_from_code(headers.get("devmodel.bambu.com")),
        name=headers.get("devname.bambu.com") or None,
        firmware=headers.get("devversion.bambu.com") or None,
    )
