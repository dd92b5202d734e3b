"""Sensors of a printer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfMass,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_time_change
from homeassistant.util import dt as dt_util

from .entity import (
    BooksEntity,
    EjectorEntity,
    PrinterJobEntity,
    RackEntity,
    SpoolEntity,
    async_setup_ejector_platform,
    async_setup_printer_platform,
    async_setup_rack_platform,
    async_setup_spool_platform,
    farm_device,
)
from .orchestration_entities import ORCHESTRATION_SENSORS, OrchestrationSensor
from .printer_parts import (
    PRINTER_PART_SENSORS,
    PrinterSensor,
    PrinterSensorDescription,
    async_setup_part_sensors,
    field_value,
)
from .protocols.bambu import GCODE_STATES, STAGE_OPTIONS, STATUS_OFFLINE
from .protocols.bambu.hms import format_print_error
from .protocols.moonraker import EjectorState
from .rules.books.money import money_out, quantity_out
from .rules.books.records import IN_PROGRESS, Spool
from .rules.books.runs import Books
from .rules.books.usage import cost_of_day, last_deduction
from .runtime.farm import PrintFarmConfigEntry
from .runtime.ottoeject import EjectorCoordinator
from .runtime.printer import FIELD_UPLOAD, PrinterCoordinator
from .runtime.production import ProductionManager
from .runtime.rack import RackCoordinator

PARALLEL_UPDATES = 0

MODELS_WITHOUT_CHAMBER_SENSOR = frozenset({"P1P", "P1S", "A1", "A1 mini"})
STATUS_OPTIONS = [state.lower() for state in (*GCODE_STATES, STATUS_OFFLINE)]


def _status(printer: PrinterCoordinator) -> str | None:
    if not printer.client.online:
        return STATUS_OFFLINE.lower()
    state = printer.client.fields["gcode_state"]
    return state.lower() if state in GCODE_STATES else None


def _end_time(printer: PrinterCoordinator) -> datetime | None:
    fields = printer.client.fields
    remaining = fields["remaining_time"]
    if remaining is None or fields["gcode_state"] not in ("RUNNING", "PREPARE"):
        # Paused, the end is as far off as the person who resumes it: unknown, not a time that the
        # pause leaves behind in the past.
        return None
    # Whole minutes: the printer reports minutes, so finer precision would only add writes.
    return (dt_util.utcnow() + timedelta(minutes=remaining)).replace(second=0, microsecond=0)


def _filament_attr(attribute: str) -> Callable[[PrinterCoordinator], Any]:
    def value(printer: PrinterCoordinator) -> Any:
        filament = printer.client.fields["filament"]
        return getattr(filament, attribute) if filament else None

    return value


def _whole_degrees(name: str) -> Callable[[PrinterCoordinator], int | None]:
    """A temperature in whole degrees, as the printer's screen shows it.

    The client keeps tenths (the REST API shows them); a sensor changes state only when the
    degree changes, so thermistor jitter writes no state and no recorder row.
    """

    def value(printer: PrinterCoordinator) -> int | None:
        reading = printer.client.fields[name]
        return None if reading is None else round(reading)

    return value


def _temperature(key: str, field: str, **kwargs: Any) -> PrinterSensorDescription:
    return PrinterSensorDescription(
        key=key,
        translation_key=key,
        fields=frozenset({field}),
        value_fn=_whole_degrees(field),
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=0,
        **kwargs,
    )


SENSORS: tuple[PrinterSensorDescription, ...] = (
    PrinterSensorDescription(
        key="status",
        translation_key="status",
        device_class=SensorDeviceClass.ENUM,
        options=STATUS_OPTIONS,
        fields=frozenset({"gcode_state"}),
        value_fn=_status,
        available_fn=lambda printer: True,
    ),
    PrinterSensorDescription(
        key="stage",
        translation_key="stage",
        device_class=SensorDeviceClass.ENUM,
        options=list(STAGE_OPTIONS),
        fields=frozenset({"stage"}),
        value_fn=field_value("stage"),
    ),
    PrinterSensorDescription(
        key="progress",
        translation_key="progress",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        fields=frozenset({"progress"}),
        value_fn=field_value("progress"),
    ),
    PrinterSensorDescription(
        key="remaining_time",
        translation_key="remaining_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        fields=frozenset({"remaining_time"}),
        value_fn=field_value("remaining_time"),
    ),
    PrinterSensorDescription(
        key="end_time",
        translation_key="end_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        fields=frozenset({"remaining_time", "gcode_state"}),
        value_fn=_end_time,
    ),
    PrinterSensorDescription(
        key="upload_progress",
        translation_key="upload_progress",
        native_unit_of_measurement=PERCENTAGE,
        fields=frozenset({FIELD_UPLOAD}),
        value_fn=lambda printer: printer.upload[1] if printer.upload else None,
        attributes_fn=lambda printer: {"file": printer.upload[0] if printer.upload else None},
    ),
    PrinterSensorDescription(
        key="current_file",
        translation_key="current_file",
        fields=frozenset({"subtask_name", "gcode_file"}),
        value_fn=lambda printer: printer.client.fields["subtask_name"] or printer.client.fields["gcode_file"],
        attributes_fn=lambda printer: {"gcode_file": printer.client.fields["gcode_file"]},
    ),
    PrinterSensorDescription(
        key="current_layer",
        translation_key="current_layer",
        state_class=SensorStateClass.MEASUREMENT,
        fields=frozenset({"layer"}),
        value_fn=field_value("layer"),
    ),
    PrinterSensorDescription(
        key="total_layers",
        translation_key="total_layers",
        fields=frozenset({"total_layers"}),
        value_fn=field_value("total_layers"),
    ),
    _temperature("nozzle_temperature", "nozzle_temp"),
    _temperature("nozzle_target_temperature", "nozzle_target"),
    _temperature("bed_temperature", "bed_temp"),
    _temperature("bed_target_temperature", "bed_target"),
    _temperature(
        "chamber_temperature",
        "chamber_temp",
        available_fn=lambda printer: printer.client.online
        and printer.client.fields["chamber_temp"] is not None,
        supported_fn=lambda printer: printer.model not in MODELS_WITHOUT_CHAMBER_SENSOR,
    ),
    PrinterSensorDescription(
        key="active_filament",
        translation_key="active_filament",
        fields=frozenset({"filament"}),
        value_fn=_filament_attr("material"),
        attributes_fn=lambda printer: {
            "color": _filament_attr("color")(printer),
            "name": _filament_attr("name")(printer),
            "source": _filament_attr("source")(printer),
        },
    ),
    PrinterSensorDescription(
        key="print_error",
        translation_key="print_error",
        entity_category=EntityCategory.DIAGNOSTIC,
        fields=frozenset({"print_error"}),
        value_fn=lambda printer: format_print_error(printer.client.fields["print_error"]),
    ),
    PrinterSensorDescription(
        key="wifi_signal",
        translation_key="wifi_signal",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        fields=frozenset({"wifi_signal"}),
        value_fn=field_value("wifi_signal"),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every printer and every rack."""
    async_setup_printer_platform(
        hass,
        entry,
        async_add_entities,
        lambda printer: [
            PrinterSensor(printer, description)
            for description in SENSORS
            if description.supported_fn(printer)
        ],
    )
    async_setup_rack_platform(
        hass,
        entry,
        async_add_entities,
        lambda rack: [RackSensor(rack, description) for description in RACK_SENSORS],
    )
    async_setup_ejector_platform(
        hass,
        entry,
        async_add_entities,
        lambda ejector: [EjectorSensor(ejector, description) for description in EJECTOR_SENSORS],
    )
    async_setup_printer_platform(
        hass, entry, async_add_entities, lambda printer: [CurrentJobSensor(printer, CURRENT_JOB)]
    )
    async_setup_printer_platform(
        hass,
        entry,
        async_add_entities,
        lambda printer: [
            PrinterSensor(printer, description)
            for description in PRINTER_PART_SENSORS
            if description.supported_fn(printer)
        ],
    )
    async_setup_part_sensors(hass, entry, async_add_entities)
    async_add_entities([QueueLengthSensor(entry)])
    async_add_entities([OrchestrationSensor(entry, description) for description in ORCHESTRATION_SENSORS])
    async_setup_spool_platform(
        hass,
        entry,
        async_add_entities,
        lambda production, spool_id: [
            SpoolSensor(production, spool_id, description) for description in SPOOL_SENSORS
        ],
    )
    async_add_entities(
        [BooksSensor(entry.runtime_data.production, entry, description) for description in BOOKS_SENSORS]
    )


@dataclass(frozen=True, kw_only=True)
class RackSensorDescription(SensorEntityDescription):
    """A rack sensor: a row of the table below."""

    value_fn: Callable[[RackCoordinator], int]


RACK_SENSORS: tuple[RackSensorDescription, ...] = (
    RackSensorDescription(
        key="occupied_shelves",
        translation_key="occupied_shelves",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda rack: rack.occupied_shelves,
    ),
    RackSensorDescription(
        key="available_shelves",
        translation_key="available_shelves",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda rack: rack.available_shelves,
    ),
)


class RackSensor(RackEntity, SensorEntity):
    """A count of a rack's shelves."""

    entity_description: RackSensorDescription

    def __init__(self, rack: RackCoordinator, description: RackSensorDescription) -> None:
        """Bind the sensor to its rack."""
        super().__init__(rack, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> int:
        """The count."""
        return self.entity_description.value_fn(self.rack)


@dataclass(frozen=True, kw_only=True)
class EjectorSensorDescription(SensorEntityDescription):
    """An OttoEject sensor: a row of the table below."""

    value_fn: Callable[[EjectorCoordinator], str | None]
    always_available: bool = False


EJECTOR_SENSORS: tuple[EjectorSensorDescription, ...] = (
    EjectorSensorDescription(
        key="status",
        translation_key="ottoeject_status",
        device_class=SensorDeviceClass.ENUM,
        options=[state.lower() for state in EjectorState],
        value_fn=lambda ejector: ejector.state.lower(),
        always_available=True,
    ),
    EjectorSensorDescription(
        key="current_macro",
        translation_key="current_macro",
        value_fn=lambda ejector: ejector.data.current_macro if ejector.data else None,
    ),
)


class EjectorSensor(EjectorEntity, SensorEntity):
    """An OttoEject sensor."""

    entity_description: EjectorSensorDescription

    def __init__(self, ejector: EjectorCoordinator, description: EjectorSensorDescription) -> None:
        """Bind the sensor to its OttoEject."""
        super().__init__(ejector, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """The status always says something (OFFLINE included); the rest needs a reachable robot."""
        if self.entity_description.always_available:
            return True
        return super().available and self.coordinator.state is not EjectorState.OFFLINE

    @property
    def native_value(self) -> str | None:
        """The value."""
        return self.entity_description.value_fn(self.coordinator)


def _current_job(printer: PrinterCoordinator) -> Any:
    return printer.entry.runtime_data.jobs.store.active_job(printer.printer_id)


def _current_job_attributes(printer: PrinterCoordinator) -> dict[str, Any] | None:
    jobs = printer.entry.runtime_data.jobs
    if (job := _current_job(printer)) is None:
        return None
    item = jobs.store.items.get(job.print_item_id)
    return {"filename": item.filename if item else None, "started_at": job.started_at}


CURRENT_JOB = PrinterSensorDescription(
    key="current_job",
    translation_key="current_job",
    available_fn=lambda printer: True,
    value_fn=lambda printer: job.id if (job := _current_job(printer)) else None,
    attributes_fn=_current_job_attributes,
)


class CurrentJobSensor(PrinterJobEntity, PrinterSensor):
    """The job printing on a printer: its id, with the file and start as attributes."""


class QueueLengthSensor(SensorEntity):
    """How many jobs wait in the queue."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_translation_key = "queue_length"
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, entry: PrintFarmConfigEntry) -> None:
        """Bind the sensor to the farm's queue."""
        self._jobs = entry.runtime_data.jobs
        self._attr_unique_id = f"{entry.entry_id}_queue_length"
        self._attr_device_info = farm_device(entry)
        self._attr_native_value = len(self._jobs.store.queued())

    async def async_added_to_hass(self) -> None:
        """Follow the queue."""
        self.async_on_remove(self._jobs.async_add_listener(self._queue_changed))

    def _queue_changed(self) -> None:
        length = len(self._jobs.store.queued())
        if length != self._attr_native_value:
            self._attr_native_value = length
            self.async_write_ha_state()


@dataclass(frozen=True, kw_only=True)
class SpoolSensorDescription(SensorEntityDescription):
    """A spool sensor: a row of the table below."""

    value_fn: Callable[[Spool], float | None]


SPOOL_SENSORS: tuple[SpoolSensorDescription, ...] = (
    SpoolSensorDescription(
        key="remaining",
        translation_key="spool_remaining",
        device_class=SensorDeviceClass.WEIGHT,
        native_unit_of_measurement=UnitOfMass.GRAMS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda spool: quantity_out(spool.remaining_grams),
    ),
    SpoolSensorDescription(
        key="remaining_percent",
        translation_key="spool_remaining_percent",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda spool: spool.remaining_percent,
    ),
)


class SpoolSensor(SpoolEntity, SensorEntity):
    """What is left on a spool."""

    entity_description: SpoolSensorDescription

    def __init__(
        self, production: ProductionManager, spool_id: str, description: SpoolSensorDescription
    ) -> None:
        """Bind the sensor to its spool."""
        super().__init__(production, spool_id, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> float | None:
        """The value."""
        spool = self.spool
        return None if spool is None else self.entity_description.value_fn(spool)


@dataclass(frozen=True, kw_only=True)
class BooksSensorDescription(SensorEntityDescription):
    """A farm-wide production sensor: a row of the table below."""

    value_fn: Callable[[Books], float | int | None]
    in_currency: bool = False  # an amount of money, in Home Assistant's currency
    attributes_fn: Callable[[Books], dict[str, Any]] | None = None
    daily: bool = False  # a figure of the local day: read again at midnight, not only when the books change


BOOKS_SENSORS: tuple[BooksSensorDescription, ...] = (
    BooksSensorDescription(
        key="runs_in_progress",
        translation_key="runs_in_progress",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda books: sum(1 for run in books.runs.values() if run.status == IN_PROGRESS),
    ),
    BooksSensorDescription(
        key="material_used",
        translation_key="material_used",
        device_class=SensorDeviceClass.WEIGHT,
        native_unit_of_measurement=UnitOfMass.GRAMS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=0,
        value_fn=lambda books: float(books.material_used_grams),
    ),
    # On the farm's device, not per printer: what the farm's last print and today's prints cost is
    # what a person reads at a glance; each job's own cost is in its REST body and events.
    BooksSensorDescription(
        key="last_job_cost",
        translation_key="last_job_cost",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        in_currency=True,
        value_fn=lambda books: money_out(last.cost) if (last := last_deduction(books)) else None,
        attributes_fn=lambda books: {"job_id": last.job_id if (last := last_deduction(books)) else None},
    ),
    BooksSensorDescription(
        key="cost_today",
        translation_key="cost_today",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        in_currency=True,
        value_fn=lambda books: money_out(cost_of_day(books, dt_util.now().date(), dt_util.as_local)),
        daily=True,
    ),
)


class BooksSensor(BooksEntity, SensorEntity):
    """A figure of the farm's production books, on the farm's device."""

    entity_description: BooksSensorDescription

    def __init__(
        self, production: ProductionManager, entry: PrintFarmConfigEntry, description: BooksSensorDescription
    ) -> None:
        """Bind the sensor to the books."""
        super().__init__(production)
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = farm_device(entry)
        if description.in_currency:
            self._attr_native_unit_of_measurement = production.currency

    async def async_added_to_hass(self) -> None:
        """Follow the books, and for a day's figure the local midnight too."""
        await super().async_added_to_hass()
        if self.entity_description.daily:

            @callback
            def midnight(_now: Any) -> None:
                self._write_if_changed()

            self.async_on_remove(async_track_time_change(self.hass, midnight, hour=0, minute=0, second=0))

    @property
    def native_value(self) -> float | int | None:
        """The value."""
        return self.entity_description.value_fn(self.production.books)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The sensor's attributes, when it has any."""
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self.production.books) if attributes_fn else None
