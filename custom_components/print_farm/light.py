"""The chamber light of every printer that reports one, switched with Bambu's `ledctrl`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.light import LightEntity, LightEntityDescription
from homeassistant.components.light.const import ColorMode
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import PrinterEntity, PrinterEntityDescription, async_setup_printer_platform
from .runtime.farm import PrintFarmConfigEntry

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class PrinterLightDescription(PrinterEntityDescription, LightEntityDescription):
    """A printer's light."""


CHAMBER_LIGHT = PrinterLightDescription(
    key="chamber_light",
    translation_key="chamber_light",
    fields=frozenset({"chamber_light"}),
    # Only a printer whose lights_report names a chamber light has one.
    available_fn=lambda printer: printer.client.online and printer.client.fields["chamber_light"] is not None,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the chamber light of every printer."""
    async_setup_printer_platform(
        hass, entry, async_add_entities, lambda printer: [ChamberLight(printer, CHAMBER_LIGHT)]
    )


class ChamberLight(PrinterEntity, LightEntity):
    """The chamber light: on or off, as the printer reports it once it acknowledged the command."""

    _attr_color_mode = ColorMode.ONOFF
    _attr_supported_color_modes = {ColorMode.ONOFF}
    entity_description: PrinterLightDescription

    def read(self) -> tuple[Any, ...]:
        """Availability and whether it is on."""
        return (
            self.entity_description.available_fn(self.printer),
            self.printer.client.fields["chamber_light"],
        )

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Show them."""
        self._attr_available, self._attr_is_on = shown

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Switch it on; raises a translated error when the printer refuses or does not answer."""
        await self.printer.async_set_light(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Switch it off."""
        await self.printer.async_set_light(False)
