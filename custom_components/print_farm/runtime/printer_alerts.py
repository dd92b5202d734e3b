"""The `print_farm_printer_error` event: once each time an HMS entry or a print error appears."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr

from ..const import DOMAIN
from ..protocols.bambu.hms import PrinterError

if TYPE_CHECKING:
    from .printer import PrinterCoordinator

EVENT_PRINTER_ERROR: Final = f"{DOMAIN}_printer_error"


class ErrorAnnouncer:
    """Fires the event for each error a report shows that the one before did not.

    An error that stays fires nothing more; one that goes and comes back fires again. While the
    printer is unreachable (no errors known) nothing is forgotten, so a reconnect repeats nothing.
    The errors announced are stored (JobStore.announced_errors): after a restart or a reload a
    standing error fires nothing, one that cleared meanwhile is forgotten, a new one fires once.
    """

    def __init__(self, printer: PrinterCoordinator) -> None:
        """Follow one printer's `errors` field, starting from the errors it last announced."""
        self.printer = printer
        self._store = printer.entry.runtime_data.jobs.store
        self._present = self._store.announced_errors.get(printer.printer_id, frozenset())

    @callback
    def update(self) -> None:
        """Compare the printer's errors with the last ones; fire for the new ones."""
        errors: tuple[PrinterError, ...] | None = self.printer.client.fields["errors"]
        if errors is None:
            return
        present = frozenset((error.kind, error.code) for error in errors)
        new = [error for error in errors if (error.kind, error.code) not in self._present]
        if present != self._present:
            self._present = present
            self._store.announced_errors[self.printer.printer_id] = present
            self._store.schedule_save()
        if not new:
            return
        printer = self.printer
        device = dr.async_get(printer.hass).async_get_device(identifiers={(DOMAIN, printer.serial)})
        for error in new:
            printer.hass.bus.async_fire(
                EVENT_PRINTER_ERROR,
                {
                    "device_id": device.id if device else None,
                    "name": printer.name,
                    "serial": printer.serial,
                    "code": error.code,
                    "kind": error.kind,
                    "severity": error.severity,
                    "module": error.module,
                    "text": error.text,
                    "url": error.url(printer.model),
                },
            )
