"""Shelf selects: what each rack shelf holds, settable from a dashboard."""

from __future__ import annotations

from typing import Final

from homeassistant.components.select import SelectEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import RackEntity, async_setup_rack_platform
from .rules.racks import NO_PLATE, PLATE_EMPTY, PLATE_WITH_PRINT, ShelfError
from .runtime.farm import PrintFarmConfigEntry
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
