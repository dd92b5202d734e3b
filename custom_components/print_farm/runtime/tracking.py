"""Jobs that follow their printer's reports: progress, stages, the end, another print, prints started elsewhere.

A mixin of `JobManager` (runtime/jobs.py), which holds the queue and its operations; this part
reads the printers. A job is bound to one print (its file and start time); a print that no job
tracks gets a job of its own (Printernizer's automatic job creation), unless a job, or a deleted
job's mark, already stands for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from homeassistant.components import persistent_notification
from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from ..protocols.bambu import FIELD_ONLINE, PRINTING_STATES
from ..rules.jobs import (
    AWAITING_REMOVAL,
    ENDED_UNSEEN,
    FAILED,
    PRINTING,
    QUEUED,
    RUNNING_STAGES,
    STAGE_PAUSED,
    STAGE_PRINTING,
    START_SENT,
    PrintJob,
    SeenPrint,
    iso,
    normalise_filename,
    printed_file,
    stands_for,
    start_to_bind,
    unseen_end,
)
from ..rules.settings import AUTO_CREATE, DEDUP_MINUTES, NOTIFY_AUTO_CREATED
from .printer import PrinterCoordinator
from .storage import JobStore

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

# gcode_state values that end a print.
ENDINGS: Final = frozenset({"FINISH", "FAILED"})
# What an announcer is told of: a job's status changed, a job was created for a print started
# elsewhere (its status is PRINTING), or a job's stage changed.
STATUS_CHANGED: Final = "status"
AUTO_CREATED: Final = "auto_created"
STAGE_CHANGED: Final = "stage"
_JOB_FIELDS: Final = frozenset(
    {"gcode_state", "progress", "remaining_time", "start_time", "gcode_file", "subtask_name", FIELD_ONLINE}
)


class PrintTracking:
    """The part of the job manager that follows the printers (mixed into JobManager)."""

    hass: HomeAssistant
    entry: PrintFarmConfigEntry
    store: JobStore
    _last_state: dict[int, str | None]
    _starting: set[int]
    _starting_jobs: set[int]
    _creating: set[int]
    _fresh: set[int]
    unseen_ends: dict[int, int]
    _cancelling: set[int]

    if TYPE_CHECKING:  # the job manager's own

        def filename_of(self, job: PrintJob) -> str | None:
            """The file a job prints."""

        def _changed(self, *, progress_only: bool = False) -> None: ...
        def _announce(self, job: PrintJob, context: Context | None, what: str = STATUS_CHANGED) -> None: ...
        def _mark_started(
            self, job: PrintJob, printer: PrinterCoordinator, estimated_s: int | None
        ) -> None: ...
        async def _finish(self, job: PrintJob, status: str, context: Context | None = None) -> PrintJob: ...
        async def _print_finished(self, job: PrintJob) -> None: ...

    @callback
    def _maybe_auto_create(self, printer: PrinterCoordinator, *, discovered_on_startup: bool) -> None:
        settings = self.entry.runtime_data.settings
        if (
            not settings[AUTO_CREATE]
            or printer.printer_id in self._starting
            or printer.printer_id in self._creating
        ):
            return
        self._creating.add(printer.printer_id)
        self.hass.async_create_task(self._auto_create(printer, discovered_on_startup), eager_start=True)

    @callback
    def async_adopt_plate(self, printer: PrinterCoordinator) -> bool:
        """Give the plate of a print that ended while nobody watched a job of its own; whether it did.

        Only the print the printer reports now, finished, seen to have ended unseen (it started
        after the bed was last cleared), while no start is under way or unconfirmed on the printer.
        The job is created finished (`awaiting_removal`), so that the printer's OttoEject takes the
        plate off like any other; the same setting as for prints started outside the farm applies.
        Once per print: a job deleted afterwards does not come back.
        """
        printer_id = printer.printer_id
        fields = printer.client.fields
        if (
            not self.entry.runtime_data.settings[AUTO_CREATE]
            or fields["gcode_state"] != "FINISH"
            or fields["start_time"] is None
            or self.unseen_ends.get(printer_id) != fields["start_time"]
            or self.store.bed_clear.get(printer_id) is not False
            or printer_id in self._starting
            or printer_id in self._creating
            or any(
                job.printer_id == printer_id and job.status == QUEUED and job.stage == START_SENT
                for job in self.store.jobs.values()
            )
        ):
            return False
        del self.unseen_ends[printer_id]
        self._creating.add(printer_id)
        self.hass.async_create_task(self._auto_create(printer, False, ended=True), eager_start=True)
        return True

    def _already_tracked(self, printer_id: int, seen: SeenPrint, window_s: int) -> bool:
        """Whether a job, or a deleted job's mark, already stands for the print a printer reports."""
        mark = self.store.dismissed.get(printer_id)
        if mark is not None and seen.is_dismissed_by(mark):
            return True
        now = dt_util.utcnow().timestamp()
        return any(
            stands_for(job, self.filename_of(job), seen, now, window_s)
            for job in self.store.jobs.values()
            if job.printer_id == printer_id
        )

    async def _auto_create(
        self, printer: PrinterCoordinator, discovered_on_startup: bool, *, ended: bool = False
    ) -> None:
        """Create the job; a failure is logged and retried on the next report, monitoring goes on."""
        try:
            if self.store.active_job(printer.printer_id) is not None:
                return
            job_name, filename = printed_file(
                printer.client.fields["gcode_file"], printer.client.fields["subtask_name"]
            )
            start = printer.client.fields["start_time"]
            window = int(self.entry.runtime_data.settings[DEDUP_MINUTES]) * 60
            if self._already_tracked(printer.printer_id, _seen_print(printer), window):
                return
            now = dt_util.utcnow()
            started = dt_util.utc_from_timestamp(start) if start else now
            job = await self.store.async_add_job(
                print_item_id=None,
                printer_id=printer.printer_id,
                ottoeject_id=None,
                auto_start=False,
                priority=1,
            )
            job.status = PRINTING
            if ended:
                job.stage = AWAITING_REMOVAL
            else:
                job.stage = (
                    STAGE_PAUSED if printer.client.fields["gcode_state"] == "PAUSE" else STAGE_PRINTING
                )
            job.started_at = iso(started)
            job.seen_active = True
            job.job_name = job_name
            job.filename = filename
            job.remote_filename = filename
            job.printer_start_time = start
            job.progress_percent = 100 if ended else printer.client.fields["progress"] or 0
            job.estimated_remaining_time = 0 if ended else printer.client.fields["remaining_time"]
            job.customer_info = {
                "auto_created": True,
                "discovery_time": iso(now),
                "printer_start_time": iso(dt_util.utc_from_timestamp(start)) if start else None,
                "discovered_on_startup": discovered_on_startup,
                **({"ended_unseen": True} if ended else {}),
            }
            await self.store.async_save()
        except Exception:
            LOGGER.exception(
                "Could not create a job for the print on %s; trying again on its next report", printer.name
            )
            return
        finally:
            self._creating.discard(printer.printer_id)
        LOGGER.info("Job %s auto-created for %s on %s", job.id, filename, printer.name)
        # The farm's setting may give each automatic job a production run of its own.
        await self.entry.runtime_data.consumption.async_open_run(job, printer.name)
        self._announce(job, None, AUTO_CREATED)
        self._announce(job, None, STAGE_CHANGED)
        if self.entry.runtime_data.settings[NOTIFY_AUTO_CREATED]:
            persistent_notification.async_create(
                self.hass,
                f"Job auto-created: {job_name or 'a print'} on {printer.name}",
                title="Print Farm",
                notification_id=f"{DOMAIN}_auto_job_{job.id}",
            )

    def follow(self, printer: PrinterCoordinator) -> CALLBACK_TYPE:
        """Let the printer's reports drive its job: progress, remaining time, the end."""
        self._last_state[printer.printer_id] = printer.client.fields["gcode_state"]
        self._fresh.add(printer.printer_id)
        return printer.async_add_listener(lambda: self._printer_changed(printer), _JOB_FIELDS)

    @callback
    def _printer_changed(self, printer: PrinterCoordinator) -> None:
        if not printer.client.online:
            self._fresh.add(printer.printer_id)  # back online: what it prints then was not seen start
            return
        fields = printer.client.fields
        state = fields["gcode_state"]
        if state is None:
            return
        fresh = printer.printer_id in self._fresh
        self._fresh.discard(printer.printer_id)
        previous = self._last_state.get(printer.printer_id)
        self._last_state[printer.printer_id] = state
        job = self.store.active_job(printer.printer_id)
        seen = _seen_print(printer)
        if (
            state in ENDINGS
            and self.store.bed_clear.get(printer.printer_id) is not False
            and (
                previous in PRINTING_STATES
                or (
                    seen.start is not None
                    and printer.printer_id in self.store.bed_cleared_after
                    and seen.start != self.store.bed_cleared_after[printer.printer_id]
                )
            )
        ):
            # Any print that ends leaves a plate behind, ours or not, also one that ended while
            # nobody watched (it started after the plate was last taken off).
            self.store.bed_clear[printer.printer_id] = False
            if previous not in PRINTING_STATES and seen.start is not None:
                self.unseen_ends[printer.printer_id] = seen.start
            self.store.schedule_save()
            self._changed()
        mark = self.store.dismissed.get(printer.printer_id)
        if mark is not None:
            was_seen = mark.seen_running
            if mark.outlived(state in PRINTING_STATES, seen):
                # The deleted job's print is over: a later print of the same file is a print of its own.
                del self.store.dismissed[printer.printer_id]
                self.store.schedule_save()
            elif mark.seen_running != was_seen:
                self.store.schedule_save()
        if job is not None and job.id not in self._cancelling and self._replaced(job, state, seen):
            LOGGER.info("Job %s ends unseen: %s prints something else", job.id, printer.name)
            status = unseen_end(job)
            job.failure = ENDED_UNSEEN if status == FAILED else None
            self.hass.async_create_task(self._finish(job, status), eager_start=True)
            job = None
        if job is None:
            if state in PRINTING_STATES and not self._adopt_unconfirmed(printer, seen):
                self._maybe_auto_create(printer, discovered_on_startup=fresh)
            return
        if job.id in self._cancelling:
            return
        if state in PRINTING_STATES:
            changed = False
            filename = self.filename_of(job)
            start = start_to_bind(job, filename, seen)
            learnt_name = not normalise_filename(filename) and seen.name
            if not job.seen_active or start is not None or learnt_name:
                # Seeing the print run binds the job to it (its start time, its file when the job
                # had none) and lets its end end the job: saved now, not batched.
                job.seen_active = True
                job.printer_start_time = job.printer_start_time or start
                if learnt_name:
                    job.filename = job.remote_filename = _reported_file(printer)
                self.hass.async_create_task(self.store.async_save(), eager_start=True)
                changed = True
            progress = fields["progress"] or 0
            remaining = fields["remaining_time"]
            if (progress, remaining) != (job.progress_percent, job.estimated_remaining_time):
                job.progress_percent, job.estimated_remaining_time = progress, remaining
                changed = True
            stage = STAGE_PAUSED if state == "PAUSE" else STAGE_PRINTING
            if job.stage in RUNNING_STAGES and job.stage != stage:
                job.stage = stage
                self.hass.async_create_task(self.store.async_save(), eager_start=True)
                self._announce(job, None, STAGE_CHANGED)
            if changed:
                self.store.schedule_save()
                self._changed(progress_only=True)
        elif state in ENDINGS and job.seen_active and job.stage in RUNNING_STAGES:
            LOGGER.debug("Job %s: the print ends %s on %s", job.id, state, printer.name)
            if state == "FAILED":
                job.failure = f"{fields['print_error'] or 0:08X}"
                # The FAILED report's own progress (the print may have got further than the last
                # report said); a report without one, or one reset to 0, keeps the last seen.
                job.progress_percent = max(job.progress_percent, fields["progress"] or 0)
                self.store.bed_clear[job.on_printer] = False  # what it printed is still on the bed
                self.hass.async_create_task(self._finish(job, FAILED), eager_start=True)
            else:
                self.hass.async_create_task(self._print_finished(job), eager_start=True)

    @callback
    def _adopt_unconfirmed(self, printer: PrinterCoordinator, seen: SeenPrint) -> bool:
        """A job whose start command went unanswered, now seen printing its file: it printed after all."""
        for job in self.store.jobs.values():
            if (
                job.printer_id == printer.printer_id
                and job.status == QUEUED
                and job.stage == START_SENT
                and job.id not in self._starting_jobs
                and seen.name == normalise_filename(job.remote_filename)
                and (seen.start is None or seen.start != job.start_time_before)
            ):
                item = self.store.items.get(job.print_item_id) if job.print_item_id is not None else None
                self._mark_started(job, printer, item.estimated_time_s if item else None)
                job.seen_active = True
                job.printer_start_time = seen.start
                LOGGER.info("Job %s: its unanswered start did start it on %s", job.id, printer.name)
                self.hass.async_create_task(self.store.async_save(), eager_start=True)
                self._announce(job, None)
                self._announce(job, None, STAGE_CHANGED)
                return True
        return False

    def _replaced(self, job: PrintJob, state: str, seen: SeenPrint) -> bool:
        """Whether the printer reports another print than the job's (printed while nobody watched).

        A print running now that is not the job's replaced it. An ended one replaced it only if the
        job was seen running: before that, the end reported is the previous print's. An idle printer
        whose job was seen running lost it (power cut, cancelled on its screen).
        """
        if state == "IDLE" and job.seen_active and job.stage in RUNNING_STAGES:
            return True  # it was running and the printer has nothing now: it ended unseen
        if state not in PRINTING_STATES and not (state in ENDINGS and job.seen_active):
            return False
        return seen.is_other_than(SeenPrint.of_job(job, self.filename_of(job)))


def _reported_file(printer: PrinterCoordinator) -> str | None:
    """The file a printer reports printing, or None when it names none."""
    return printed_file(printer.client.fields["gcode_file"], printer.client.fields["subtask_name"])[1]


def _seen_print(printer: PrinterCoordinator) -> SeenPrint:
    """The print a printer reports: its file ("" when it names none) and start time."""
    return SeenPrint(normalise_filename(_reported_file(printer)), printer.client.fields["start_time"])
