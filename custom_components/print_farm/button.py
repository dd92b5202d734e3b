"""Buttons of a printer: pause, resume, stop, each available only when it makes sense."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import (
    EjectorEntity,
    PrinterEntity,
    PrinterEntityDescription,
    async_setup_ejector_platform,
    async_setup_printer_platform,
)
from .runtime.farm import PrintFarmConfigEntry
from .runtime.ottoeject import MACRO_HOME, MACRO_PARK, EjectorCoordinator
from .runtime.printer import PrinterCoordinator

PARALLEL_UPDATES = 1


def _in_states(*states: str) -> Callable[[PrinterCoordinator], bool]:
    return lambda printer: printer.client.online and printer.client.fields["gcode_state"] in states


@dataclass(frozen=True, kw_only=True)
class PrinterButtonDescription(PrinterEntityDescription, ButtonEntityDescription):
    """A printer button: a row of the table below."""

    press_fn: Callable[[PrinterCoordinator], Awaitable[None]]


BUTTONS: tuple[PrinterButtonDescription, ...] = (
    PrinterButtonDescription(
        key="mark_bed_clear",
        translation_key="mark_bed_clear",
        available_fn=lambda printer: True,
        press_fn=lambda printer: printer.entry.runtime_data.jobs.async_set_bed_clear(printer.printer_id),
    ),
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
    """Add the buttons of every printer and every OttoEject."""
    async_setup_printer_platform(
        hass,
        entry,
        async_add_entities,
        lambda printer: [PrinterButton(printer, description) for description in BUTTONS],
    )
    async_setup_ejector_platform(
        hass,
        entry,
        async_add_entities,
        lambda ejector: [EjectorMacroButton(ejector, key, macro) for key, macro in EJECTOR_BUTTONS],
    )


class PrinterButton(PrinterEntity, ButtonEntity):
    """A printer button."""

    entity_description: PrinterButtonDescription

    async def async_press(self) -> None:
        """Send the command; errors reach the user translated."""
        await self.entity_description.press_fn(self.printer)


EJECTOR_BUTTONS = (("home", MACRO_HOME), ("park", MACRO_PARK))


class EjectorMacroButton(EjectorEntity, ButtonEntity):
    """Runs one OttoEject macro; available while the robot is online and idle."""

    def __init__(self, ejector: EjectorCoordinator, key: str, macro: str) -> None:
        """Bind the button to its macro."""
        super().__init__(ejector, key)
        self._attr_translation_key = key
        self.macro = macro

    @property
    def available(self) -> bool:
        """Only an idle, ready robot takes a macro."""
        return super().available and self.online

    async def async_press(self) -> None:
        """Run the macro once (a late acknowledgement is fine: the status shows its end)."""
        await self.coordinator.async_run_macro(self.macro)
