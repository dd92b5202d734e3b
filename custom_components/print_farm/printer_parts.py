"""Sensors of a printer's parts: AMS units and trays, fans, nozzle, the loaded tray and decoded errors.

The sensor platform adds them (sensor.py); AMS units and trays come and go at runtime
(entity.async_setup_tray_platform).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfLength, UnitOfTemperature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import (
    AMS_FIELDS,
    AmsUnitEntity,
    PrinterEntity,
    PrinterEntityDescription,
    TrayEntity,
    async_setup_tray_platform,
)
from .protocols.bambu.ams import EXTERNAL, EXTERNAL_2, HT_FIRST, HT_LAST, AmsTray, AmsUnit, tray_source
from .protocols.bambu.state import NOZZLE_MATERIALS
from .runtime.farm import PrintFarmConfigEntry
from .runtime.printer import PrinterCoordinator

# Models without the part (an unknown model gets it). A P1P can be fitted with both (and its
# reports carry them), so only the open-frame A1 family goes without.
MODELS_WITHOUT_AUX_FAN: Final = frozenset({"A1", "A1 mini"})
MODELS_WITHOUT_CHAMBER_FAN: Final = frozenset({"A1", "A1 mini"})
UNIT_FIELDS: Final = frozenset({"ams_units"})
EMPTY: Final = "empty"
NONE_LOADED: Final = "none"
# Every state the active tray sensor can show (tray_source of every code, or none loaded).
ACTIVE_TRAY_OPTIONS: Final = [
    NONE_LOADED,
    *(tray_source(unit * 4 + slot) for unit in range(4) for slot in range(4)),
    *(tray_source(code) for code in range(HT_FIRST, HT_LAST + 1)),
    tray_source(EXTERNAL),
    tray_source(EXTERNAL_2),
]

# Our own small table of named colours; a tray's colour is named by the nearest one.
COLOR_NAMES: Final = (
    ("black", (0, 0, 0)),
    ("white", (255, 255, 255)),
    ("grey", (128, 128, 128)),
    ("silver", (192, 192, 192)),
    ("red", (220, 30, 30)),
    ("dark red", (128, 0, 0)),
    ("orange", (255, 128, 0)),
    ("yellow", (255, 230, 0)),
    ("gold", (212, 175, 55)),
    ("green", (0, 170, 70)),
    ("dark green", (0, 90, 30)),
    ("lime", (170, 255, 0)),
    ("cyan", (0, 220, 230)),
    ("teal", (0, 128, 128)),
    ("blue", (30, 80, 220)),
    ("navy", (0, 0, 110)),
    ("purple", (130, 40, 180)),
    ("magenta", (230, 0, 200)),
    ("pink", (255, 150, 200)),
    ("brown", (120, 70, 30)),
    ("beige", (225, 205, 170)),
)


@lru_cache(maxsize=256)
def color_name(color: str | None) -> str | None:
    """The nearest named colour to "#RRGGBB"."""
    if not color or len(color) != 7:
        return None
    try:
        rgb = tuple(int(color[at : at + 2], 16) for at in (1, 3, 5))
    except ValueError:
        return None
    return min(COLOR_NAMES, key=lambda item: sum((a - b) ** 2 for a, b in zip(item[1], rgb, strict=True)))[0]


@dataclass(frozen=True, kw_only=True)
class PrinterSensorDescription(PrinterEntityDescription, SensorEntityDescription):
    """A printer sensor: what it reads and shows (sensor.py's table and the parts' tables below)."""

    value_fn: Callable[[PrinterCoordinator], Any]
    attributes_fn: Callable[[PrinterCoordinator], dict[str, Any] | None] = lambda printer: None


def field_value(name: str) -> Callable[[PrinterCoordinator], Any]:
    """A description's value: the printer's public field of that name."""
    return lambda printer: printer.client.fields[name]


def _fan(key: str, field: str, models_without: frozenset[str] = frozenset()) -> PrinterSensorDescription:
    return PrinterSensorDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        fields=frozenset({field}),
        value_fn=field_value(field),
        supported_fn=lambda printer: printer.model not in models_without,
    )


def _active_tray(printer: PrinterCoordinator) -> str:
    code = printer.client.fields["active_tray"]
    return NONE_LOADED if code is None else tray_source(code)


def _errors(printer: PrinterCoordinator) -> dict[str, Any]:
    model = printer.model
    return {
        "errors": [
            {
                "code": error.code,
                "kind": error.kind,
                "module": error.module,
                "severity": error.severity,
                "text": error.text,
                "url": error.url(model),
            }
            for error in printer.client.fields["errors"] or ()
        ]
    }


PRINTER_PART_SENSORS: Final[tuple[PrinterSensorDescription, ...]] = (
    _fan("part_fan", "part_fan"),
    _fan("aux_fan", "aux_fan", MODELS_WITHOUT_AUX_FAN),
    _fan("chamber_fan", "chamber_fan", MODELS_WITHOUT_CHAMBER_FAN),
    PrinterSensorDescription(
        key="nozzle_type",
        translation_key="nozzle_type",
        device_class=SensorDeviceClass.ENUM,
        options=list(NOZZLE_MATERIALS),
        entity_category=EntityCategory.DIAGNOSTIC,
        fields=frozenset({"nozzle_type"}),
        value_fn=field_value("nozzle_type"),
    ),
    PrinterSensorDescription(
        key="nozzle_diameter",
        translation_key="nozzle_diameter",
        device_class=SensorDeviceClass.DISTANCE,
        native_unit_of_measurement=UnitOfLength.MILLIMETERS,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        fields=frozenset({"nozzle_diameter"}),
        value_fn=field_value("nozzle_diameter"),
    ),
    PrinterSensorDescription(
        key="active_tray",
        translation_key="active_tray",
        device_class=SensorDeviceClass.ENUM,
        options=ACTIVE_TRAY_OPTIONS,
        fields=frozenset({"active_tray"}),
        value_fn=_active_tray,
        attributes_fn=lambda printer: {"code": printer.client.fields["active_tray"]},
    ),
    PrinterSensorDescription(
        key="errors",
        translation_key="errors",
        state_class=SensorStateClass.MEASUREMENT,
        fields=frozenset({"errors"}),
        value_fn=lambda printer: len(printer.client.fields["errors"] or ()),
        attributes_fn=_errors,
    ),
)


@dataclass(frozen=True, kw_only=True)
class UnitSensorDescription(PrinterEntityDescription, SensorEntityDescription):
    """An AMS unit's sensor."""

    value_fn: Callable[[AmsUnit], Any]
    attributes: dict[str, Any] | None = None


UNIT_SENSORS: Final = (
    UnitSensorDescription(
        key="humidity",
        translation_key="ams_humidity",
        device_class=SensorDeviceClass.HUMIDITY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        fields=UNIT_FIELDS,
        value_fn=lambda unit: unit.humidity,
    ),
    UnitSensorDescription(
        key="humidity_level",
        translation_key="ams_humidity_level",
        state_class=SensorStateClass.MEASUREMENT,
        fields=UNIT_FIELDS,
        value_fn=lambda unit: unit.humidity_level,
        # Bambu's scale runs the other way from the percentage: 5 is the driest.
        attributes={"driest": 5, "wettest": 1},
    ),
    UnitSensorDescription(
        key="temperature",
        translation_key="ams_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        fields=UNIT_FIELDS,
        value_fn=lambda unit: unit.temperature,
    ),
)


@dataclass(frozen=True, kw_only=True)
class TraySensorDescription(PrinterEntityDescription, SensorEntityDescription):
    """A tray's sensor."""

    value_fn: Callable[[AmsTray], Any]
    attributes_fn: Callable[[AmsTray, int | None], dict[str, Any] | None] = lambda tray, active: None


TRAY_SENSORS: Final = (
    TraySensorDescription(
        key="tray",
        translation_key="ams_tray",
        fields=AMS_FIELDS | {"active_tray"},
        value_fn=lambda tray: tray.material or EMPTY,
        attributes_fn=lambda tray, active: {
            "color": tray.color,
            "color_name": color_name(tray.color),
            "name": tray.name,
            "remaining": tray.remaining,
            "tray_uuid": tray.tray_uuid,
            "tag_uid": tray.tag_uid,
            "code": tray.code,
            "active": tray.code == active,
        },
    ),
    TraySensorDescription(
        key="remaining",
        translation_key="ams_tray_remaining",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        fields=AMS_FIELDS,
        value_fn=lambda tray: tray.remaining,
    ),
)


class PrinterSensor(PrinterEntity, SensorEntity):
    """A printer sensor: a row of a description table (the printer's own, or its parts')."""

    entity_description: PrinterSensorDescription

    def read(self) -> tuple[Any, ...]:
        """Availability, value and attributes."""
        description = self.entity_description
        return (
            description.available_fn(self.printer),
            description.value_fn(self.printer),
            description.attributes_fn(self.printer),
        )

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Show them."""
        self._attr_available, self._attr_native_value, self._attr_extra_state_attributes = shown


class AmsUnitSensor(AmsUnitEntity, SensorEntity):
    """A sensor of one AMS unit (humidity, its level, temperature)."""

    entity_description: UnitSensorDescription

    def __init__(
        self, printer: PrinterCoordinator, description: UnitSensorDescription, unit: AmsUnit
    ) -> None:
        """Follow one unit; a fixed scale is shown as attributes."""
        super().__init__(printer, description, unit)
        if description.attributes is not None:
            self._attr_extra_state_attributes = description.attributes

    def read(self) -> tuple[Any, ...]:
        """Availability and value."""
        unit = self.ams_unit
        return (
            self.printer.client.online and unit is not None,
            unit and self.entity_description.value_fn(unit),
        )

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Show them."""
        self._attr_available, self._attr_native_value = shown


class TraySensor(TrayEntity, SensorEntity):
    """A sensor of one tray: what it holds, or how much is left."""

    entity_description: TraySensorDescription

    def __init__(
        self, printer: PrinterCoordinator, description: TraySensorDescription, unit: int, slot: int
    ) -> None:
        """Name the tray: "Tray 2" in an AMS, "Tray" in an AMS HT, "External spool (2)" on a holder."""
        # A unit's tray follows the units, a holder's the holders (and both the active tray if shown).
        fields = description.fields - {"external_trays" if unit < 254 else "ams_units"}
        if unit >= 254:
            description = replace(
                description, translation_key=f"external_{description.translation_key}", fields=fields
            )
        else:
            description = replace(description, fields=fields)
        self._read_from: tuple[AmsTray | None, int | None, bool] | None = None
        super().__init__(printer, description, unit, slot)
        self._attr_translation_placeholders = {
            "tray": "" if unit >= 128 else f" {slot + 1}",
            "holder": " 2" if unit == 255 else "",
        }

    def read(self) -> tuple[Any, ...]:
        """Availability, value and attributes."""
        tray = self.tray
        if tray is None:
            return (False, None, None)
        active = self.printer.client.fields["active_tray"]
        online = self.printer.client.online
        # Another unit changed: this tray reads the same (a report holds 16 trays or more).
        read_from = (tray, active, online)
        if read_from == self._read_from and self._shown is not None:
            return self._shown
        self._read_from = read_from
        description = self.entity_description
        return (online, description.value_fn(tray), description.attributes_fn(tray, active))

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Show them."""
        self._attr_available, self._attr_native_value, self._attr_extra_state_attributes = shown


def async_setup_part_sensors(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the AMS unit and tray sensors as they appear."""

    def tray_entities(printer: PrinterCoordinator, unit: int, slot: int) -> list[Entity]:
        return [TraySensor(printer, description, unit, slot) for description in TRAY_SENSORS]

    def unit_entities(printer: PrinterCoordinator, unit: AmsUnit) -> list[Entity]:
        return [AmsUnitSensor(printer, description, unit) for description in UNIT_SENSORS]

    async_setup_tray_platform(hass, entry, async_add_entities, tray_entities, unit_entities)
