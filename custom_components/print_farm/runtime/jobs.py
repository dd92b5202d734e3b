"""The job queue in Home Assistant: items from uploads, and jobs that follow their printer.

One method per operation; the actions, the REST views and the buttons call these. Every transition
is told to the announcers (`async_add_announcer`): the api's bus events turn it into the seeds'
bodies, so that no body is built here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util

from ..const import LOGGER
from ..protocols.bambu import PRINTING_STATES
from ..rules.dispatch import reorder
from ..rules.fit import Fit
from ..rules.jobs import (
    AWAITING_REMOVAL,
    CANCELLED,
    COMPLETED,
    OPEN_STATUSES,
    PRINTING,
    QUEUED,
    RUNNING_STAGES,
    STAGE_PRINTING,
    START_SENT,
    STARTING,
    WAITING,
    Dismissed,
    JobError,
    PrintJob,
    SeenPrint,
    iso,
    minutes,
)
from ..rules.workflow import Reservation
from .endings import JobEndings
from .items import PrintItems
from .printer import PrinterCoordinator, PrinterUnavailableError
from .storage import JobStore
from .tracking import ENDINGS, STAGE_CHANGED, STATUS_CHANGED, PrintTracking

if TYPE_CHECKING:
    from .consumption import Consumption
    from .farm import PrintFarmConfigEntry

type JobAnnouncer = Callable[[PrintJob, Context | None, str], None]
type Reserver = Callable[[PrinterCoordinator, PrintJob], Reservation | None]


class BedNotClearError(JobError):
    """A start refused (409) while the printer's bed is not known to be clear: a plate may be on it."""


class JobManager(JobEndings, PrintTracking):
    """Items, jobs, the printers' bed state, and who is told of every job transition."""

    def __init__(self, hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
        """Create the manager; async_setup loads the store."""
        self.hass = hass
        self.entry = entry
        self.store = JobStore(hass)
        self.items = PrintItems(hass, self.store)
        self._listeners: list[CALLBACK_TYPE] = []
        self._queue_listeners: list[CALLBACK_TYPE] = []
        self._announcers: list[JobAnnouncer] = []
        self._last_state: dict[int, str | None] = {}
        # Printers a job is being started on, and on which an automatic job is being created.
        self._starting: set[int] = set()
        self._starting_jobs: set[int] = set()  # their file is being sent: not to be cancelled meanwhile
        self._creating: set[int] = set()
        # Printers whose next known state is the first since Home Assistant or their connection started.
        self._fresh: set[int] = set()
        # Prints seen to have ended while nobody watched, by printer: their start time (an OttoEject
        # may take such a plate off once it has a job).
        self.unseen_ends: dict[int, int] = {}
        # Jobs whose printer is being told to stop: their own FAILED report is not their end.
        self._cancelling: set[int] = set()
        # Takes the shelves a job's plate will need on a printer with an OttoEject, and says whether
        # and how a printer can print a job (runtime/placement.py).
        self.reserve: Reserver | None = None
        self.fit: Callable[[PrintJob, PrinterCoordinator], Fit | str] | None = None
        # What an ended print takes from the books (runtime/consumption.py), once set up.
        self.consumption: Consumption | None = None

    async def async_setup(self) -> None:
        """Load the items and jobs; a start cut short before its command was sent waits again."""
        await self.store.async_load()
        interrupted = [job for job in self.store.jobs.values() if job.stage == STARTING]
        for job in interrupted:
            job.stage = WAITING  # nothing was started: its shelves, and for any printer its printer, go back
            job.rack_id = job.store_shelf = job.grab_shelf = None
            if job.any_printer:
                job.printer_id = job.ottoeject_id = None
        if interrupted:
            await self.store.async_save()

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call listener() after any change to jobs or beds (queue and current-job entities)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def async_add_announcer(self, announcer: JobAnnouncer) -> CALLBACK_TYPE:
        """Call announcer(job, context, what) on every job transition, before the listeners."""
        self._announcers.append(announcer)
        return lambda: self._announcers.remove(announcer)

    @callback
    def async_add_queue_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call listener() after a change that may let a queued job start: not on progress alone."""
        self._queue_listeners.append(listener)
        return lambda: self._queue_listeners.remove(listener)

    @callback
    def _changed(self, *, progress_only: bool = False) -> None:
        for listener in tuple(self._listeners):
            listener()
        if not progress_only:
            for listener in tuple(self._queue_listeners):
                listener()

    @staticmethod
    def _refuse_while_ejecting(job: PrintJob, what: str) -> None:
        if job.workflow is not None and not job.workflow.get("done"):
            raise JobError(
                f"The plate of print job {job.id} is being handled by its OttoEject: {what} once the "
                "workflow ends, or abort the workflow first."
            )

    def _refuse_while_starting(self, job: PrintJob) -> None:
        if job.id in self._starting_jobs:
            # Its file is on its way and the start follows: cancel it once it prints.
            raise JobError(f"Print job {job.id} is being started; cancel it once it prints.")

    def is_starting(self, printer_id: int) -> bool:
        """Whether a job is being started on a printer (its file uploading)."""
        return printer_id in self._starting

    def job_exists(self, job_id: int) -> bool:
        """Whether a job with this id exists."""
        return job_id in self.store.jobs

    def filename_of(self, job: PrintJob) -> str | None:
        """The file a job prints: its item's, or the printer's for an auto-created job."""
        item = self.store.items.get(job.print_item_id) if job.print_item_id is not None else None
        return item.filename if item else job.filename or job.remote_filename

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

    def _ottoeject_for(self, printer_id: int | None, ottoeject_id: int | None) -> int | None:
        """A job's OttoEject: its printer's (400 for another one); none before a job for any printer starts."""
        if ottoeject_id is not None and self.entry.runtime_data.ejector_by_id(ottoeject_id) is None:
            raise JobError(f"Ottoeject {ottoeject_id} not found", 404)
        if printer_id is None:
            if ottoeject_id is not None:
                raise JobError(
                    "A job for any printer takes the OttoEject of the printer it starts on: "
                    "leave ottoeject_id null.",
                    400,
                )
            return None
        ejector = self.entry.runtime_data.ejection.placement.ejector_of(self._printer(printer_id))
        configured = ejector.ejector_id if ejector is not None else None
        if ottoeject_id is not None and ottoeject_id != configured:
            raise JobError(
                f"Ottoeject {ottoeject_id} does not serve printer {printer_id}"
                + (f" (Ottoeject {configured} does)." if configured is not None else " (none does)."),
                400,
            )
        return configured

    async def async_create_job(
        self,
        *,
        print_item_id: int,
        printer_id: int | None,
        ottoeject_id: int | None = None,
        auto_start: bool = False,
        priority: int = 1,
        plate: int = 1,
        production_run_id: str | None = None,
        context: Context | None = None,
    ) -> PrintJob:
        """Queue a job for an item on a printer, or on any printer that can print it (printer_id None).

        `plate` is the plate of a multi-plate project to print (from 1).
        """
        if print_item_id not in self.store.items:
            raise JobError(f"Print item {print_item_id} not found", 404)
        if not 1 <= plate <= self.store.items[print_item_id].plates:
            raise JobError(
                f"Print item {print_item_id} has {self.store.items[print_item_id].plates} plate(s), not {plate}.",
                400,
            )
        if printer_id is not None:
            self._printer(printer_id)
        ottoeject_id = self._ottoeject_for(printer_id, ottoeject_id)
        if self.consumption is not None:
            self.consumption.check_run(production_run_id)
        job = await self.store.async_add_job(
            print_item_id=print_item_id,
            printer_id=printer_id,
            ottoeject_id=ottoeject_id,
            auto_start=auto_start,
            priority=priority,
            any_printer=printer_id is None,
            plate=plate,
            production_run_id=production_run_id,
        )
        self._announce(job, context)
        return job

    async def async_update_job(self, job_id: int, changes: dict[str, Any]) -> PrintJob:
        """Change priority, auto_start, printer or OttoEject; only priority and auto_start once printing."""
        job = self._job(job_id)
        if job.status not in (QUEUED, PRINTING):
            raise JobError(f"Print job {job_id} is {job.status} and can no longer be changed.")
        if job.stage in (STARTING, START_SENT) and "printer_id" in changes:
            raise JobError(f"Print job {job_id} is being started: its printer cannot change.")
        if job.status == PRINTING and set(changes) - {
            "priority",
            "auto_start",
            "ottoeject_id",
            "job_name",
            "production_run_id",
        }:
            raise JobError(f"Print job {job_id} is printing: its printer cannot change.")
        if changes.get("printer_id") is not None:
            self._printer(changes["printer_id"])
        if self.consumption is not None and changes.get("production_run_id") is not None:
            self.consumption.check_run(changes["production_run_id"], job)
        if "printer_id" in changes or "ottoeject_id" in changes:
            printer_id = changes.get("printer_id", job.printer_id)
            changes["ottoeject_id"] = self._ottoeject_for(printer_id, changes.get("ottoeject_id"))
            if "printer_id" in changes:
                changes["any_printer"] = printer_id is None
        if "priority" in changes and changes["priority"] != job.priority:
            job.queue_position = None  # its place was among the jobs of its old priority
        for key, value in changes.items():
            setattr(job, key, value)
        await self.store.async_save()
        self._changed()
        return job

    async def async_move_job(self, job_id: int, position: int) -> PrintJob:
        """Put a queued job at a position (from 1) among the queued jobs of its priority."""
        job = self._job(job_id)
        if job.status != QUEUED:
            raise JobError(f"Print job {job_id} is {job.status}: only a queued job has a place in the queue.")
        group = [
            other
            for other in self.store.jobs.values()
            if other.status == QUEUED and other.priority == job.priority
        ]
        reorder(group, job, position)
        await self.store.async_save()
        self._changed()
        return job

    def bed_is_clear(self, printer: PrinterCoordinator) -> bool:
        """Whether a new print may start: known clear, or never seen finishing one."""
        known = self.store.bed_clear.get(printer.printer_id)
        if known is not None:
            return known
        return printer.client.fields["gcode_state"] not in ENDINGS

    async def async_set_bed_clear(
        self, printer_id: int, clear: bool = True, context: Context | None = None
    ) -> None:
        """Record that a printer's bed is clear (a person or the ejector took the plate) or not.

        A job whose print finished completes when its plate is off the printer.
        """
        printer = self._printer(printer_id)
        for other in self.store.jobs.values():  # a failed print's plate may be on its way too
            if other.printer_id == printer_id:
                self._refuse_while_ejecting(other, "mark the bed")
        self.store.bed_clear[printer_id] = clear
        if clear:
            # The print whose plate was taken off. Unknown (no print reported yet): then the next
            # print seen ended counts as a plate, the safe side (a person marks it clear again).
            self.store.bed_cleared_after[printer_id] = printer.client.fields["start_time"]
        job = self.store.active_job(printer_id)
        if clear and job is not None and job.stage == AWAITING_REMOVAL:
            await self._finish(job, COMPLETED, context)  # saves the flag with the job
            return
        await self.store.async_save()
        self._changed()

    def _printer_for(self, job: PrintJob, printer_id: int | None) -> PrinterCoordinator:
        """The printer a job starts on: its own, the one dispatch chose, or the first free one that fits."""
        chosen = job.printer_id if job.printer_id is not None else printer_id
        if chosen is not None:
            return self._printer(chosen)
        for printer in sorted(self.entry.runtime_data.printers.values(), key=lambda p: p.printer_id):
            try:
                self._check_ready(printer)
            except JobError:
                continue
            if self.fit is None or not isinstance(self.fit(job, printer), str):
                return printer
        raise JobError(f"No printer that can print job {job.id} is free now; it starts when one is.")

    async def async_start_job(
        self, job_id: int, context: Context | None = None, *, printer_id: int | None = None
    ) -> PrintJob:
        """Send the job's file to its printer over FTPS and start it.

        Refused (409) unless the job is queued, the printer is online, idle and its bed clear. The
        job is stored `starting` before anything is sent. A failed upload sent no start: the job
        waits again. A start command whose answer is lost may have started the print: the job stays
        `starting` and the printer's reports decide (it is adopted when it prints), never a resend.
        """
        job = self._job(job_id)
        if job.status != QUEUED:
            raise JobError(f"Print job {job_id} is {job.status}, not QUEUED.")
        if job.stage in (STARTING, START_SENT):
            raise JobError(
                f"Print job {job_id}'s start was sent; its printer's reports will show it printing"
                " (cancel it if it never does)."
            )
        if job.print_item_id is None or (item := self.store.items.get(job.print_item_id)) is None:
            raise JobError(
                f"Print job {job_id} has no file to print (it was created for a print started elsewhere)."
            )
        printer = self._printer_for(job, printer_id)
        self._check_ready(printer)
        # Checked and taken with no await in between: one start per printer at a time.
        if printer.printer_id in self._starting:
            raise JobError(f"A job is being started on printer {printer.printer_id}.")
        how = self.fit(job, printer) if self.fit is not None else Fit(None, False)
        if isinstance(how, str):
            raise JobError(f"Printer {printer.printer_id} cannot print job {job_id}: {how}.")
        reservation = self.reserve(printer, job) if self.reserve is not None else None
        self._starting.add(printer.printer_id)
        self._starting_jobs.add(job.id)
        job.stage = STARTING
        job.printer_id = printer.printer_id  # a job for any printer is bound to this one from here
        if reservation is not None:  # stored with the stage: no other start takes these shelves
            job.ottoeject_id = reservation.ejector_id
            job.rack_id, job.store_shelf, job.grab_shelf = (
                reservation.rack_id,
                reservation.store_shelf,
                reservation.grab_shelf,
            )
        job.remote_filename = item.filename
        job.ams_mapping = how.ams_mapping  # the trays its filaments print from: what its end deducts
        # What the printer shows now is the previous print: this job must never bind to it.
        job.start_time_before = printer.client.fields["start_time"]
        sent = False
        try:
            await self.store.async_save()
            await printer.async_upload(self.items.path(item), item.filename)
            self._check_ready(printer)  # the upload took time: is the printer still free?
            job.stage = START_SENT  # stored before it is sent: after a restart, the reports decide
            await self.store.async_save()
            sent = True
            await printer.async_start_print(
                item.filename,
                plate=job.plate,
                use_ams=how.use_ams,
                **({"ams_mapping": how.ams_mapping} if how.ams_mapping is not None else {}),
            )
        except BaseException as err:
            if not (sent and _answer_lost(err)):
                job.stage = WAITING  # nothing was started: the printer never had, or refused, it
                job.rack_id = job.store_shelf = job.grab_shelf = None
                if job.any_printer:
                    job.printer_id = job.ottoeject_id = None
            await self.store.async_save()
            # Not the queue's listeners: a failed start must not start the same job again at once.
            self._changed(progress_only=True)
            raise
        finally:
            # Until the job is PRINTING (below, no await in between) the printer's reports must
            # not create a job of their own for this print.
            self._starting.discard(printer.printer_id)
            self._starting_jobs.discard(job.id)
        self._mark_started(job, printer, item.estimated_time_s)
        await self.store.async_save()
        self._announce(job, context)
        self._announce(job, context, STAGE_CHANGED)
        return job

    def _check_ready(self, printer: PrinterCoordinator) -> None:
        """Refuse (409, 503 offline) a start on a printer that is not free, or whose bed holds a plate."""
        if not printer.client.online:
            raise JobError(f"Printer {printer.printer_id} is offline.", 503)
        if printer.requires_signing:
            raise JobError(
                f"Printer {printer.printer_id} only takes signed commands: turn on LAN-only mode with "
                "Developer Mode on it."
            )
        if unconfirmed := self._unconfirmed_start(printer.printer_id):
            raise JobError(
                f"Printer {printer.printer_id} was sent the start of job {unconfirmed} and has not"
                " confirmed it yet."
            )
        if (
            printer.client.fields["gcode_state"] in PRINTING_STATES
            or self.store.active_job(printer.printer_id) is not None
        ):
            raise JobError(f"Printer {printer.printer_id} is busy.")
        self._check_bed_clear(printer)

    def _check_bed_clear(self, printer: PrinterCoordinator) -> None:
        if not self.bed_is_clear(printer):
            raise BedNotClearError(
                f"The bed of printer {printer.printer_id} is not known to be clear: "
                "clear it and mark it clear (button, action or REST) first."
            )

    def _unconfirmed_start(self, printer_id: int) -> int | None:
        """The job whose start was sent to a printer and not confirmed yet, if any."""
        return next(
            (
                job.id
                for job in self.store.jobs.values()
                if job.printer_id == printer_id and job.status == QUEUED and job.stage == START_SENT
            ),
            None,
        )

    def _mark_started(self, job: PrintJob, printer: PrinterCoordinator, estimated_s: int | None) -> None:
        """The job is printing (its start acknowledged, or its print seen)."""
        job.status = PRINTING
        job.stage = STAGE_PRINTING
        job.started_at = iso(dt_util.utcnow())
        # The printer may have reported PREPARE already: that counts as seen.
        job.seen_active = printer.client.fields["gcode_state"] in PRINTING_STATES
        job.progress_percent = 0
        job.estimated_remaining_time = minutes(estimated_s)
        self.store.bed_clear[printer.printer_id] = False

    async def async_start_file(self, printer: PrinterCoordinator, filename: str, **options: Any) -> None:
        """Start a file already on a printer (the printers API and action), with the bed-clear rule."""
        if printer.printer_id in self._starting or self._unconfirmed_start(printer.printer_id):
            raise JobError(f"A job is being started on printer {printer.printer_id}.")
        self._check_bed_clear(printer)
        await printer.async_start_print(filename, **options)
        self.store.bed_clear[printer.printer_id] = False
        await self.store.async_save()
        self._changed()

    async def async_cancel_job(self, job_id: int, context: Context | None = None) -> PrintJob:
        """Cancel a queued job, or stop the printer and cancel a printing one.

        The printer's own FAILED report of the stop does not end the job first (one event,
        CANCELLED); a printer that cannot be reached does not keep the job alive.
        """
        job = self._job(job_id)
        self._refuse_while_starting(job)
        self._refuse_while_ejecting(job, "cancel it")
        if job.status not in (QUEUED, PRINTING) or job.id in self._cancelling:
            raise JobError(f"Print job {job_id} is {job.status} and cannot be cancelled.")
        printer = self.entry.runtime_data.printer_by_id(job.printer_id)
        if job.stage in RUNNING_STAGES and printer is not None:
            self._cancelling.add(job.id)
            try:
                await printer.async_stop_print()
            except PrinterUnavailableError:
                LOGGER.warning(
                    "%s cannot be reached to stop job %s; the job is cancelled all the same",
                    printer.name,
                    job.id,
                )
            finally:
                self._cancelling.discard(job.id)
        return await self._finish(job, CANCELLED, context)

    async def async_complete_job(self, job_id: int, context: Context | None = None) -> PrintJob:
        """Mark a printing job completed (after its print and ejection, says the seed).

        Completing a job whose print finished says its plate is off the printer: the bed is clear.
        A job that never started, failed, was cancelled or is already completed is refused (409).
        """
        job = self._job(job_id)
        if job.status != PRINTING:
            raise JobError(f"Print job {job_id} is {job.status}: only a printing job can be completed.")
        self._refuse_while_ejecting(job, "it completes by itself")
        if job.stage == AWAITING_REMOVAL:
            self.store.bed_clear[job.on_printer] = True
        return await self._finish(job, COMPLETED, context)

    @callback
    def announce_stage(self, job: PrintJob) -> None:
        """Tell of a job's new stage (already stored)."""
        self._announce(job, None, STAGE_CHANGED)

    @callback
    def notify(self) -> None:
        """Tell the listeners of a change that is not a transition (a workflow step)."""
        self._changed()

    @callback
    def _announce(self, job: PrintJob, context: Context | None, what: str = STATUS_CHANGED) -> None:
        for announcer in tuple(self._announcers):
            announcer(job, context, what)
        self._changed()

    async def async_delete_job(self, job_id: int, *, stop: bool, context: Context | None = None) -> None:
        """Remove a job, cancelling it first (its print stopped) with `stop`, as the seed's DELETE does.

        Without `stop` (Printernizer's record delete) the printer is left alone. The print a deleted
        job was running never comes back as an automatic job.
        """
        job = self._job(job_id)
        self._refuse_while_starting(job)
        self._refuse_while_ejecting(job, "delete it")
        if job.status == PRINTING:
            # Marked before the printer is told to stop: its next reports must already find it.
            self.store.dismissed[job.on_printer] = Dismissed(
                SeenPrint.of_job(job, self.filename_of(job)), seen_running=job.seen_active
            )
            await self.store.async_save()
        if stop and job.status in OPEN_STATUSES:
            await self.async_cancel_job(job_id, context)
        # A shelf holding its print still shows what it is (history lives elsewhere, the plate here).
        await self.entry.runtime_data.rack_store.async_keep(
            job.id, {"filename": self.filename_of(job), "completed_at": job.completed_at}
        )
        await self.store.async_delete_job(job_id)
        self._changed()


def _answer_lost(err: BaseException) -> bool:
    """Whether a start command failed without saying whether the printer took it.

    No answer in time, or Home Assistant stopping while it waited: the print may have started. An
    offline printer, a failed send or a refusal say it did not.
    """
    return isinstance(err, asyncio.CancelledError) or (
        isinstance(err, HomeAssistantError) and err.translation_key == "printer_timeout"
    )
