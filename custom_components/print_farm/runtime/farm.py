"""The runtime object of the Print Farm config entry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_time_interval

from ..const import (
    CONF_SERIAL,
    DOMAIN,
    LOGGER,
    SUBENTRY_OTTOEJECT,
    SUBENTRY_PRINTER,
    SUBENTRY_RACK,
    WATCHDOG_INTERVAL_SECONDS,
)
from ..rules.racks import ShelfError
from ..rules.settings import WATCHDOG_SECONDS, settings_of
from .consumption import Consumption
from .ejection import Ejection
from .jobs import JobManager
from .orchestrator import Orchestrator
from .ottoeject import EjectorCoordinator
from .printer import PrinterCoordinator
from .production import ProductionManager
from .rack import CONF_SHELVES, RackCoordinator
from .storage import IdRegistry, PrinterRegistry, RackStore

type PrintFarmConfigEntry = ConfigEntry[PrintFarm]


def signal_printer_added(entry_id: str) -> str:
    """Dispatcher signal the platforms listen to, to add a new printer's entities."""
    return f"{DOMAIN}_{entry_id}_printer_added"


def signal_ejector_added(entry_id: str) -> str:
    """Dispatcher signal the platforms listen to, to add a new OttoEject's entities."""
    return f"{DOMAIN}_{entry_id}_ejector_added"


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
        self.ejector_ids = IdRegistry(hass, "ottoejects")
        self.ejectors: dict[str, EjectorCoordinator] = {}
        self.rack_store = RackStore(hass)
        self.racks: dict[str, RackCoordinator] = {}
        self.jobs = JobManager(hass, entry)
        self.production = ProductionManager(hass, entry)
        self.consumption = Consumption(hass, entry, self.jobs, self.production)
        self.jobs.consumption = self.consumption
        self.ejection = Ejection(hass, entry, self.jobs)
        self.jobs.reserve = self.ejection.placement.reserve
        self.jobs.fit = self.ejection.placement.fit_of
        self.orchestrator = Orchestrator(hass, entry, self.jobs, self.ejection)
        self._unsub_orchestrator: CALLBACK_TYPE | None = None
        self._unsub_ejection: CALLBACK_TYPE | None = None
        # What racks ask of jobs: a shelf's job must exist.
        self.job_exists: Callable[[int], bool] | None = self.jobs.job_exists
        self._unsub_watchdog: CALLBACK_TYPE | None = None
        self._unsub_forecast: CALLBACK_TYPE | None = None
        # The update listener and the REST operations may both sync; one at a time.
        self._sync_lock = asyncio.Lock()

    async def async_setup(self) -> None:
        """Load storage and start the silence watchdog."""
        await self.registry.async_load()
        await self.rack_store.async_load()
        await self.ejector_ids.async_load()
        await self.jobs.async_setup()
        await self.production.async_setup()
        await self.consumption.async_replay()  # a job that ended and was not deducted yet
        self._unsub_forecast = self.consumption.async_start_forecast()
        self._unsub_orchestrator = self.orchestrator.async_start()
        self._unsub_ejection = self.jobs.async_add_announcer(self.ejection.async_job_changed)
        self._unsub_watchdog = async_track_time_interval(
            self.hass, self._check_watchdogs, timedelta(seconds=WATCHDOG_INTERVAL_SECONDS)
        )

    async def async_shutdown(self) -> None:
        """Disconnect every printer and write what waits to be saved."""
        if self._unsub_watchdog is not None:
            self._unsub_watchdog()
            self._unsub_watchdog = None
        if self._unsub_orchestrator is not None:
            self._unsub_orchestrator()
            self._unsub_orchestrator = None
        if self._unsub_ejection is not None:
            self._unsub_ejection()
            self._unsub_ejection = None
        if self._unsub_forecast is not None:
            self._unsub_forecast()
            self._unsub_forecast = None
        self.ejection.async_stop()
        for printer in self.printers.values():
            await printer.async_stop()
        self.printers.clear()
        for ejector in self.ejectors.values():
            await ejector.async_shutdown()
        self.ejectors.clear()
        # Progress waits up to 10 s to be saved; the next setup reads the file with a new store,
        # which an old store's late write would overwrite.
        await self.jobs.store.async_save()

    @callback
    def _check_watchdogs(self, _now: Any) -> None:
        for printer in self.printers.values():
            printer.client.check_watchdog()

    @property
    def settings(self) -> dict[str, Any]:
        """The farm's settings (the hub entry's options, with defaults)."""
        return settings_of(self.entry.options)

    async def async_update_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change settings (already validated); they persist with the entry."""
        self.hass.config_entries.async_update_entry(self.entry, options={**self.entry.options, **changes})
        return self.settings

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
            self.production.async_notify()  # the low-spool threshold may have changed
            await self._async_sync_printers()
            await self._async_sync_ejectors()
            await self._async_sync_racks()
        self.ejection.async_resume()  # stored workflows go on once their devices are there
        self.orchestrator.schedule()  # a printer, or job processing, may have changed

    async def _async_sync_ejectors(self) -> None:
        wanted = self.subentries_of(SUBENTRY_OTTOEJECT)
        for subentry_id, ejector in list(self.ejectors.items()):
            if subentry_id not in wanted:
                await ejector.async_shutdown()
                del self.ejectors[subentry_id]
                await self.ejector_ids.async_remove(subentry_id)
            else:
                await ejector.async_apply_subentry(wanted[subentry_id])
        for subentry_id, subentry in wanted.items():
            if subentry_id in self.ejectors:
                continue
            ejector_id = await self.ejector_ids.async_ensure(subentry_id)
            ejector = EjectorCoordinator(self.hass, self.entry, subentry, ejector_id)
            self.ejectors[subentry_id] = ejector
            # The first poll runs in the background: a robot that is down must not hold up the farm.
            self.entry.async_create_background_task(
                self.hass, ejector.async_refresh(), f"{DOMAIN} first poll of {subentry.title}"
            )
            ejector.async_start_watching()
            self.entry.async_on_unload(ejector.async_add_listener(self.orchestrator.schedule))
            async_dispatcher_send(self.hass, signal_ejector_added(self.entry.entry_id), ejector)

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
            rack.async_add_listener(self.orchestrator.schedule)  # a freed shelf may let a job start
            async_dispatcher_send(self.hass, signal_rack_added(self.entry.entry_id), rack)

    async def _async_sync_printers(self) -> None:
        wanted = self.subentries_of(SUBENTRY_PRINTER)
        watchdog = float(self.settings[WATCHDOG_SECONDS])
        for printer in self.printers.values():
            printer.client.watchdog = watchdog  # a settings change applies at once
        for subentry_id, printer in list(self.printers.items()):
            subentry = wanted.get(subentry_id)
            if subentry is None:
                await printer.async_stop()
                printer.async_forget_issues()
                del self.printers[subentry_id]
                await self.registry.async_remove(subentry_id)
            else:
                await printer.async_apply_subentry(subentry)
        await self.registry.async_ensure_all(s for s in wanted if s not in self.printers)
        for subentry_id, subentry in wanted.items():
            if subentry_id in self.printers:
                continue
            record = await self.registry.async_ensure(subentry_id)
            printer = PrinterCoordinator(self.hass, self.entry, subentry, record["id"])
            self.printers[subentry_id] = printer
            self.jobs.follow(printer)
            self.orchestrator.follow(printer)
            self.ejection.follow_printer(printer)
            self.consumption.follow(printer)
            await printer.async_start()
            async_dispatcher_send(self.hass, signal_printer_added(self.entry.entry_id), printer)

    def ejector_by_id(self, ejector_id: int) -> EjectorCoordinator | None:
        """Find an OttoEject by its integer (REST) id."""
        subentry_id = self.ejector_ids.subentry_for(ejector_id)
        return self.ejectors.get(subentry_id) if subentry_id else None

    def ejector_by_device(self, device_id: str) -> EjectorCoordinator | None:
        """Find an OttoEject by its Home Assistant device id."""
        return self._by_device(device_id, self.ejectors.values(), "ottoeject_")

    def _by_device[D: (EjectorCoordinator, RackCoordinator)](
        self, device_id: str, devices: Iterable[D], prefix: str
    ) -> D | None:
        device = dr.async_get(self.hass).async_get(device_id)
        if device is None:
            return None
        return next(
            (
                item
                for item in devices
                if (DOMAIN, f"{prefix}{item.subentry.subentry_id}") in device.identifiers
            ),
            None,
        )

    def rack_by_id(self, rack_id: int) -> RackCoordinator | None:
        """Find a rack by its integer (REST) id."""
        subentry_id = self.rack_store.subentry_for(rack_id)
        return self.racks.get(subentry_id) if subentry_id else None

    def rack_by_device(self, device_id: str) -> RackCoordinator | None:
        """Find a rack by its Home Assistant device id."""
        return self._by_device(device_id, self.racks.values(), "rack_")

    def printer_by_id(self, printer_id: int | None) -> PrinterCoordinator | None:
        """Find a printer by its integer (REST) id (None: a job for any printer has none yet)."""
        if printer_id is None:
            return None
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
