"""Selects: what each rack shelf holds, a printer's speed, the spool in each tray; settable from a dashboard."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .entity import (
    PrinterEntity,
    PrinterEntityDescription,
    RackEntity,
    TrayEntity,
    async_setup_printer_platform,
    async_setup_rack_platform,
    async_setup_tray_platform,
)
from .rules.books.records import InventoryError
from .rules.racks import NO_PLATE, PLATE_EMPTY, PLATE_WITH_PRINT, ShelfError
from .runtime.farm import PrintFarmConfigEntry
from .runtime.printer import PrinterCoordinator
from .runtime.rack import RackCoordinator, shelf_validation_error

PARALLEL_UPDATES = 0

OPTIONS: Final = [NO_PLATE, PLATE_EMPTY, PLATE_WITH_PRINT]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one select per shelf of every rack."""
    async_setup_rack_platform(
        hass,
        entry,
        async_add_entities,
        lambda rack: [ShelfSelect(rack, number) for number in range(1, rack.number_of_shelves + 1)],
    )
    async_setup_printer_platform(
        hass, entry, async_add_entities, lambda printer: [PrintSpeedSelect(printer, PRINT_SPEED)]
    )
    async_setup_tray_platform(
        hass, entry, async_add_entities, lambda printer, unit, slot: [TraySpoolSelect(printer, unit, slot)]
    )


SPEED_LEVELS: Final = {"silent": 1, "standard": 2, "sport": 3, "ludicrous": 4}


@dataclass(frozen=True, kw_only=True)
class PrinterSelectDescription(PrinterEntityDescription, SelectEntityDescription):
    """A printer's select."""


PRINT_SPEED: Final = PrinterSelectDescription(
    key="print_speed", translation_key="print_speed", fields=frozenset({"speed_level"})
)


class PrintSpeedSelect(PrinterEntity, SelectEntity):
    """The print speed level (spd_lvl), set with print_speed once the printer acknowledges it."""

    _attr_options = list(SPEED_LEVELS)
    entity_description: PrinterSelectDescription

    def read(self) -> tuple[Any, ...]:
        """Availability and the current level."""
        level = self.printer.client.fields["speed_level"]
        option = next((name for name, value in SPEED_LEVELS.items() if value == level), None)
        return (self.entity_description.available_fn(self.printer), option)

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Show them."""
        self._attr_available, self._attr_current_option = shown

    async def async_select_option(self, option: str) -> None:
        """Set the level; a translated error when the printer refuses or does not answer."""
        await self.printer.async_set_print_speed(SPEED_LEVELS[option])


class ShelfSelect(RackEntity, SelectEntity):
    """What one shelf holds: no plate, an empty plate, or a finished print."""

    _attr_translation_key = "shelf"
    _attr_options = OPTIONS

    def __init__(self, rack: RackCoordinator, shelf_number: int) -> None:
        """Bind the select to its shelf."""
        super().__init__(rack, f"shelf_{shelf_number}")
        self.shelf_number = shelf_number
        self._attr_translation_placeholders = {"number": str(shelf_number)}

    @property
    def available(self) -> bool:
        """Unavailable when the rack was made smaller than this shelf's number."""
        return self.shelf_number <= len(self.rack.shelves)

    @property
    def current_option(self) -> str | None:
        """The shelf's content."""
        if not self.available:
            return None
        shelf = self.rack.shelves[self.shelf_number - 1]
        return shelf.plate_state if shelf.has_plate else NO_PLATE

    @property
    def extra_state_attributes(self) -> dict[str, int | None]:
        """The job whose print is on the shelf."""
        if not self.available:
            return {"print_job_id": None}
        return {"print_job_id": self.rack.shelves[self.shelf_number - 1].print_job_id}

    async def async_select_option(self, option: str) -> None:
        """Set the shelf; a finished print keeps the job already recorded, and needs one."""
        job = self.rack.shelves[self.shelf_number - 1].print_job_id if option == PLATE_WITH_PRINT else None
        try:
            await self.rack.async_set_shelf_content(self.shelf_number, option, job, context=self._context)
        except ShelfError as err:
            raise shelf_validation_error(err) from err


NO_SPOOL: Final = "none"
TRAY_SPOOL: Final = PrinterSelectDescription(
    key="spool", translation_key="tray_spool", fields=frozenset({"ams_units", "external_trays"})
)


class TraySpoolSelect(TrayEntity, SelectEntity):
    """The farm's spool in a tray: none, or one of the spools of the tray's material (the books deduct from it)."""

    entity_description: PrinterSelectDescription

    def __init__(self, printer: PrinterCoordinator, unit: int, slot: int) -> None:
        """Bind the select to its tray; it follows the books as well as the printer."""
        self.production = printer.entry.runtime_data.production
        self._spool_ids: dict[str, str] = {}
        description = TRAY_SPOOL if unit < 254 else replace(TRAY_SPOOL, translation_key="external_tray_spool")
        super().__init__(printer, description, unit, slot)
        # "Tray 2 spool" in an AMS, "Tray spool" in an AMS HT, "External holder 2 spool" on a holder.
        self._attr_translation_placeholders = {
            "tray": "" if unit >= 128 else f" {slot + 1}",
            "holder": " 2" if unit == 255 else "",
        }

    def read(self) -> tuple[Any, ...]:
        """Availability, the spools to choose from (label, id) and the one placed in the tray."""
        tray = self.tray
        if tray is None:
            return (False, (), None)
        books = self.production.books
        placed = books.spool_in(self.printer.serial, tray.code)
        material = (tray.material or "").casefold()
        spools = [
            spool
            for spool in books.spools.values()
            if (material and spool.material.casefold() == material) or spool is placed
        ]
        names = [spool.name for spool in spools]
        choices = tuple(
            (name if names.count(name) == 1 else f"{name} ({spool.id[:8]})", spool.id)
            for name, spool in zip(names, spools, strict=True)
        )
        current = next((label for label, spool_id in choices if placed and spool_id == placed.id), NO_SPOOL)
        return (self.entity_description.available_fn(self.printer), choices, current)

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Show them."""
        self._attr_available, choices, self._attr_current_option = shown
        self._spool_ids = dict(choices)
        self._attr_options = [NO_SPOOL, *self._spool_ids]

    async def async_added_to_hass(self) -> None:
        """Follow the printer's trays and the books."""
        await super().async_added_to_hass()
        self.async_on_remove(self.production.async_add_listener(self._fields_changed))

    async def async_select_option(self, option: str) -> None:
        """Place the chosen spool in the tray (taking it from any other), or empty the tray's place."""
        tray = self.tray
        if tray is None or (option != NO_SPOOL and option not in self._spool_ids):
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="tray_spool_unknown")
        spool_id = self._spool_ids.get(option)
        serial, code = self.printer.serial, tray.code
        try:
            await self.production.async_change(
                lambda books: books.place_spool(spool_id, serial, code), self._context
            )
        except InventoryError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="production_refused",
                translation_placeholders={"error": str(err)},
            ) from err
