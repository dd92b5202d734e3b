"""The orchestrator: starts queued jobs by themselves, the moment their printer is ready.

Event-driven: a job's change (queued, ended, its plate taken off) and a printer's change of state
or connection schedule one dispatch on the event loop; nothing polls. The decision is the rule in
`rules/dispatch.py`; a start goes through the job manager's one start, as REST and actions do.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later

from ..const import LOGGER
from ..protocols.bambu import FIELD_ONLINE, PRINTING_STATES
from ..rules.dispatch import PrinterReadiness, plan
from ..rules.jobs import AWAITING_REMOVAL, PRINTING, JobError, PrintJob
from ..rules.settings import JOB_PROCESSING
from ..rules.workflow import WORKFLOW_STAGES
from .ejection import Ejection
from .jobs import JobManager
from .printer import PrinterCoordinator

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

# The printer fields whose change may make a printer ready (or not).
_READY_FIELDS: Final = frozenset(
    {"gcode_state", FIELD_ONLINE, "trays", "nozzle_diameter", "signing_required"}
)
# A job whose start failed (nothing started: an upload refused, a file missing) is tried again after this.
RETRY_AFTER_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Health:
    """Whether the orchestration works, as the health route and the health binary sensor show it."""

    services: dict[str, str]
    issues: list[str]
    uptime_seconds: int | None

    @property
    def healthy(self) -> bool:
        """Healthy when nothing is wrong (job processing switched off on purpose is not wrong)."""
        return not self.issues


class Orchestrator:
    """Dispatch of the farm's queued jobs, and why each one waits."""

    def __init__(
        self, hass: HomeAssistant, entry: PrintFarmConfigEntry, jobs: JobManager, ejection: Ejection
    ) -> None:
        """Create it; `async_start` follows the jobs."""
        self.hass = hass
        self.entry = entry
        self.jobs = jobs
        self.ejection = ejection
        # Why each queued job waits (not stored: the next dispatch says it again).
        self.waiting: dict[int, str] = {}
        self._scheduled = False
        # Jobs whose start failed: (when they may be tried again, why they wait).
        self._held: dict[int, tuple[float, str]] = {}
        self.started: float | None = None  # monotonic time of the start, None once stopped
        # What went wrong in the last dispatch, if it did not complete (the health route says it).
        self.error: str | None = None
        self._listeners: list[CALLBACK_TYPE] = []

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Follow the jobs (the first dispatch comes with the farm's first sync); returns the stop."""
        self.started = time.monotonic()
        unsub = self.jobs.async_add_queue_listener(self.schedule)

        @callback
        def stop() -> None:
            unsub()
            self.started = None

        return stop

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call listener() after every dispatch decision (the wait reasons may have changed)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def _decided(self) -> None:
        for listener in tuple(self._listeners):
            listener()

    def health(self) -> Health:
        """What works and what does not: the orchestrator, job processing, stuck workflows."""
        services = {"orchestrator": "operational", "job_processing": "active", "database": "connected"}
        issues: list[str] = []
        uptime = None
        if self.started is None:
            services["orchestrator"] = "stopped"
            issues.append("The orchestrator is not running")
        else:
            uptime = int(time.monotonic() - self.started)
        if not self.entry.runtime_data.settings[JOB_PROCESSING]:
            services["job_processing"] = "paused"  # switched off on purpose: not unhealthy
        if self.error is not None:
            services["job_processing"] = "failed"
            issues.append(f"Job processing failed: {self.error}")
        issues += [
            f"The ejection workflow of print job {job.id} is paused at {job.workflow['step']}: {job.workflow['fault']}"
            for job in self.jobs.store.jobs.values()
            if job.workflow is not None
            and not job.workflow.get("done")
            and job.workflow.get("state") == "paused"
        ]
        return Health(services, issues, uptime)

    @callback
    def restart(self) -> None:
        """Forget what the last dispatches decided, held starts too, and decide again (storage is the truth).

        Stored workflows without a running task go on from their stored step; paused ones stay
        paused for a person (retry, skip, abort).
        """
        self.error = None
        self.waiting = {}
        self._held.clear()  # a person fixed what made a start fail: no need to wait out the hold
        self.ejection.async_resume()
        self.schedule()

    @callback
    def follow(self, printer: PrinterCoordinator) -> CALLBACK_TYPE:
        """Dispatch again when a printer may have become ready."""
        return printer.async_add_listener(self.schedule, _READY_FIELDS)

    @callback
    def schedule(self) -> None:
        """Dispatch soon, once however many changes came in meanwhile."""
        if self._scheduled:
            return
        self._scheduled = True
        # Not eager: the changes that come in meanwhile (one report may bring several) join it.
        self.entry.async_create_background_task(
            self.hass, self._async_dispatch(), "print_farm dispatch", eager_start=False
        )

    def _readiness(self, printer: PrinterCoordinator, printing: dict[int, PrintJob]) -> PrinterReadiness:
        state = printer.client.fields["gcode_state"]
        active = printing.get(printer.printer_id)
        busy = state in PRINTING_STATES or active is not None or self.jobs.is_starting(printer.printer_id)
        plate = active is not None and (active.stage == AWAITING_REMOVAL or active.stage in WORKFLOW_STAGES)
        ejector = self.ejection.placement.ejector_of(printer)
        return PrinterReadiness(
            online=printer.client.online and state is not None,
            busy=busy,
            bed_clear=self.jobs.bed_is_clear(printer),
            plate_of=active.id if active is not None and plate else None,
            ejector=ejector.ejector_id if ejector is not None else None,
            needs_signing=printer.requires_signing,
        )

    async def _async_dispatch(self) -> None:
        self._scheduled = False
        try:
            # First the plates an OttoEject could take off and nothing takes yet (no shelf was free,
            # or no job accounts for them): a shelf they take is then not given to a start.
            self.ejection.async_clear_plates()
        except Exception:
            LOGGER.exception("Could not begin the workflow of a plate left on a printer")
        try:
            farm = self.entry.runtime_data
            printers = {printer.printer_id: printer for printer in farm.printers.values()}
            placement = self.ejection.placement
            # One pass over the jobs for every printer's job, not one per printer.
            printing = {
                job.printer_id: job
                for job in self.jobs.store.jobs.values()
                if job.printer_id is not None
                and (job.status == PRINTING or (job.workflow is not None and not job.workflow.get("done")))
            }
            decision = plan(
                self.jobs.store.jobs.values(),
                {printer_id: self._readiness(printer, printing) for printer_id, printer in printers.items()},
                enabled=bool(farm.settings[JOB_PROCESSING]),
                pools=placement.pools(),
                fit=lambda job, printer_id: placement.fit_of(job, printers[printer_id]),
            )
            self.waiting = decision.waiting
            self.error = None
        except Exception as err:
            LOGGER.exception("Job dispatch failed")
            self.error = f"{type(err).__name__}: {err}"
            self._decided()
            return
        self._decided()
        now = time.monotonic()
        for job in decision.starts:
            if (held := self._held.get(job.id)) is not None and held[0] > now:
                self.waiting[job.id] = held[1]
                continue
            self._held.pop(job.id, None)
            # Each start on its own: a long upload to one printer holds no other printer up. It
            # runs at once up to its first wait, so the next dispatch sees the printer taken.
            self.entry.async_create_background_task(
                self.hass,
                self._async_start(job.id, decision.printers[job.id]),
                f"print_farm start of job {job.id}",
            )

    async def _async_start(self, job_id: int, printer_id: int) -> None:
        job = self.jobs.store.jobs.get(job_id)
        # Decided a moment ago: still wanted? (switched off, auto_start cleared, job gone)
        if job is None or not job.auto_start or not self.entry.runtime_data.settings[JOB_PROCESSING]:
            return
        try:
            await self.jobs.async_start_job(job_id, printer_id=printer_id)
        except (JobError, HomeAssistantError) as err:
            LOGGER.warning("Job %s could not be started: %s", job_id, err)
            self._hold(job_id, f"its start failed: {err}")
        except Exception:
            LOGGER.exception("Job %s could not be started", job_id)
            self._hold(job_id, "its start failed (see the log)")
        else:
            # The farm's setting may give each orchestrated job a production run of its own.
            printer = self.entry.runtime_data.printer_by_id(job.printer_id)
            await self.entry.runtime_data.consumption.async_open_run(job, printer.name if printer else None)

    @callback
    def _hold(self, job_id: int, reason: str) -> None:
        """Try a job whose start failed again only after a while, never in a loop; say why it waits."""
        self._held[job_id] = (time.monotonic() + RETRY_AFTER_S, reason)
        self.waiting[job_id] = reason
        self.entry.async_on_unload(
            async_call_later(self.hass, RETRY_AFTER_S, callback(lambda _now: self.schedule()))
        )
