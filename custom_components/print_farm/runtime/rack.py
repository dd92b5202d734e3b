"""One OttoRack in Home Assistant: its device, its shelves, and the one way to change a shelf."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_NAME
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

from ..const import CONF_OTTOEJECT, DOMAIN, SUBENTRY_RACK
from ..rules.racks import NO_PLATE, Shelf, ShelfError, ShelfReservedError, validate_shelf
from .storage import RackStore

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

CONF_SHELVES: Final = "number_of_shelves"
CONF_SPACING: Final = "shelf_spacing_mm"
CONF_BED_SIZE: Final = "bed_size"
EVENT_SHELF_CHANGED: Final = f"{DOMAIN}_shelf_changed"


class RackCoordinator:
    """A rack's shelves and the entities that show them."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrintFarmConfigEntry,
        subentry: ConfigSubentry,
        rack_id: int,
        store: RackStore,
    ) -> None:
        """Bind the rack to its stored shelves."""
        self.hass = hass
        self.entry = entry
        self.subentry = subentry
        self.rack_id = rack_id
        self._store = store
        self._listeners: list[CALLBACK_TYPE] = []

    @property
    def name(self) -> str:
        """The rack's name."""
        return self.subentry.title

    @property
    def number_of_shelves(self) -> int:
        """How many shelves the rack has."""
        return int(self.subentry.data[CONF_SHELVES])

    @property
    def shelf_spacing_mm(self) -> float:
        """Distance between shelves."""
        value = self.subentry.data[CONF_SPACING]
        return int(value) if float(value).is_integer() else float(value)

    @property
    def bed_size(self) -> str:
        """The plate size the rack takes, like "256x256"."""
        return str(self.subentry.data[CONF_BED_SIZE])

    @property
    def shelves(self) -> list[Shelf]:
        """The shelves, in order."""
        return self._store.shelves(self.subentry.subentry_id)

    def kept(self, shelf_number: int) -> dict[str, Any] | None:
        """What a shelf keeps of its print when the print's job was deleted (file, finish time)."""
        return self._store.kept(self.subentry.subentry_id, shelf_number)

    @property
    def occupied_shelves(self) -> int:
        """Shelves holding a plate."""
        return sum(1 for shelf in self.shelves if shelf.occupied)

    @property
    def available_shelves(self) -> int:
        """Shelves with room for a plate."""
        return len(self.shelves) - self.occupied_shelves

    @property
    def device_info(self) -> DeviceInfo:
        """The rack's device, identified by its subentry."""
        return DeviceInfo(
            identifiers={(DOMAIN, f"rack_{self.subentry.subentry_id}")},
            manufacturer="Ottomat3D",
            model="OttoRack",
            name=self.name,
        )

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call listener() after every shelf change."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def async_notify(self) -> None:
        """Tell the entities that the shelves or the rack's details changed."""
        for listener in tuple(self._listeners):
            listener()

    async def async_set_shelf(
        self,
        shelf_number: int,
        *,
        has_plate: Any,
        plate_state: Any = None,
        print_job_id: Any = None,
        context: Any = None,
        workflow: bool = False,
    ) -> Shelf:
        """Validate a shelf state whole, save it, tell the entities and fire print_farm_shelf_changed.

        Raises ShelfError (nothing written) when the change is not one of the three valid states,
        and ShelfReservedError when a person changes a shelf that a job's plate is to use (only
        the ejection `workflow` changes those).
        """
        if not workflow and isinstance(shelf_number, int):
            holder = self.entry.runtime_data.jobs.store.reserving_job(self.rack_id, shelf_number)
            if holder is not None:
                raise ShelfReservedError(
                    f"Shelf {shelf_number} is reserved for the plate of print job {holder}: it changes "
                    "when the OttoEject has done its part (or abort that job's workflow)."
                )
        shelf = validate_shelf(
            self.number_of_shelves,
            shelf_number,
            has_plate,
            plate_state,
            print_job_id,
            self.entry.runtime_data.job_exists,
        )
        before, after = await self._store.async_set_shelf(self.subentry.subentry_id, shelf)
        if before != after:
            self.async_notify()
            device = dr.async_get(self.hass).async_get_device(
                identifiers={(DOMAIN, f"rack_{self.subentry.subentry_id}")}
            )
            self.hass.bus.async_fire(
                EVENT_SHELF_CHANGED,
                {
                    "device_id": device.id if device else None,  # the logbook files it under the rack
                    "rack_id": self.rack_id,
                    "rack_name": self.name,
                    **after.as_dict(),
                    "previous": before.as_dict(),
                },
                context=context,
            )
        return after

    async def async_set_shelf_content(
        self, shelf_number: int, content: str, print_job_id: int | None = None, *, context: Any = None
    ) -> Shelf:
        """Set a shelf by the name of its content (no_plate, empty, with_print), as the select and actions do."""
        return await self.async_set_shelf(
            shelf_number,
            has_plate=content != NO_PLATE,
            plate_state=None if content == NO_PLATE else content,
            print_job_id=print_job_id,
            context=context,
        )

    async def async_reset_shelf(self, shelf_number: int, *, context: Any = None) -> Shelf:
        """Mark a shelf as holding no plate."""
        return await self.async_set_shelf(shelf_number, has_plate=False, context=context)


def rack_name_taken(entry: PrintFarmConfigEntry, name: str, *, except_subentry: str | None = None) -> bool:
    """Whether another rack already has this name (names are how people tell racks apart)."""
    return any(
        subentry.subentry_type == SUBENTRY_RACK
        and subentry.title.casefold() == name.strip().casefold()
        and subentry.subentry_id != except_subentry
        for subentry in entry.subentries.values()
    )


async def async_add_rack(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, data: dict[str, Any]
) -> RackCoordinator:
    """Add a rack (REST creation): the subentry, its stored shelves and its entities."""
    if rack_name_taken(entry, data[CONF_NAME]):
        raise ShelfError(f"A rack named {data[CONF_NAME]} exists already.")
    fields = {key: data[key] for key in (CONF_SHELVES, CONF_SPACING, CONF_BED_SIZE)}
    if data.get(CONF_OTTOEJECT):
        fields[CONF_OTTOEJECT] = data[CONF_OTTOEJECT]
    subentry = ConfigSubentry(
        data=MappingProxyType(fields),
        subentry_type=SUBENTRY_RACK,
        title=data[CONF_NAME].strip(),
        unique_id=None,
    )
    hass.config_entries.async_add_subentry(entry, subentry)
    farm = entry.runtime_data
    await farm.async_sync()
    return farm.racks[subentry.subentry_id]


async def async_remove_rack(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, rack: RackCoordinator, *, force: bool = False
) -> None:
    """Remove a rack (REST deletion): its subentry, its stored shelves, its device and entities.

    Refused with ShelfReservedError while a job still needs one of its shelves (reserved by an open
    job, or holding the plate of a job whose ejection workflow is under way), unless `force`.
    """
    farm = entry.runtime_data
    if not force and (holder := farm.ejection.placement.in_use(rack_id=rack.rack_id)) is not None:
        raise ShelfReservedError(
            f"Print job {holder} still needs shelves of ottorack {rack.rack_id}: remove the rack when"
            " its plate is done with them (or force it)."
        )
    hass.config_entries.async_remove_subentry(entry, rack.subentry.subentry_id)
    await farm.async_sync()


def shelf_validation_error(err: ShelfError) -> ServiceValidationError:
    """A refused shelf change, as the user sees it from a select or an action."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="invalid_shelf",
        translation_placeholders={"error": str(err)},
    )
