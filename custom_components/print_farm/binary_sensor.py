"""Binary sensors of printers, spools and the orchestration's health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import (
    PrinterEntity,
    PrinterEntityDescription,
    PrinterJobEntity,
    SpoolEntity,
    async_setup_printer_platform,
    async_setup_spool_platform,
)
from .orchestration_entities import OrchestrationHealthSensor
from .protocols.bambu import PRINTING_STATES
from .rules.books.money import quantity_out
from .runtime.farm import PrintFarmConfigEntry
from .runtime.printer import PrinterCoordinator

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PrinterBinarySensorDescription(PrinterEntityDescription, BinarySensorEntityDescription):
    """A printer binary sensor: a row of the table below."""

    is_on_fn: Callable[[PrinterCoordinator], bool]


def _has_error(printer: PrinterCoordinator) -> bool:
    """A fatal or serious HMS entry, or a print error (the user's own cancel is none)."""
    return any(error.fault for error in printer.client.fields["errors"] or ())


BINARY_SENSORS: tuple[PrinterBinarySensorDescription, ...] = (
    PrinterBinarySensorDescription(
        key="online",
        translation_key="online",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda printer: printer.client.online,
        available_fn=lambda printer: True,
    ),
    PrinterBinarySensorDescription(
        key="printing",
        translation_key="printing",
        device_class=BinarySensorDeviceClass.RUNNING,
        fields=frozenset({"gcode_state"}),
        is_on_fn=lambda printer: printer.client.fields["gcode_state"] in PRINTING_STATES,
    ),
    PrinterBinarySensorDescription(
        key="error",
        translation_key="error",
        device_class=BinarySensorDeviceClass.PROBLEM,
        fields=frozenset({"errors"}),
        is_on_fn=_has_error,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of every printer and every spool."""
    async_setup_printer_platform(
        hass,
        entry,
        async_add_entities,
        lambda printer: [
            *(PrinterBinarySensor(printer, description) for description in BINARY_SENSORS),
            BedClearSensor(printer, BED_CLEAR),
        ],
    )
    async_setup_spool_platform(
        hass,
        entry,
        async_add_entities,
        lambda production, spool_id: [SpoolLowSensor(production, spool_id, "low")],
    )
    async_add_entities([OrchestrationHealthSensor(entry)])


class PrinterBinarySensor(PrinterEntity, BinarySensorEntity):
    """A printer binary sensor."""

    entity_description: PrinterBinarySensorDescription

    def read(self) -> tuple[object, ...]:
        """Availability and value."""
        return (
            self.entity_description.available_fn(self.printer),
            self.entity_description.is_on_fn(self.printer),
        )

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Show them."""
        self._attr_available, self._attr_is_on = shown


BED_CLEAR = PrinterBinarySensorDescription(
    key="bed_clear",
    translation_key="bed_clear",
    fields=frozenset({"gcode_state"}),
    available_fn=lambda printer: True,  # the farm knows it even while the printer is offline
    is_on_fn=lambda printer: printer.entry.runtime_data.jobs.bed_is_clear(printer),
)


class BedClearSensor(PrinterJobEntity, PrinterBinarySensor):
    """Whether the printer's bed is known clear, so that a job may start on it."""


class SpoolLowSensor(SpoolEntity, BinarySensorEntity):
    """On when a spool holds less than the farm's low-spool threshold."""

    _attr_translation_key = "spool_low"

    @property
    def is_on(self) -> bool | None:
        """Whether the spool is low."""
        spool = self.spool
        return None if spool is None else spool.remaining_grams < self.production.low_threshold

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The threshold it is measured against."""
        return {"threshold_grams": quantity_out(self.production.low_threshold)}
