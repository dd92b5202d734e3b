"""Base entity of a printer: it writes its state only when what it shows changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .protocols.bambu import FIELD_ONLINE
from .protocols.bambu.ams import AmsTray, AmsUnit
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


AMS_MODELS: Final = {"ams": "AMS", "ams_lite": "AMS Lite", "ams_2_pro": "AMS 2 Pro", "ams_ht": "AMS HT"}
AMS_FIELDS: Final = frozenset({"ams_units", "external_trays"})
# What the followers listen to: the parts, and the first full report (when the registries are swept).
_FOLLOWED_FIELDS: Final = AMS_FIELDS | {"full_report"}


def ams_unit_device(printer: PrinterCoordinator, unit: AmsUnit) -> DeviceInfo:
    """An AMS unit's device, under its printer's; HT units are numbered apart (AMS HT 1 is id 128)."""
    number = unit.id - 127 if unit.id >= 128 else unit.id + 1
    model = AMS_MODELS.get(unit.kind, "AMS")
    return DeviceInfo(
        identifiers={(DOMAIN, f"{printer.serial}_ams_{unit.id}")},
        via_device=(DOMAIN, printer.serial),
        manufacturer="Bambu Lab",
        model=model,
        name=f"{printer.name} {model} {number}",
    )


def find_unit(printer: PrinterCoordinator, unit_id: int) -> AmsUnit | None:
    """The printer's AMS unit with this id, as last reported."""
    return next((unit for unit in printer.client.fields["ams_units"] or () if unit.id == unit_id), None)


type _PartKey = tuple[int, int | None]  # a unit: (id, None); a tray: (unit, slot)


def part_key(unique_id: str, prefix: str) -> _PartKey | None:
    """The part an AMS entity's unique id names; None for any other unique id.

    `{serial}_ams_{unit}_{slot}_{key}` is a tray's, `{serial}_ams_{unit}_{key}` a unit's (its key a word).
    """
    if not unique_id.startswith(prefix):
        return None
    unit, _, rest = unique_id.removeprefix(prefix).partition("_")
    slot = rest.partition("_")[0]
    if not unit.isdigit():
        return None
    return (int(unit), int(slot) if slot.isdigit() else None)


def ams_device_unit(device: dr.DeviceEntry, serial: str) -> int | None:
    """The unit id of a printer's AMS unit device (`{serial}_ams_{id}`), None for any other device."""
    prefix = f"{serial}_ams_"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix) and identifier.removeprefix(prefix).isdigit():
            return int(identifier.removeprefix(prefix))
    return None


def _parts(printer: PrinterCoordinator) -> dict[_PartKey, AmsUnit | AmsTray]:
    """The printer's units and trays as last reported, by key."""
    fields = printer.client.fields
    parts: dict[_PartKey, AmsUnit | AmsTray] = {}
    for unit in fields["ams_units"] or ():
        parts[(unit.id, None)] = unit
        parts.update(((unit.id, tray.slot), tray) for tray in unit.trays)
    parts.update(((tray.unit, tray.slot), tray) for tray in fields["external_trays"] or ())
    return parts


class _PartListeners:
    """Wakes the entities of the units and trays that changed only, not all of them on every AMS change.

    One per printer while any of its unit or tray entities is in Home Assistant.
    """

    def __init__(self, printer: PrinterCoordinator) -> None:
        self.printer = printer
        self._last = _parts(printer)
        self._listeners: dict[_PartKey, list[Callable[[], None]]] = {}
        self._remove = printer.async_add_listener(self._changed, AMS_FIELDS)

    @callback
    def add(self, key: _PartKey, listener: Callable[[], None]) -> CALLBACK_TYPE:
        self._listeners.setdefault(key, []).append(listener)

        @callback
        def remove() -> None:
            listeners = self._listeners[key]
            listeners.remove(listener)
            if not listeners:
                del self._listeners[key]
            if not self._listeners:
                self._remove()
                del _PART_LISTENERS[self.printer]

        return remove

    @callback
    def _changed(self) -> None:
        last, current = self._last, _parts(self.printer)
        self._last = current
        for key, listeners in tuple(self._listeners.items()):
            if current.get(key) != last.get(key):
                for listener in tuple(listeners):
                    listener()


_PART_LISTENERS: dict[PrinterCoordinator, _PartListeners] = {}


class _PartEntity(PrinterEntity):
    """An entity of a unit or a tray: woken when its own part changes (or another field it reads)."""

    part_key: _PartKey

    async def async_added_to_hass(self) -> None:
        """Follow the part, and the other fields the entity reads."""
        self._refresh()
        fields = self.entity_description.fields
        self.async_on_remove(
            self.printer.async_add_listener(self._fields_changed, (fields - AMS_FIELDS) | {FIELD_ONLINE})
        )
        if fields & AMS_FIELDS:
            listeners = _PART_LISTENERS.get(self.printer)
            if listeners is None:
                listeners = _PART_LISTENERS[self.printer] = _PartListeners(self.printer)
            self.async_on_remove(listeners.add(self.part_key, self._fields_changed))


class TrayEntity(_PartEntity):
    """An entity of one tray (an AMS slot or an external holder), on its unit's device (or the printer's)."""

    def __init__(
        self, printer: PrinterCoordinator, description: PrinterEntityDescription, unit: int, slot: int
    ) -> None:
        """Bind the entity to its tray."""
        self.unit, self.slot = unit, slot
        self.part_key = (unit, slot)
        super().__init__(printer, description)
        self._attr_unique_id = f"{printer.serial}_ams_{unit}_{slot}_{description.key}"
        if unit < 254 and (ams_unit := find_unit(printer, unit)) is not None:
            self._attr_device_info = ams_unit_device(printer, ams_unit)

    @property
    def tray(self) -> AmsTray | None:
        """The tray as last reported; None when its unit is gone or nothing is known."""
        fields = self.printer.client.fields
        if self.unit >= 254:
            trays: Iterable[AmsTray] = fields["external_trays"] or ()
        else:
            trays = unit.trays if (unit := find_unit(self.printer, self.unit)) else ()
        return next((tray for tray in trays if tray.slot == self.slot), None)


class AmsUnitEntity(_PartEntity):
    """An entity of one AMS unit, on the unit's device."""

    def __init__(
        self, printer: PrinterCoordinator, description: PrinterEntityDescription, unit: AmsUnit
    ) -> None:
        """Bind the entity to its unit."""
        self.unit_id = unit.id
        self.part_key = (unit.id, None)
        super().__init__(printer, description)
        self._attr_unique_id = f"{printer.serial}_ams_{unit.id}_{description.key}"
        self._attr_device_info = ams_unit_device(printer, unit)

    @property
    def ams_unit(self) -> AmsUnit | None:
        """The unit as last reported."""
        return find_unit(self.printer, self.unit_id)


class _AmsFollower:
    """Adds a printer's tray (and unit) entities as they appear, removes them and their devices as they go."""

    def __init__(
        self,
        hass: HomeAssistant,
        printer: PrinterCoordinator,
        add: Callable[[Iterable[Entity]], None],
        make_tray_entities: Callable[[PrinterCoordinator, int, int], Iterable[Entity]],
        make_unit_entities: Callable[[PrinterCoordinator, AmsUnit], Iterable[Entity]] | None,
    ) -> None:
        self.hass, self.printer, self._add = hass, printer, add
        self._make_tray, self._make_unit = make_tray_entities, make_unit_entities
        self._entities: dict[tuple[int, int | None], list[Entity]] = {}
        self._swept = False

    @callback
    def update(self) -> None:
        fields = self.printer.client.fields
        units, external = fields["ams_units"], fields["external_trays"]
        if units is None or external is None:
            return  # nothing known (offline): nothing vanished
        # What is there now: a unit by (id, None), a tray by (unit, slot).
        present: dict[tuple[int, int | None], AmsUnit | AmsTray] = {}
        for unit in units:
            present[(unit.id, None)] = unit
            present.update(((unit.id, tray.slot), tray) for tray in unit.trays)
        present.update(((tray.unit, tray.slot), tray) for tray in external)
        new: list[Entity] = []
        for key, part in present.items():
            if key in self._entities:
                continue
            if isinstance(part, AmsUnit):
                made = self._make_unit(self.printer, part) if self._make_unit is not None else ()
            else:
                made = self._make_tray(self.printer, part.unit, part.slot)
            self._entities[key] = list(made)
            new.extend(self._entities[key])
        if new:
            self._add(new)
        gone_units = {unit for unit, _ in self._entities if unit < 254} - {unit.id for unit in units}
        for key in [key for key in self._entities if key not in present]:
            self._remove(self._entities.pop(key))
        registry = dr.async_get(self.hass)
        for unit_id in gone_units:
            identifier = (DOMAIN, f"{self.printer.serial}_ams_{unit_id}")
            if device := registry.async_get_device(identifiers={identifier}):
                registry.async_remove_device(device.id)
        if not self._swept and fields["full_report"]:
            self._swept = True
            self._sweep(set(present), {unit.id for unit in units})

    def _sweep(self, present: set[tuple[int, int | None]], unit_ids: set[int]) -> None:
        """Remove what a unit or holder that vanished while Home Assistant was down left behind.

        Only after a full report (msg 0): a delta names only what changed, so the units it leaves out
        may well be there.
        """
        prefix = f"{self.printer.serial}_ams_"
        entities = er.async_get(self.hass)
        for entity_entry in er.async_entries_for_config_entry(entities, self.printer.entry.entry_id):
            key = part_key(entity_entry.unique_id, prefix)
            if key is not None and key not in present:
                entities.async_remove(entity_entry.entity_id)
        devices = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(devices, self.printer.entry.entry_id):
            unit_id = ams_device_unit(device, self.printer.serial)
            if unit_id is not None and unit_id not in unit_ids:
                devices.async_remove_device(device.id)

    def _remove(self, entities: list[Entity]) -> None:
        registry = er.async_get(self.hass)
        for entity in entities:
            if entity.registry_entry is not None and registry.async_get(entity.entity_id):
                registry.async_remove(entity.entity_id)  # removes the entity from Home Assistant too
            elif entity.hass is not None:
                self.hass.async_create_task(entity.async_remove(force_remove=True))


def async_setup_tray_platform(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make_entities: Callable[[PrinterCoordinator, int, int], Iterable[Entity]],
    make_unit_entities: Callable[[PrinterCoordinator, AmsUnit], Iterable[Entity]] | None = None,
) -> None:
    """Add a platform's entities for every tray (AMS slots, external holders) of every printer as it appears.

    make_entities(printer, unit, slot) is called once per tray when it first appears; its entities
    leave Home Assistant and the entity registry when the tray or its unit vanishes, and a vanished
    unit's device leaves the device registry. make_unit_entities(printer, unit), likewise per unit.
    """

    def follow(printer: PrinterCoordinator) -> list[Entity]:
        follower = _AmsFollower(
            hass,
            printer,
            lambda entities: async_add_entities(entities, config_subentry_id=printer.subentry.subentry_id),
            make_entities,
            make_unit_entities,
        )
        follower.update()
        entry.async_on_unload(printer.async_add_listener(follower.update, _FOLLOWED_FIELDS))
        return []

    async_setup_printer_platform(hass, entry, async_add_entities, follow)


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
