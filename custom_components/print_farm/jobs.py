"""The job queue in Home Assistant: items from uploads, jobs that follow their printer, and their events.

One method per operation; the actions, the REST views and the buttons call these.
"""

from __future__ import annotations

from pathlib import Path
import shutil
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .coordinator import PrinterCoordinator
from .farm.files import format_size
from .farm.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PRINTING,
    QUEUED,
    JobError,
    JobStore,
    PrintItem,
    PrintJob,
    iso,
)
from .protocols.bambu import FIELD_ONLINE, PRINTING_STATES

if TYPE_CHECKING:
    from . import PrintFarmConfigEntry

EVENT_JOB_QUEUED: Final = f"{DOMAIN}_job_queued"
EVENT_JOB_STARTED: Final = f"{DOMAIN}_job_started"
EVENT_JOB_FINISHED: Final = f"{DOMAIN}_job_finished"
EVENT_JOB_FAILED: Final = f"{DOMAIN}_job_failed"
EVENT_JOB_CANCELLED: Final = f"{DOMAIN}_job_cancelled"
JOB_EVENTS: Final = {
    QUEUED: EVENT_JOB_QUEUED,
    PRINTING: EVENT_JOB_STARTED,
    COMPLETED: EVENT_JOB_FINISHED,
    FAILED: EVENT_JOB_FAILED,
    CANCELLED: EVENT_JOB_CANCELLED,
}
# gcode_state values that end a print, and what they make of the job.
_ENDINGS: Final = {"FINISH": COMPLETED, "FAILED": FAILED}
_JOB_FIELDS: Final = frozenset({"gcode_state", "progress", "remaining_time", FIELD_ONLINE})


def _minutes(seconds: int | None) -> int | None:
    return None if seconds is None else round(seconds / 60)


def _grams(grams: float | None) -> str | None:
    return None if grams is None else f"{grams:.1f}g"


def item_body(item: PrintItem) -> dict[str, Any]:
    """The seed's print item fields."""
    return {
        "id": item.id,
        "filename": item.filename,
        "file_size": format_size(item.size),
        "estimated_print_time": _minutes(item.estimated_time_s),
        "layer_count": item.layer_count,
        "filament_used": _grams(item.filament_g),
    }


class JobManager:
    """Items, jobs, the printers' bed state, and the events of every job transition."""

    def __init__(self, hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
        """Create the manager; async_setup loads the store."""
        self.hass = hass
        self.entry = entry
        self.store = JobStore(hass)
        self.files = Path(hass.config.path(DOMAIN, "files"))
        self._listeners: list[CALLBACK_TYPE] = []
        self._last_state: dict[int, str | None] = {}

    async def async_setup(self) -> None:
        """Load the items and jobs."""
        await self.store.async_load()

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call listener() after any change to jobs or beds (queue and current-job entities)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def _changed(self) -> None:
        for listener in tuple(self._listeners):
            listener()

    # --- bodies ------------------------------------------------------------------------------

    def job_body(self, job: PrintJob, *, full: bool = False) -> dict[str, Any]:
        """The seed's job fields (list form, or the full form with nested item, printer, ottoeject)."""
        body: dict[str, Any] = {
            "id": job.id,
            "print_item_id": job.print_item_id,
            "printer_id": job.printer_id,
            "ottoeject_id": job.ottoeject_id,
            "status": job.status,
            "priority": job.priority,
            "progress_percent": job.progress_percent,
            "estimated_remaining_time": job.estimated_remaining_time,
            "created_at": job.created_at,
            "started_at": job.started_at,
        }
        if not full:
            return body
        farm = self.entry.runtime_data
        item = self.store.items.get(job.print_item_id)
        printer = farm.printer_by_id(job.printer_id)
        ejector = farm.ejector_by_id(job.ottoeject_id) if job.ottoeject_id is not None else None
        return {
            "id": job.id,
            "print_item": item_body(item) if item else None,
            "printer": {
                "id": printer.printer_id,
                "name": printer.name,
                "brand": "Bambu Lab",
                "model": printer.model,
            }
            if printer
            else None,
            "ottoeject": {"id": ejector.ejector_id, "device_name": ejector.device_name} if ejector else None,
            "status": job.status,
            "priority": job.priority,
            "auto_start": job.auto_start,
            "progress_percent": job.progress_percent,
            "estimated_remaining_time": job.estimated_remaining_time,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "completed_at": job.completed_at,
        }

    def job_summary(self, job_id: int) -> dict[str, Any] | None:
        """What a rack shelf shows of the job whose print it holds."""
        job = self.store.jobs.get(job_id)
        if job is None:
            return None
        item = self.store.items.get(job.print_item_id)
        return {"id": job.id, "filename": item.filename if item else None, "completed_at": job.completed_at}

    def job_exists(self, job_id: int) -> bool:
        """Whether a job with this id exists."""
        return job_id in self.store.jobs

    # --- items -------------------------------------------------------------------------------

    async def async_add_item(self, source: Path, filename: str, *, move: bool) -> PrintItem:
        """Keep an uploaded (moved) or allowed local (copied) file as a print item, with its metadata.

        A file whose metadata cannot be read is still kept, with unknown fields; the item is
        recorded only once the file is in place, so a failure leaves neither.
        """
        item_id = self.store.next_item_id()
        target = self.files / f"{item_id}-{filename}"
        info = await self.hass.async_add_executor_job(self._place_and_read, source, target, move)
        item = PrintItem(
            id=item_id,
            filename=filename,
            stored_name=target.name,
            size=info.pop("size"),
            uploaded_at=iso(dt_util.utcnow()) or "",
            estimated_time_s=info.get("estimated_time_s"),
            layer_count=info.get("layer_count"),
            filament_g=info.get("filament_g"),
            filament_mm=info.get("filament_mm"),
            slicer=info.get("slicer"),
            plates=max(1, len(info.get("plates") or ())),
            info=info,
        )
        try:
            return await self.store.async_add_item(item)
        except Exception:
            await self.hass.async_add_executor_job(target.unlink, True)
            raise

    @staticmethod
    def _place_and_read(source: Path, target: Path, move: bool) -> dict[str, Any]:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            if move:
                shutil.move(source, partial)
            else:
                shutil.copyfile(source, partial)
            info = read_metadata(partial)
            partial.rename(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        info["size"] = target.stat().st_size
        return info

    def item_path(self, item: PrintItem) -> Path:
        """Where an item's file is kept."""
        return self.files / item.stored_name

    async def async_remove_item(self, item_id: int) -> None:
        """Delete an item and its file; refused (409) while a job uses it."""
        if item_id not in self.store.items:
            raise JobError(f"Print item {item_id} not found", 404)
        item = await self.store.async_remove_item(item_id)
        await self.hass.async_add_executor_job(lambda: self.item_path(item).unlink(missing_ok=True))

    # --- jobs --------------------------------------------------------------------------------

    def _job(self, job_id: int) -> PrintJob:
        job = self.store.jobs.get(job_id)
        if job is None:
            raise JobError(f"Print job {job_id} not found", 404)
        return job

    def _printer(self, printer_id: int) -> PrinterCoordinator:
        printer = self.entry.runtime_data.printer_by_id(printer_id)
        if printer is None:
            raise JobError(f"Printer {printer_id} not found", 404)
        return printer

    async def async_create_job(
        self,
        *,
        print_item_id: int,
        printer_id: int,
        ottoeject_id: int | None = None,
        auto_start: bool = False,
        priority: int = 1,
        context: Context | None = None,
    ) -> PrintJob:
        """Queue a job for an item on a printer."""
        if print_item_id not in self.store.items:
            raise JobError(f"Print item {print_item_id} not found", 404)
        self._printer(printer_id)
        if ottoeject_id is not None and self.entry.runtime_data.ejector_by_id(ottoeject_id) is None:
            raise JobError(f"Ottoeject {ottoeject_id} not found", 404)
        job = await self.store.async_add_job(
            print_item_id=print_item_id,
            printer_id=printer_id,
            ottoeject_id=ottoeject_id,
            auto_start=auto_start,
            priority=priority,
        )
        self._announce(job, context)
        return job

    async def async_update_job(self, job_id: int, changes: dict[str, Any]) -> PrintJob:
        """Change priority, auto_start, printer or OttoEject; only priority and auto_start once printing."""
        job = self._job(job_id)
        if job.status not in (QUEUED, PRINTING):
            raise JobError(f"Print job {job_id} is {job.status} and can no longer be changed.")
        if job.status == PRINTING and set(changes) - {"priority", "auto_start", "ottoeject_id"}:
            raise JobError(f"Print job {job_id} is printing: its printer cannot change.")
        if "printer_id" in changes:
            self._printer(changes["printer_id"])
        if (
            changes.get("ottoeject_id") is not None
            and self.entry.runtime_data.ejector_by_id(changes["ottoeject_id"]) is None
        ):
            raise JobError(f"Ottoeject {changes['ottoeject_id']} not found", 404)
        for key, value in changes.items():
            setattr(job, key, value)
        await self.store.async_save()
        self._changed()
        return job

    def bed_is_clear(self, printer: PrinterCoordinator) -> bool:
        """Whether a new print may start: known clear, or never seen finishing one."""
        known = self.store.bed_clear.get(printer.printer_id)
        if known is not None:
            return known
        return printer.client.fields["gcode_state"] not in _ENDINGS

    async def async_set_bed_clear(self, printer_id: int, clear: bool = True) -> None:
        """Record that a printer's bed is clear (a person or the ejector took the plate) or not."""
        self._printer(printer_id)
        self.store.bed_clear[printer_id] = clear
        await self.store.async_save()
        self._changed()

    async def async_start_job(self, job_id: int, context: Context | None = None) -> PrintJob:
        """Send the job's file to its printer over FTPS and start it.

        Refused (409) unless the job is queued, the printer is online, idle and its bed clear.
        """
        job = self._job(job_id)
        if job.status != QUEUED:
            raise JobError(f"Print job {job_id} is {job.status}, not QUEUED.")
        printer = self._printer(job.printer_id)
        if not printer.client.online:
            raise JobError(f"Printer {printer.printer_id} is offline.", 503)
        if printer.client.fields["gcode_state"] in PRINTING_STATES or self.store.active_job(
            printer.printer_id
        ):
            raise JobError(f"Printer {printer.printer_id} is busy.")
        if not self.bed_is_clear(printer):
            raise JobError(
                f"The bed of printer {printer.printer_id} is not known to be clear: "
                "clear it and mark it clear (button, action or REST) first."
            )
        item = self.store.items[job.print_item_id]
        await printer.async_upload(self.item_path(item), item.filename)
        await printer.async_start_print(item.filename, plate=job.plate)
        job.status = PRINTING
        job.started_at = iso(dt_util.utcnow())
        job.remote_filename = item.filename
        # The printer may have reported PREPARE before this line: that counts as seen.
        job.seen_active = printer.client.fields["gcode_state"] in PRINTING_STATES
        job.progress_percent = 0
        job.estimated_remaining_time = _minutes(item.estimated_time_s)
        self.store.bed_clear[printer.printer_id] = False
        await self.store.async_save()
        self._announce(job, context)
        return job

    async def async_cancel_job(self, job_id: int, context: Context | None = None) -> PrintJob:
        """Cancel a queued job, or stop the printer and cancel a printing one."""
        job = self._job(job_id)
        if job.status not in (QUEUED, PRINTING):
            raise JobError(f"Print job {job_id} is {job.status} and cannot be cancelled.")
        if job.status == PRINTING and (printer := self.entry.runtime_data.printer_by_id(job.printer_id)):
            await printer.async_stop_print()
        return await self._finish(job, CANCELLED, context)

    async def async_complete_job(self, job_id: int, context: Context | None = None) -> PrintJob:
        """Mark a job completed (after its print and ejection, says the seed)."""
        job = self._job(job_id)
        if job.status in (COMPLETED, CANCELLED):
            raise JobError(f"Print job {job_id} is already {job.status}.")
        return await self._finish(job, COMPLETED, context)

    async def _finish(self, job: PrintJob, status: str, context: Context | None = None) -> PrintJob:
        job.status = status
        job.completed_at = iso(dt_util.utcnow())
        if status == COMPLETED:
            job.progress_percent = 100
            job.estimated_remaining_time = 0
        await self.store.async_save()
        self._announce(job, context)
        return job

    @callback
    def _announce(self, job: PrintJob, context: Context | None) -> None:
        self.hass.bus.async_fire(
            JOB_EVENTS[job.status], {"job": self.job_body(job, full=True)}, context=context
        )
        self._changed()

    # --- following the printers --------------------------------------------------------------

    def follow(self, printer: PrinterCoordinator) -> CALLBACK_TYPE:
        """Let the printer's reports drive its job: progress, remaining time, the end."""
        self._last_state[printer.printer_id] = printer.client.fields["gcode_state"]
        return printer.async_add_listener(lambda: self._printer_changed(printer), _JOB_FIELDS)

    @callback
    def _printer_changed(self, printer: PrinterCoordinator) -> None:
        if not printer.client.online:
            return
        fields = printer.client.fields
        state = fields["gcode_state"]
        previous = self._last_state.get(printer.printer_id)
        self._last_state[printer.printer_id] = state
        job = self.store.active_job(printer.printer_id)
        if (
            state in _ENDINGS
            and previous in PRINTING_STATES
            and self.store.bed_clear.get(printer.printer_id) is not False
        ):
            # Any print that ends leaves a plate behind, ours or not.
            self.store.bed_clear[printer.printer_id] = False
            self.store.schedule_save()
            self._changed()
        if job is None:
            return
        if state in PRINTING_STATES:
            changed = not job.seen_active
            job.seen_active = True
            progress = fields["progress"] or 0
            remaining = fields["remaining_time"]
            if (progress, remaining) != (job.progress_percent, job.estimated_remaining_time):
                job.progress_percent, job.estimated_remaining_time = progress, remaining
                changed = True
            if changed:
                self.store.schedule_save()
                self._changed()
        elif state in _ENDINGS and job.seen_active:
            if state == "FAILED":
                job.failure = f"{fields['print_error'] or 0:08X}"
            LOGGER.debug("Job %s ends %s on %s", job.id, state, printer.name)
            self.hass.async_create_task(self._finish(job, _ENDINGS[state]), eager_start=True)


def read_metadata(path: Path) -> dict[str, Any]:
    """The slicer's metadata of a file, as a dict; unknown fields when it cannot be read (blocking)."""
    try:
        from .fileinfo import FileInfoError, read_file_info
    except ImportError:  # pragma: no cover - the package ships it
        return {}
    try:
        info: dict[str, Any] = read_file_info(path).to_json_dict()
    except FileInfoError as err:
        LOGGER.info("No metadata in %s: %s", path.name, err)
        return {}
    return info
