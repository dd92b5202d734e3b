"""The runtime object of the Print Farm config entry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_time_interval

from ..const import CONF_SERIAL, DOMAIN, LOGGER, SUBENTRY_PRINTER, SUBENTRY_RACK, WATCHDOG_INTERVAL_SECONDS
from ..coordinator import PrinterCoordinator
from ..rack import CONF_SHELVES, RackCoordinator
from .racks import RackStore, ShelfError
from .registry import PrinterRegistry

if TYPE_CHECKING:
    from .. import PrintFarmConfigEntry


def signal_printer_added(entry_id: str) -> str:
    """Dispatcher signal the platforms listen to, to add a new printer's entities."""
    return f"{DOMAIN}_{entry_id}_printer_added"


def signal_rack_added(entry_id: str) -> str:
    """Dispatcher signal the platforms listen to, to add a new rack's entities."""
    return f"{DOMAIN}_{entry_id}_rack_added"


class PrintFarm:
    """Everything one Print Farm entry runs: its printers, and later its jobs and robots."""

    def __init__(self, hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
        """Create the farm; async_setup loads its storage."""
        self.hass = hass
        self.entry = entry
        self.registry = PrinterRegistry(hass)
        self.printers: dict[str, PrinterCoordinator] = {}
        self.rack_store = RackStore(hass)
        self.racks: dict[str, RackCoordinator] = {}
        # Set by the job queue once it exists; until then a shelf's job id cannot be checked.
        self.job_exists: Callable[[int], bool] | None = None
        self.job_summary: Callable[[int], dict[str, Any] | None] | None = None
        self._unsub_watchdog: CALLBACK_TYPE | None = None
        # The update listener and the REST operations may both sync; one at a time.
        self._sync_lock = asyncio.Lock()

    async def async_setup(self) -> None:
        """Load storage and start the silence watchdog."""
        await self.registry.async_load()
        await self.rack_store.async_load()
        self._unsub_watchdog = async_track_time_interval(
            self.hass, self._check_watchdogs, timedelta(seconds=WATCHDOG_INTERVAL_SECONDS)
        )

    async def async_shutdown(self) -> None:
        """Disconnect every printer."""
        if self._unsub_watchdog is not None:
            self._unsub_watchdog()
            self._unsub_watchdog = None
        for printer in self.printers.values():
            await printer.async_stop()
        self.printers.clear()

    @callback
    def _check_watchdogs(self, _now: Any) -> None:
        for printer in self.printers.values():
            printer.client.check_watchdog()

    def subentries_of(self, subentry_type: str) -> dict[str, ConfigSubentry]:
        """The entry's subentries of one type, by id."""
        return {
            subentry_id: subentry
            for subentry_id, subentry in self.entry.subentries.items()
            if subentry.subentry_type == subentry_type
        }

    async def async_sync(self) -> None:
        """Bring printers and racks in line with the subentries: new, changed and removed ones."""
        async with self._sync_lock:
            await self._async_sync_printers()
            await self._async_sync_racks()

    async def _async_sync_racks(self) -> None:
        wanted = self.subentries_of(SUBENTRY_RACK)
        for subentry_id in list(self.racks):
            if subentry_id not in wanted:
                del self.racks[subentry_id]
                await self.rack_store.async_remove(subentry_id)
        for subentry_id, subentry in wanted.items():
            number = int(subentry.data[CONF_SHELVES])
            try:
                rack_id = await self.rack_store.async_ensure(subentry_id, number)
            except ShelfError as err:
                # The flows refuse this; a hand-edited entry keeps its shelves until emptied.
                LOGGER.error("Rack %s: %s", subentry.title, err)
                continue
            if (rack := self.racks.get(subentry_id)) is not None:
                rack.subentry = subentry
                rack.async_notify()
                continue
            rack = RackCoordinator(self.hass, self.entry, subentry, rack_id, self.rack_store)
            self.racks[subentry_id] = rack
            async_dispatcher_send(self.hass, signal_rack_added(self.entry.entry_id), rack)

    async def _async_sync_printers(self) -> None:
        wanted = self.subentries_of(SUBENTRY_PRINTER)
        for subentry_id, printer in list(self.printers.items()):
            subentry = wanted.get(subentry_id)
            if subentry is None:
                await printer.async_stop()
                del self.printers[subentry_id]
                await self.registry.async_remove(subentry_id)
            else:
                await printer.async_apply_subentry(subentry)
        for subentry_id, subentry in wanted.items():
            if subentry_id in self.printers:
                continue
            record = await self.registry.async_ensure(subentry_id)
            printer = PrinterCoordinator(self.hass, self.entry, subentry, record["id"])
            self.printers[subentry_id] = printer
            await printer.async_start()
            async_dispatcher_send(self.hass, signal_printer_added(self.entry.entry_id), printer)

    def rack_by_id(self, rack_id: int) -> RackCoordinator | None:
        """Find a rack by its integer (REST) id."""
        subentry_id = self.rack_store.subentry_for(rack_id)
        return self.racks.get(subentry_id) if subentry_id else None

    def rack_by_device(self, device_id: str) -> RackCoordinator | None:
        """Find a rack by its Home Assistant device id."""
        device = dr.async_get(self.hass).async_get(device_id)
        if device is None:
            return None
        for rack in self.racks.values():
            if (DOMAIN, f"rack_{rack.subentry.subentry_id}") in device.identifiers:
                return rack
        return None

    def printer_by_id(self, printer_id: int) -> PrinterCoordinator | None:
        """Find a printer by its integer (REST) id."""
        subentry_id = self.registry.subentry_for(printer_id)
        return self.printers.get(subentry_id) if subentry_id else None

    def printer_by_device(self, device_id: str) -> PrinterCoordinator | None:
        """Find a printer by its Home Assistant device id."""
        device = dr.async_get(self.hass).async_get(device_id)
        if device is None:
            return None
        for printer in self.printers.values():
            if (DOMAIN, printer.serial) in device.identifiers:
                return printer
        return None

    def printer_by_serial(self, serial: str) -> PrinterCoordinator | None:
        """Find a printer by its serial number."""
        for printer in self.printers.values():
            if printer.subentry.data[CONF_SERIAL] == serial:
                return printer
        return None
