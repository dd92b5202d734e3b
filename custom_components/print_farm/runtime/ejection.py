"""The ejection workflow in Home Assistant: finished plates off the printers, onto the rack, fresh plates on.

One task per workflow (a job whose print finished on a printer with an OttoEject), woken by what it
waits for: the printer's bed temperature, the ejector's websocket pushes, a timer, a person's
retry / skip / abort. The steps and their order are `rules/workflow.py`'s. Each step is stored
before it is sent and after it is confirmed; after a restart a sent step is resolved by reading the
device (Moonraker's G-code store and Klipper's idle_timeout), never by sending it again. What cannot
be resolved pauses the workflow with a repair issue offering retry, skip and abort.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from ..const import CONF_EJECT_GCODE, CONF_POSITION, CONF_SETTLE, DOMAIN, LOGGER
from ..protocols.bambu import FIELD_CURRENT, FIELD_ONLINE, PRINTING_STATES
from ..rules.jobs import AWAITING_REMOVAL, COMPLETED, ENDED_UNSEEN, FAILED, PRINTING, PrintJob
from ..rules.racks import PLATE_WITH_PRINT
from ..rules.settings import EJECT, FAILED_PLATE, JOB_PROCESSING, MAX_COOLING_MINUTES, RELEASE_TEMPERATURES
from ..rules.workflow import (
    COOL,
    GRAB,
    LOAD,
    PAUSED,
    POSITION,
    READY,
    SENT,
    SETTLE,
    STORE,
    Workflow,
    positioning_gcode,
    release_temperature,
    settle_seconds,
)
from .decisions import WorkflowDecisions
from .jobs import JobManager
from .macros import RETRY, MacroSteps
from .ottoeject import EjectorCoordinator
from .placement import Placement
from .printer import PrinterCoordinator
from .tracking import STAGE_CHANGED, STATUS_CHANGED
from .workflow_issues import (
    async_failed_plate_cleared,
    async_failed_plate_held,
    async_forget_workflow_issues,
    async_held_printers,
    async_workflow_paused,
)

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

_PRINTER_FIELDS: Final = frozenset({"bed_temp", FIELD_CURRENT, FIELD_ONLINE, "gcode_state"})


class _Stale(Exception):
    """The workflow changed under the step (retried, skipped, aborted): the step gives up."""


class Ejection(WorkflowDecisions, MacroSteps):
    """Every plate's way from a finished print to the rack, and the shelves reserved for it."""

    def __init__(self, hass: HomeAssistant, entry: PrintFarmConfigEntry, jobs: JobManager) -> None:
        """Create it; `async_resume` starts the stored workflows once the devices are there."""
        self.hass = hass
        self.entry = entry
        self.jobs = jobs
        self.placement = Placement(entry, jobs.store)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._followed: dict[str, CALLBACK_TYPE] = {}
        self._held_printers: set[int] = set()  # printers holding a failed plate for a person
        self._no_shelf: set[int] = set()  # finished jobs whose plate waits for a free shelf
        self._unsub_jobs: CALLBACK_TYPE | None = None

    # --- following ---------------------------------------------------------------------------

    @callback
    def follow_printer(self, printer: PrinterCoordinator) -> CALLBACK_TYPE:
        """Wake the printer's workflows when its bed temperature or connection changes."""
        return printer.async_add_listener(
            lambda: self._wake_where(lambda job: job.printer_id == printer.printer_id), _PRINTER_FIELDS
        )

    @callback
    def follow_ejector(self, ejector: EjectorCoordinator) -> CALLBACK_TYPE:
        """Wake the ejector's workflows on each push from Moonraker and each status read."""

        @callback
        def wake() -> None:
            self._wake_where(lambda job: _workflow_of(job).ejector_id == ejector.ejector_id)

        unsub_push = ejector.async_add_push_listener(wake)
        unsub_poll = ejector.async_add_listener(wake)

        @callback
        def stop() -> None:
            unsub_push()
            unsub_poll()

        return stop

    @callback
    def _wake_where(self, wanted: Callable[[PrintJob], bool]) -> None:
        for job_id, event in self._wake.items():
            job = self.jobs.store.jobs.get(job_id)
            if job is not None and job.workflow is not None and wanted(job):
                event.set()

    async def _sleep(self, job: PrintJob, wf: Workflow, timeout: float | None = None) -> None:
        """Wait to be woken (or for timeout); raise _Stale when the workflow changed meanwhile."""
        event = self._wake.setdefault(job.id, asyncio.Event())
        event.clear()
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass
        self._check(job, wf)

    def _check(self, job: PrintJob, wf: Workflow) -> None:
        if self.jobs.store.jobs.get(job.id) is not job or job.workflow != wf.as_dict():
            raise _Stale

    # --- starting and resuming ------------------------------------------------------------------

    @callback
    def async_job_changed(self, job: PrintJob, _context: object, what: str) -> None:
        """A job's print ended: begin its plate's workflow when an OttoEject can take it (an announcer)."""
        if job.workflow is not None:
            return
        finished = what == STAGE_CHANGED and job.status == PRINTING and job.stage == AWAITING_REMOVAL
        # A print that failed on the printer (not one replaced while nobody watched) left its plate.
        failed = (
            what == STATUS_CHANGED
            and job.status == FAILED
            and job.seen_active
            and job.failure != ENDED_UNSEEN
        )
        if failed and self.entry.runtime_data.settings[FAILED_PLATE] != EJECT:
            self._hold_for_a_person(job)
        elif finished or failed:
            self.entry.async_create_background_task(
                self.hass, self._async_begin(job), f"{DOMAIN} workflow of job {job.id}"
            )

    @callback
    def _hold_for_a_person(self, job: PrintJob) -> None:
        """The setting says a failed print's plate waits for a person: tell them, until the bed is clear."""
        printer = self.entry.runtime_data.printer_by_id(job.printer_id)
        name = printer.name if printer else str(job.printer_id)
        async_failed_plate_held(self.hass, job.on_printer, name, job.id)
        self._held_printers.add(job.on_printer)

    @callback
    def _bed_cleared(self) -> None:
        """A job or bed changed: a held printer whose bed is clear again needs no one any more."""
        for printer_id, clear in self.jobs.store.bed_clear.items():
            if clear and printer_id in self._held_printers:
                self._held_printers.discard(printer_id)
                async_failed_plate_cleared(self.hass, printer_id)

    async def _async_begin(self, job: PrintJob) -> None:
        farm = self.entry.runtime_data
        printer = farm.printer_by_id(job.printer_id)
        if printer is None or job.workflow is not None:
            return
        ejector = self.placement.ejector_of(printer)
        if ejector is None:
            return  # a person takes the plate off
        position = str(printer.subentry.data[CONF_POSITION]).strip()
        reservation = self.placement.reservation_of(job, ejector)
        if reservation is None:
            if job.id not in self._no_shelf:  # said once; it begins when a shelf is freed
                self._no_shelf.add(job.id)
                LOGGER.warning(
                    "Job %s: %s has no free shelf and empty plate for its plate; it waits for one "
                    "(or for a person to take it off)",
                    job.id,
                    ejector.device_name,
                )
            return
        self._no_shelf.discard(job.id)
        job.ottoeject_id = ejector.ejector_id
        job.rack_id, job.store_shelf, job.grab_shelf = (
            reservation.rack_id,
            reservation.store_shelf,
            reservation.grab_shelf,
        )
        wf = Workflow(
            ejector_id=ejector.ejector_id,
            position=position,
            rack_id=reservation.rack_id,
            store_shelf=reservation.store_shelf,
            grab_shelf=reservation.grab_shelf,
            finished_at=time.time(),
        )
        await self._save(job, wf)
        self._spawn(job.id)

    @callback
    def async_clear_plates(self) -> None:
        """Begin the workflow of each plate an OttoEject could take off and nothing takes yet.

        Called with each dispatch (a freed shelf, a printer's change): a finished job whose plate
        found no shelf begins now if one is free, and so does a failed one when failed plates are
        ejected; the plate of a print seen to have ended while nobody watched is given a job first
        (while job processing is on), and is then taken like any other.
        """
        farm = self.entry.runtime_data
        taken = {
            job.on_printer
            for job in self.jobs.store.jobs.values()
            if job.workflow is not None and not job.workflow.get("done")
        }
        self._no_shelf &= set(self.jobs.store.jobs)  # jobs gone meanwhile
        for printer in farm.printers.values():
            printer_id = printer.printer_id
            if (
                printer_id in taken
                or printer_id in self._held_printers
                or self.jobs.store.bed_clear.get(printer_id) is not False
                or not printer.client.online
                or self.placement.ejector_of(printer) is None
            ):
                continue
            job = self.jobs.store.active_job(printer_id) or self._failed_plate_of(printer)
            if job is not None:
                if job.workflow is None and (job.stage == AWAITING_REMOVAL or job.status == FAILED):
                    self.entry.async_create_background_task(
                        self.hass, self._async_begin(job), f"{DOMAIN} workflow of job {job.id}"
                    )
            elif farm.settings[JOB_PROCESSING]:
                self.jobs.async_adopt_plate(printer)

    def _failed_plate_of(self, printer: PrinterCoordinator) -> PrintJob | None:
        """The failed job whose plate the printer still holds, when failed plates are ejected."""
        if self.entry.runtime_data.settings[FAILED_PLATE] != EJECT:
            return None
        start = printer.client.fields["start_time"]
        return next(
            (
                job
                for job in self.jobs.store.jobs.values()
                if job.printer_id == printer.printer_id
                and job.status == FAILED
                and job.seen_active
                and job.failure != ENDED_UNSEEN
                and job.workflow is None
                and start is not None
                and job.printer_start_time == start
            ),
            None,
        )

    @callback
    def async_resume(self) -> None:
        """Run every stored workflow that has no task yet (at setup, after the devices are there)."""
        farm = self.entry.runtime_data
        if self._unsub_jobs is None:
            self._unsub_jobs = self.jobs.async_add_listener(self._bed_cleared)
        for ejector in farm.ejectors.values():
            if ejector.subentry.subentry_id not in self._followed:
                self._followed[ejector.subentry.subentry_id] = self.follow_ejector(ejector)
        self._held_printers |= async_held_printers(self.hass)
        paused: set[int] = set()
        for job in self.jobs.store.jobs.values():
            if job.workflow is None or job.workflow.get("done"):
                continue
            wf = Workflow.from_dict(job.workflow)
            if wf.holds_ejector and (holder := farm.ejector_by_id(wf.ejector_id)) is not None:
                holder.held_by = job.id
            if wf.state == PAUSED:
                paused.add(job.id)
            self._spawn(job.id)
        async_forget_workflow_issues(self.hass, paused)
        self._bed_cleared()

    @callback
    def _spawn(self, job_id: int) -> None:
        if (task := self._tasks.get(job_id)) is not None and not task.done():
            self._wake.setdefault(job_id, asyncio.Event()).set()
            return
        self._tasks[job_id] = self.entry.async_create_background_task(
            self.hass, self._run(job_id), f"{DOMAIN} workflow of job {job_id}"
        )

    @callback
    def async_stop(self) -> None:
        """Stop following (the entry unloads; the tasks end with it, the workflows stay stored)."""
        for unsub in self._followed.values():
            unsub()
        self._followed.clear()
        if self._unsub_jobs is not None:
            self._unsub_jobs()
            self._unsub_jobs = None
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    # --- running --------------------------------------------------------------------------------

    async def _run(self, job_id: int) -> None:
        while True:
            job = self.jobs.store.jobs.get(job_id)
            if job is None or job.workflow is None or job.workflow.get("done"):
                return
            wf = Workflow.from_dict(job.workflow)
            try:
                if wf.state == PAUSED:
                    await self._sleep(job, wf)
                else:
                    await self._step(job, wf)
            except _Stale:
                continue
            except Exception as err:  # never a silent stop: a person decides, as for any fault
                LOGGER.exception("Job %s: the ejection workflow failed at %s", job_id, wf.step)
                await self._pause(
                    job,
                    wf,
                    f"it failed unexpectedly ({type(err).__name__}: {err}); see the log",
                    wf.state if wf.state in (SENT, RETRY) else READY,
                )

    async def _step(self, job: PrintJob, wf: Workflow) -> None:
        farm = self.entry.runtime_data
        printer = farm.printer_by_id(job.printer_id)
        ejector = farm.ejector_by_id(wf.ejector_id)
        if printer is None or ejector is None:
            await self._pause(job, wf, "its printer or its OttoEject is no longer part of the farm")
        elif wf.step == COOL:
            await self._cool(job, wf, printer)
        elif wf.step == POSITION:
            await self._position(job, wf, printer)
        elif wf.step == SETTLE:
            await self._settle(job, wf, ejector)
        else:
            await self._macro(job, wf, printer, ejector)

    def _release_temperature(self, job: PrintJob) -> float:
        item = self.jobs.store.items.get(job.print_item_id) if job.print_item_id is not None else None
        materials = (item.info.get("materials") if item else None) or [None]
        overrides = self.entry.runtime_data.settings[RELEASE_TEMPERATURES]
        return min(release_temperature(material, overrides) for material in materials)

    async def _cool(self, job: PrintJob, wf: Workflow, printer: PrinterCoordinator) -> None:
        """Wait for a cool bed: at most the longest wait from the workflow's start, however long offline."""
        while True:  # the settings are read anew each time: a change applies to a plate cooling now
            limit = self._release_temperature(job)
            deadline = wf.finished_at + 60 * float(self.entry.runtime_data.settings[MAX_COOLING_MINUTES])
            # An offline printer's last reading is stale, and nothing can be sent to it: wait for it
            # (back online, for its first status report: until then its readings are the old ones).
            online = printer.client.online and printer.client.current
            if online and (other := _prints_another(job, printer)):
                await self._pause(job, wf, other)
                return
            bed = printer.client.fields.get("bed_temp")
            if online and isinstance(bed, int | float) and bed <= limit:
                break
            if online and time.time() >= deadline:
                LOGGER.warning(
                    "Job %s: the bed of %s did not cool to %s °C in time (it reads %s); ejecting all the same",
                    job.id,
                    printer.name,
                    limit,
                    bed,
                )
                break
            await self._sleep(job, wf, deadline - time.time() if online else None)
        await self._advance(job, wf)

    async def _position(self, job: PrintJob, wf: Workflow, printer: PrinterCoordinator) -> None:
        """Move the bed out of the ejector's way (stored as sent first; never sent twice unasked)."""
        if wf.state == SENT:
            await self._pause(
                job,
                wf,
                "Home Assistant stopped while the bed-positioning G-code was being sent: whether the "
                "printer got it is unknown",
            )
            return
        while not (printer.client.online and printer.client.current):  # offline since it cooled
            await self._sleep(job, wf)
        if other := _prints_another(job, printer):
            await self._pause(job, wf, other)
            return
        gcode = str(printer.subentry.data.get(CONF_EJECT_GCODE) or positioning_gcode(printer.model))
        settle = printer.subentry.data.get(CONF_SETTLE)
        wf.state, wf.sent_at = SENT, time.time()
        await self._save(job, wf)
        try:
            await printer.async_send_gcode(gcode)
        except HomeAssistantError as err:
            await self._pause(job, wf, f"the printer did not take the bed-positioning G-code: {err}")
            return
        wf.settle_until = time.time() + (
            float(settle) if settle is not None else settle_seconds(printer.model)
        )
        await self._advance(job, wf)

    async def _settle(self, job: PrintJob, wf: Workflow, ejector: EjectorCoordinator) -> None:
        """Let the bed finish its move, then take the ejector: free, and this plate first in line."""
        while (left := (wf.settle_until or 0) - time.time()) > 0:
            await self._sleep(job, wf, left)
        while not self._may_take(job, wf, ejector):
            await self._sleep(job, wf)
        ejector.held_by = job.id  # with no await since the check: one workflow holds it
        await self._advance(job, wf)

    def _may_take(self, job: PrintJob, wf: Workflow, ejector: EjectorCoordinator) -> bool:
        if ejector.held_by not in (None, job.id):
            return False
        now = time.time()
        line = [
            (other_wf.finished_at, other.id)
            for other in self.jobs.store.jobs.values()
            if other.workflow is not None
            and not other.workflow.get("done")
            and (other_wf := Workflow.from_dict(other.workflow)).ejector_id == wf.ejector_id
            and other_wf.step == SETTLE
            and other_wf.state != PAUSED
            and (other_wf.settle_until or 0) <= now
        ]
        return not line or min(line)[1] == job.id

    async def _step_done(
        self, job: PrintJob, wf: Workflow, printer: PrinterCoordinator, ejector: EjectorCoordinator
    ) -> None:
        """What a confirmed step changes (a shelf, the bed), then the next step."""
        await self._apply(job, wf, printer)
        await self._advance(job, wf)

    async def _apply(self, job: PrintJob, wf: Workflow, printer: PrinterCoordinator) -> None:
        farm = self.entry.runtime_data
        if wf.step in (STORE, GRAB):
            rack = farm.rack_by_id(wf.rack_id)
            if rack is None:
                return
            if wf.step == STORE:
                await rack.async_set_shelf(
                    wf.store_shelf,
                    has_plate=True,
                    plate_state=PLATE_WITH_PRINT,
                    print_job_id=job.id,
                    workflow=True,
                )
            else:
                await rack.async_set_shelf(wf.grab_shelf, has_plate=False, workflow=True)
        elif wf.step == LOAD:
            self.jobs.store.bed_clear[job.on_printer] = True
            # The print whose plate went: its own start (the printer may be offline and report none).
            self.jobs.store.bed_cleared_after[job.on_printer] = (
                job.printer_start_time or printer.client.fields["start_time"]
            )

    async def _advance(self, job: PrintJob, wf: Workflow) -> None:
        # Another printer waits for the ejector: a workflow under way (a paused one may never come).
        others = any(
            other.id != job.id
            and other.workflow is not None
            and not other.workflow.get("done")
            and other.workflow.get("state") != PAUSED
            and other.workflow.get("ejector_id") == wf.ejector_id
            for other in self.jobs.store.jobs.values()
        )
        if wf.advance(skip_park=others):
            await self._save(job, wf)
            return
        await self._end(job, wf)

    async def _end(self, job: PrintJob, wf: Workflow) -> None:
        """The plate is on the rack and a fresh one on the printer: the job completes."""
        wf.done = True
        job.workflow = wf.as_dict()
        self._release(job, wf)
        if job.status == PRINTING:
            await self.jobs.async_workflow_done(job, COMPLETED)
        else:
            await self.jobs.async_workflow_done(job, None)

    def _release(self, job: PrintJob, wf: Workflow) -> None:
        ejector = self.entry.runtime_data.ejector_by_id(wf.ejector_id)
        if ejector is not None and ejector.held_by == job.id:
            ejector.held_by = None
        self._wake_where(lambda other: other.id != job.id and _workflow_of(other).ejector_id == wf.ejector_id)

    async def _save(self, job: PrintJob, wf: Workflow) -> None:
        """Store the workflow (before the step it begins is sent), and announce a new stage."""
        job.workflow = wf.as_dict()
        stage_changed = job.stage != wf.stage
        job.stage = wf.stage
        await self.jobs.store.async_save()
        if stage_changed:
            self.jobs.announce_stage(job)
        else:
            self.jobs.notify()

    async def _pause(self, job: PrintJob, wf: Workflow, fault: str, resume: str = READY) -> None:
        """Stop the workflow for a person: a repair issue offers retry, skip and abort."""
        LOGGER.warning("Job %s: the ejection workflow paused at %s: %s", job.id, wf.step, fault)
        wf.state, wf.fault, wf.resume = PAUSED, fault, resume
        printer = self.entry.runtime_data.printer_by_id(job.printer_id)
        name = printer.name if printer else str(job.printer_id)
        # Raised before the save: a decision that comes during it removes it, never the reverse.
        async_workflow_paused(self.hass, self.entry.entry_id, job.id, name, wf.step, fault)
        await self._save(job, wf)


def _prints_another(job: PrintJob, printer: PrinterCoordinator) -> str | None:
    """Why the printer no longer holds the job's plate (it prints, or reports another print), if it does not.

    A printer that was offline may have been used meanwhile: nothing moves until a person looked.
    """
    fields = printer.client.fields
    start = fields["start_time"]
    if fields["gcode_state"] in PRINTING_STATES or (
        start is not None and job.printer_start_time is not None and start != job.printer_start_time
    ):
        return (
            f"{printer.name} reports another print than job {job.id}'s: if its plate was taken off, "
            "abort the workflow; retry once the finished plate is back on the bed"
        )
    return None


def _workflow_of(job: PrintJob) -> Workflow:
    assert job.workflow is not None
    return Workflow.from_dict(job.workflow)
