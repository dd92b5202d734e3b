"""The orchestrator: starts queued jobs by themselves, the moment their printer is ready.

Event-driven: a job's change (queued, ended, its plate taken off) and a printer's change of state
or connection schedule one dispatch on the event loop; nothing polls. The decision is the rule in
`rules/dispatch.py`; a start goes through the job manager's one start, as REST and actions do.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later

from ..const import LOGGER
from ..protocols.bambu import FIELD_ONLINE, PRINTING_STATES
from ..rules.dispatch import PrinterReadiness, plan
from ..rules.jobs import AWAITING_REMOVAL, JobError
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
    def restart(self) -> None:
        """Forget what the last dispatches decided, held starts too, and decide again (storage is the truth)."""
        self.error = None
        self.waiting = {}
        self._held.clear()  # a person fixed what made a start fail: no need to wait out the hold
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

    def _readiness(self, printer: PrinterCoordinator) -> PrinterReadiness:
        state = printer.client.fields["gcode_state"]
        active = self.jobs.store.active_job(printer.printer_id)
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
            farm = self.entry.runtime_data
            printers = {printer.printer_id: printer for printer in farm.printers.values()}
            placement = self.ejection.placement
            decision = plan(
                self.jobs.store.jobs.values(),
                {printer_id: self._readiness(printer) for printer_id, printer in printers.items()},
                enabled=bool(farm.settings[JOB_PROCESSING]),
                pools=placement.pools(),
                fit=lambda job, printer_id: placement.fit_of(job, printers[printer_id]),
            )
            self.waiting = decision.waiting
            self.error = None
        except Exception as err:
            LOGGER.exception("Job dispatch failed")
            self.error = f"{type(err).__name__}: {err}"
            return
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

    @callback
    def _hold(self, job_id: int, reason: str) -> None:
        """Try a job whose start failed again only after a while, never in a loop; say why it waits."""
        self._held[job_id] = (time.monotonic() + RETRY_AFTER_S, reason)
        self.waiting[job_id] = reason
        self.entry.async_on_unload(
            async_call_later(self.hass, RETRY_AFTER_S, callback(lambda _now: self.schedule()))
        )
