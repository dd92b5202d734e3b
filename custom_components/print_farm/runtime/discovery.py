"""Listen for Bambu Lab printers' SSDP NOTIFY datagrams on UDP 2021.

Home Assistant's own SSDP listener watches port 1900, which these printers do not use. What is
heard feeds the "Add printer" form, the wrong-printer repair, and the printers of the farm whose
address fails (they follow their serial number to its new address).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import socket
import time
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey

from ..const import CONF_DISCOVERY_HOST, CONF_DISCOVERY_PORT, DOMAIN, LOGGER
from ..protocols.bambu import DiscoveredPrinter, parse_notify
from ..protocols.bambu.ssdp import DISCOVERY_PORT

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

# A printer announces itself every few seconds; one unheard for this long is gone.
FORGET_AFTER: Final = 300.0
DISCOVERED: HassKey[dict[str, tuple[DiscoveredPrinter, float]]] = HassKey(f"{DOMAIN}_discovered")


class _NotifyProtocol(asyncio.DatagramProtocol):
    def __init__(
        self, found: dict[str, tuple[DiscoveredPrinter, float]], heard: Callable[[DiscoveredPrinter], None]
    ) -> None:
        self._found = found
        self._heard = heard

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        printer = parse_notify(data[:4096], str(addr[0]))
        if printer is not None:
            if printer.serial not in self._found:
                LOGGER.debug("Heard printer %s at %s", printer.serial, printer.host)
            self._found[printer.serial] = (printer, time.monotonic())
            self._heard(printer)


@callback
def async_discovered_printers(hass: HomeAssistant) -> list[DiscoveredPrinter]:
    """The printers heard recently, newest first."""
    now = time.monotonic()
    found = hass.data.get(DISCOVERED, {})
    return [
        printer
        for printer, seen in sorted(found.values(), key=lambda item: -item[1])
        if now - seen < FORGET_AFTER
    ]


@callback
def async_last_heard(hass: HomeAssistant, serial: str) -> DiscoveredPrinter | None:
    """Where the printer with this serial number was heard last, if it was heard recently."""
    return next((printer for printer in async_discovered_printers(hass) if printer.serial == serial), None)


async def async_start_discovery(hass: HomeAssistant, entry: PrintFarmConfigEntry) -> CALLBACK_TYPE:
    """Listen on the entry's discovery address; return the function that stops listening."""
    found = hass.data.setdefault(DISCOVERED, {})
    host = entry.data.get(CONF_DISCOVERY_HOST, "0.0.0.0")
    port = int(entry.data.get(CONF_DISCOVERY_PORT, DISCOVERY_PORT))
    if port == 0:  # discovery switched off
        return lambda: None
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as err:
        LOGGER.warning("Cannot listen for printers (%s); add them by address", err)
        return lambda: None
    # Other listeners (another tool, a second Home Assistant) may share the port.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        LOGGER.warning("Cannot listen for printers on %s:%s (%s); add them by address", host, port, err)
        return lambda: None
    sock.setblocking(False)

    @callback
    def heard(printer: DiscoveredPrinter) -> None:
        for coordinator in entry.runtime_data.printers.values():
            if coordinator.serial == printer.serial:
                coordinator.async_heard_at(printer.host)

    transport, _ = await hass.loop.create_datagram_endpoint(lambda: _NotifyProtocol(found, heard), sock=sock)
    return transport.close
