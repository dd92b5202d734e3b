"""Base entity of a printer: it writes its state only when what it shows changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .protocols.bambu import FIELD_ONLINE
from .protocols.moonraker import EjectorState
from .rules.books.records import Spool
from .runtime.farm import signal_ejector_added, signal_printer_added, signal_rack_added
from .runtime.ottoeject import EjectorCoordinator
from .runtime.printer import PrinterCoordinator
from .runtime.production import ProductionManager, signal_spool_added
from .runtime.rack import RackCoordinator

if TYPE_CHECKING:
    from .runtime.farm import PrintFarmConfigEntry


@dataclass(frozen=True, kw_only=True)
class PrinterEntityDescription(EntityDescription):
    """A printer entity: the state fields it reads, and when it is available."""

    fields: frozenset[str] = frozenset()
    available_fn: Callable[[PrinterCoordinator], bool] = lambda printer: printer.client.online
    # Whether the printer has the thing at all (a P1S has no chamber sensor); unknown models get it.
    supported_fn: Callable[[PrinterCoordinator], bool] = lambda printer: True


class PrinterEntity(Entity):
    """An entity of one printer, updated by the fields it reads rather than by every report.

    `read()` computes what the entity shows from the printer's fields; only when that differs
    from what it showed last are the `_attr_` values set (`apply()`) and the state written.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: PrinterEntityDescription

    def __init__(self, printer: PrinterCoordinator, description: PrinterEntityDescription) -> None:
        """Bind the entity to its printer."""
        self.printer = printer
        self.entity_description = description
        self._attr_unique_id = f"{printer.serial}_{description.key}"
        self._attr_device_info = printer.device_info
        self._shown: tuple[Any, ...] | None = None
        self._refresh()

    def read(self) -> tuple[Any, ...]:
        """What the entity shows now, starting with its availability."""
        return (self.entity_description.available_fn(self.printer),)

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Set the `_attr_` values from what read() returned."""
        self._attr_available = shown[0]

    def _refresh(self) -> bool:
        shown = self.read()
        if shown == self._shown:
            return False
        self._shown = shown
        self.apply(shown)
        return True

    async def async_added_to_hass(self) -> None:
        """Follow the printer's fields."""
        self._refresh()
        self.async_on_remove(
            self.printer.async_add_listener(
                self._fields_changed, self.entity_description.fields | {FIELD_ONLINE}
            )
        )

    def _fields_changed(self) -> None:
        if self._refresh():
            self.async_write_ha_state()


class PrinterJobEntity(PrinterEntity):
    """A printer entity that shows what the job queue knows of the printer (its job, its bed)."""

    async def async_added_to_hass(self) -> None:
        """Follow the queue too."""
        await super().async_added_to_hass()
        self.async_on_remove(self.printer.entry.runtime_data.jobs.async_add_listener(self._fields_changed))


def farm_device(entry: PrintFarmConfigEntry) -> DeviceInfo:
    """The farm's own device, for what belongs to no printer or robot (the queue, job events)."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)}, manufacturer="Print Farm", model="Farm", name=entry.title
    )


def _async_follow[D: (PrinterCoordinator, RackCoordinator, EjectorCoordinator)](
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    existing: Iterable[D],
    signal: str,
    make_entities: Callable[[D], Iterable[Entity]],
) -> None:
    """Add entities for every device of a kind, now and whenever one is added."""

    @callback
    def add(device: D) -> None:
        async_add_entities(make_entities(device), config_subentry_id=device.subentry.subentry_id)

    for device in existing:
        add(device)
    entry.async_on_unload(async_dispatcher_connect(hass, signal, add))


def async_setup_printer_platform(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[PrinterCoordinator], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every printer, now and whenever one is added."""
    farm = entry.runtime_data
    _async_follow(
        hass,
        entry,
        async_add_entities,
        farm.printers.values(),
        signal_printer_added(entry.entry_id),
        make_entities,
    )


def async_setup_ejector_platform(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[EjectorCoordinator], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every OttoEject, now and whenever one is added."""
    farm = entry.runtime_data
    _async_follow(
        hass,
        entry,
        async_add_entities,
        farm.ejectors.values(),
        signal_ejector_added(entry.entry_id),
        make_entities,
    )


def async_setup_rack_platform(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[RackCoordinator], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every rack, now and whenever one is added."""
    farm = entry.runtime_data
    _async_follow(
        hass, entry, async_add_entities, farm.racks.values(), signal_rack_added(entry.entry_id), make_entities
    )


class ShownEntity(Entity):
    """An entity that writes its state only when what it shows (state, attributes) changed."""

    _shown: tuple[Any, ...] | None = None

    def shown(self) -> tuple[Any, ...]:
        """What the entity shows; a state write happens only when this changes."""
        return (self.available, self.state, self.extra_state_attributes)

    @callback
    def _write_if_changed(self) -> None:
        shown = self.shown()
        if shown != self._shown:
            self._shown = shown
            self.async_write_ha_state()


class RackEntity(ShownEntity):
    """An entity of one rack, written when the rack's shelves change and what it shows changed."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, rack: RackCoordinator, key: str) -> None:
        """Bind the entity to its rack."""
        self.rack = rack
        self._attr_unique_id = f"rack_{rack.subentry.subentry_id}_{key}"
        self._attr_device_info = rack.device_info

    async def async_added_to_hass(self) -> None:
        """Follow the rack."""
        self._shown = self.shown()
        self.async_on_remove(self.rack.async_add_listener(self._write_if_changed))


class EjectorEntity(CoordinatorEntity[EjectorCoordinator], ShownEntity):
    """An entity of one OttoEject; polled data is written only when what the entity shows changed."""

    _attr_has_entity_name = True

    def __init__(self, ejector: EjectorCoordinator, key: str) -> None:
        """Bind the entity to its OttoEject."""
        super().__init__(ejector)
        self._attr_unique_id = f"ottoeject_{ejector.subentry.subentry_id}_{key}"
        self._attr_device_info = ejector.device_info

    @property
    def online(self) -> bool:
        """Whether the robot can take commands (Klipper ready and idle)."""
        return self.coordinator.state is EjectorState.ONLINE

    @callback
    def _handle_coordinator_update(self) -> None:
        self._write_if_changed()


class BooksEntity(ShownEntity):
    """An entity that shows the production books (a spool, the runs); written when what it shows changed."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, production: ProductionManager) -> None:
        """Bind the entity to the books."""
        self.production = production

    async def async_added_to_hass(self) -> None:
        """Follow the books."""
        self._shown = self.shown()
        self.async_on_remove(self.production.async_add_listener(self._write_if_changed))


class SpoolEntity(BooksEntity):
    """An entity of one spool, on the spool's device."""

    def __init__(self, production: ProductionManager, spool_id: str, key: str) -> None:
        """Bind the entity to its spool."""
        super().__init__(production)
        self.spool_id = spool_id
        self._attr_unique_id = f"spool_{spool_id}_{key}"
        self._attr_device_info = production.spool_device_info(spool_id)

    @property
    def spool(self) -> Spool | None:
        """The spool, or None once it is deleted (its device goes with it)."""
        return self.production.books.spools.get(self.spool_id)

    @property
    def available(self) -> bool:
        """Available while the spool exists."""
        return self.spool is not None


def async_setup_spool_platform(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[ProductionManager, str], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every spool, now and whenever one is added."""
    production = entry.runtime_data.production

    @callback
    def add(spool_id: str) -> None:
        async_add_entities(make_entities(production, spool_id))

    for spool_id in production.books.spools:
        add(spool_id)
    entry.async_on_unload(async_dispatcher_connect(hass, signal_spool_added(entry.entry_id), add))
