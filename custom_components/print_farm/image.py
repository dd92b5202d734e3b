"""The plate thumbnail of the job each printer prints (the sliced file's own preview)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.image import ImageEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .entity import PrinterEntityDescription, PrinterJobEntity, async_setup_printer_platform
from .runtime.camera import async_job_picture, job_picture_key
from .runtime.farm import PrintFarmConfigEntry
from .runtime.printer import PrinterCoordinator

PARALLEL_UPDATES = 0

JOB_PICTURE = PrinterEntityDescription(
    key="job_picture", translation_key="job_picture", available_fn=lambda printer: True
)


async def async_setup_entry(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """One job picture per printer."""
    async_setup_printer_platform(hass, entry, async_add_entities, lambda printer: [JobPicture(hass, printer)])


class JobPicture(PrinterJobEntity, ImageEntity):
    """The current job's plate thumbnail; none while the printer has no job."""

    _attr_content_type = "image/png"

    def __init__(self, hass: HomeAssistant, printer: PrinterCoordinator) -> None:
        """Bind the picture to its printer."""
        ImageEntity.__init__(self, hass)
        self._job: tuple[int, int, int, str] | None = None
        PrinterJobEntity.__init__(self, printer, JOB_PICTURE)

    def read(self) -> tuple[Any, ...]:
        """Availability and which job (and plate) the picture shows."""
        return (*super().read(), job_picture_key(self.printer))

    def apply(self, shown: tuple[Any, ...]) -> None:
        """A new job is a new picture, dated by the job's start (the same after a restart)."""
        super().apply(shown)
        if shown[1] != self._job:
            self._job = shown[1]
            self._attr_image_last_updated = dt_util.parse_datetime(shown[1][3]) if shown[1] else None

    async def async_image(self) -> bytes | None:
        """The thumbnail's bytes, read from the stored file; None without a job or a thumbnail.

        A job whose file has no picture a browser shows (or is gone) shows no image at all, rather
        than a time whose picture cannot be fetched.
        """
        if (picture := await async_job_picture(self.printer)) is None:
            if self._attr_image_last_updated is not None and self.hass is not None:
                self._attr_image_last_updated = None
                self.async_write_ha_state()
            return None
        data, self._attr_content_type = picture
        return data
