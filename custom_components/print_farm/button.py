"""Buttons of a printer: pause, resume, stop, each available only when it makes sense."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PrintFarmConfigEntry
from .coordinator import PrinterCoordinator
from .entity import PrinterEntity, PrinterEntityDescription, async_setup_printer_platform

PARALLEL_UPDATES = 1


def _in_states(*states: str) -> Callable[[PrinterCoordinator], bool]:
    return lambda printer: printer.client.online and printer.client.fields["gcode_state"] in states


@dataclass(frozen=True, kw_only=True)
class PrinterButtonDescription(PrinterEntityDescription, ButtonEntityDescription):
    """A printer button: a row of the table below."""

    press_fn: Callable[[PrinterCoordinator], Awaitable[None]]


BUTTONS: tuple[PrinterButtonDescription, ...] = (
    PrinterButtonDescription(
        key="pause",
        translation_key="pause",
        fields=frozenset({"gcode_state"}),
        available_fn=_in_states("RUNNING", "PREPARE"),
        press_fn=lambda printer: printer.async_pause(),
    ),
    PrinterButtonDescription(
        key="resume",
        translation_key="resume",
        fields=frozenset({"gcode_state"}),
        available_fn=_in_states("PAUSE"),
        press_fn=lambda printer: printer.async_resume(),
    ),
    PrinterButtonDescription(
        key="stop",
        translation_key="stop",
        fields=frozenset({"gcode_state"}),
        available_fn=_in_states("RUNNING", "PREPARE", "PAUSE"),
        press_fn=lambda printer: printer.async_stop_print(),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the buttons of every printer."""
    async_setup_printer_platform(
        hass,
        entry,
        async_add_entities,
        lambda printer: [PrinterButton(printer, description) for description in BUTTONS],
    )


class PrinterButton(PrinterEntity, ButtonEntity):
    """A printer button."""

    entity_description: PrinterButtonDescription

    async def async_press(self) -> None:
        """Send the command; errors reach the user translated."""
        await self.entity_description.press_fn(self.printer)
