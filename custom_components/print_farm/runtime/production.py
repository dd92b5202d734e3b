"""The production books in Home Assistant: storage, spool devices, and the low-filament event.

Every change goes through `ProductionManager.async_change`: the operation runs on a copy of the books
(which refuse before changing anything), the copy is saved, and only once it is on disk does it
become the books (a deduction is a fact: all of it is kept, or none); then the spool devices, the
entities and the `print_farm_spool_low` event follow. A save that fails changes nothing (503).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from ..rules.books.money import quantity_out
from ..rules.books.records import InventoryError, Spool
from ..rules.books.runs import Books
from ..rules.settings import SPOOL_LOW_GRAMS, settings_of
from .storage import FactStore, StoreFromTheFuture, StoreWriteError

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

STORAGE_KEY: Final = f"{DOMAIN}.production"
STORAGE_VERSION: Final = 1
# 1.2: spools' tray_uuid and placement, the print jobs' deductions, declined RFID spools.
STORAGE_MINOR_VERSION: Final = 2
EVENT_SPOOL_LOW: Final = f"{DOMAIN}_spool_low"
SPOOL_PREFIX: Final = "spool_"
EMPTY_BOOKS: Final[dict[str, Any]] = {
    "spools": [],
    "products": [],
    "recipes": [],
    "runs": [],
    "material_used_grams": "0",
    "job_deductions": [],
    "dismissed_tray_uuids": [],
}


def signal_spool_added(entry_id: str) -> str:
    """Dispatcher signal the platforms listen to, to add a new spool's entities."""
    return f"{DOMAIN}_{entry_id}_spool_added"


def spool_identifier(spool_id: str) -> tuple[str, str]:
    """The device registry identifier of a spool."""
    return (DOMAIN, f"{SPOOL_PREFIX}{spool_id}")


class BooksNotSaved(InventoryError):
    """The books could not be saved, so nothing changed: 503, and the same request may be tried again."""

    def __init__(self, error: StoreWriteError) -> None:
        """A 503 that says why."""
        super().__init__(f"Could not save the books ({error}); nothing was changed. Try again.", 503)


class ProductionStore(FactStore[dict[str, Any]]):
    """The books' storage file, with its migrations.

    Minor versions only add collections or fields, so an older file gets the missing collections
    empty and fields their defaults (`Books.restore`). A newer major version is refused rather than
    overwritten.
    """

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, Any]:
        if old_major_version > STORAGE_VERSION:
            raise StoreFromTheFuture(
                f"{STORAGE_KEY} is version {old_major_version}.{old_minor_version};"
                f" this Print Farm reads {STORAGE_VERSION}.x. Update the integration."
            )
        return {**EMPTY_BOOKS, **old_data}


class ProductionManager:
    """The books of one farm, kept in storage and shown as spool devices and farm sensors."""

    def __init__(self, hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
        """Empty books until `async_setup` loads them."""
        self.hass = hass
        self.entry = entry
        self.books = Books(lambda: dt_util.utcnow())  # looked up per call, so tests can freeze time
        self._store = ProductionStore(hass, STORAGE_VERSION, STORAGE_KEY, minor_version=STORAGE_MINOR_VERSION)
        self._listeners: list[CALLBACK_TYPE] = []
        self._lock = asyncio.Lock()

    async def async_setup(self) -> None:
        """Load the books."""
        if (stored := await self._store.async_load()) is not None:
            self.books.restore(stored)

    @property
    def currency(self) -> str:
        """Home Assistant's configured currency."""
        return self.hass.config.currency

    @property
    def low_threshold(self) -> Decimal:
        """Grams below which a spool is low."""
        return Decimal(settings_of(self.entry.options)[SPOOL_LOW_GRAMS])

    async def async_change[T](self, operation: Callable[[Books], T], context: Context | None = None) -> T:
        """Run one operation on the books and save them before returning.

        The operation runs on a copy, which becomes the books only once it is saved: a refused
        operation (`InventoryError`) or a failed save (`BooksNotSaved`, 503) leaves the books, and
        the disk, as they were, and the same request can be made again. Operations run one at a
        time, save and follow-up included: two completions of one run cannot both start from the
        run in progress while the other's save is under way (only one deducts), and each compares
        its own before and after (a spool that goes low fires `print_farm_spool_low` once).
        """
        async with self._lock:
            before = {spool_id: spool.remaining_grams for spool_id, spool in self.books.spools.items()}
            working = self.books.copy()
            result = operation(working)
            try:
                await self._store.async_save_or_raise(working.to_stored())
            except StoreWriteError as err:
                LOGGER.error("The production books were not changed: %s", err)
                raise BooksNotSaved(err) from err
            self.books = working
            self._after_change(before, context)
        return result

    @callback
    def _after_change(self, before: Mapping[str, Decimal], context: Context | None) -> None:
        spools = self.books.spools
        registry = dr.async_get(self.hass)
        for spool_id in before.keys() - spools.keys():
            if device := registry.async_get_device(identifiers={spool_identifier(spool_id)}):
                registry.async_remove_device(device.id)
        for spool_id, spool in spools.items():
            if spool_id not in before:
                async_dispatcher_send(self.hass, signal_spool_added(self.entry.entry_id), spool_id)
                continue
            if (device := registry.async_get_device(identifiers={spool_identifier(spool_id)})) and (
                device.name != spool.name
                or device.model != _model(spool)
                or device.manufacturer != spool.vendor
            ):
                registry.async_update_device(
                    device.id, name=spool.name, model=_model(spool), manufacturer=spool.vendor
                )
            threshold = self.low_threshold
            if before[spool_id] >= threshold > spool.remaining_grams:
                LOGGER.info("Spool %s is low: %s g left", spool.name, spool.remaining_grams)
                self.hass.bus.async_fire(
                    EVENT_SPOOL_LOW,
                    {
                        "device_id": device.id if device else None,  # the logbook files it under the spool
                        "spool_id": spool_id,
                        "name": spool.name,
                        "material": spool.material,
                        "color": spool.color,
                        "remaining_grams": quantity_out(spool.remaining_grams),
                        "threshold_grams": quantity_out(threshold),
                    },
                    context=context,
                )
        self.async_notify()

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` after every change of the books; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def async_notify(self) -> None:
        """Tell the entities that the books (or the low threshold) changed."""
        for listener in list(self._listeners):
            listener()

    def spool_device_info(self, spool_id: str) -> DeviceInfo:
        """The device of a spool."""
        spool = self.books.spools[spool_id]
        return DeviceInfo(
            identifiers={spool_identifier(spool_id)},
            name=spool.name,
            manufacturer=spool.vendor,
            model=_model(spool),
        )


def _model(spool: Spool) -> str:
    return f"{spool.material} {spool.color}" if spool.color else spool.material
