"""How a job ends: finished (its plate still on the bed), completed, failed or cancelled.

A mixin of `JobManager` (runtime/jobs.py). At the end of a print the job records what it used (the
plan of `runtime/consumption.py`: grams per filament, tray, spool), saved with the end itself, and
the books then take it from the spools, once (the books' ledger is keyed by the job).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from homeassistant.core import Context, HomeAssistant
from homeassistant.util import dt as dt_util

from ..rules.jobs import AWAITING_REMOVAL, COMPLETED, FAILED, PRINTING, QUEUED, STAGE_OF_STATUS, PrintJob, iso
from .storage import JobStore
from .tracking import STAGE_CHANGED, STATUS_CHANGED

if TYPE_CHECKING:
    from .consumption import Consumption


class JobEndings:
    """The ends of jobs (mixed into JobManager)."""

    hass: HomeAssistant
    store: JobStore
    consumption: Consumption | None

    if TYPE_CHECKING:  # the job manager's own

        def _announce(self, job: PrintJob, context: Context | None, what: str = STATUS_CHANGED) -> None: ...

    async def _finish(self, job: PrintJob, status: str, context: Context | None = None) -> PrintJob:
        if job.status not in (QUEUED, PRINTING):  # ended meanwhile (by a report, or another call)
            return job
        now = dt_util.utcnow()
        job.status = status
        job.stage = STAGE_OF_STATUS[status]
        job.completed_at = iso(now)
        if status == COMPLETED:
            job.progress_percent = 100
            job.estimated_remaining_time = 0
        self._count_end(job, now)
        self._record_use(job, finished=status == COMPLETED)
        await self.store.async_save()
        await self._deduct(job)
        self._announce(job, context)
        self._announce(job, context, STAGE_CHANGED)
        return job

    def _count_end(self, job: PrintJob, now: datetime) -> None:
        """Count an ended job in the statistics the orchestration status shows (saved with the job)."""
        stats = self.store.stats
        if job.started_at is None:
            return  # cancelled before it started: nothing was processed
        stats["processed"] += 1
        day = local_day(now)
        if stats["day"] != day:
            stats.update(day=day, completed_today=0, failed_today=0)
        if job.status == COMPLETED:
            stats["completed"] += 1
            stats["completed_today"] += 1
            started = datetime.fromisoformat(job.started_at)
            stats["completion_seconds"] += max(0, int((now - started).total_seconds()))
        elif job.status == FAILED:
            stats["failed"] += 1
            stats["failed_today"] += 1

    async def _print_finished(self, job: PrintJob) -> None:
        """The printer reported FINISH: the job stays PRINTING, at 100 %, until its plate is off."""
        job.stage = AWAITING_REMOVAL
        self.store.bed_clear[job.on_printer] = False  # whatever was seen before: its plate is there
        job.progress_percent = 100
        job.estimated_remaining_time = 0
        self._record_use(job, finished=True)
        await self.store.async_save()
        await self._deduct(job)
        self._announce(job, None, STAGE_CHANGED)

    async def async_workflow_done(self, job: PrintJob, status: str | None, *, aborted: bool = False) -> None:
        """The ejection workflow ended (its state is on the job): complete the job, or leave the plate to a person."""
        if status is not None and not aborted:
            await self._finish(job, status)  # the workflow marked the bed clear when it loaded a plate
            return
        job.stage = AWAITING_REMOVAL if job.status == PRINTING else STAGE_OF_STATUS[job.status]
        if aborted:
            self.store.bed_clear[job.on_printer] = False  # where the plate is, a person says
        await self.store.async_save()
        self._announce(job, None, STAGE_CHANGED)

    def _record_use(self, job: PrintJob, *, finished: bool) -> None:
        """Keep what the print used with its end (saved with it): once, and only for a print that ran."""
        if self.consumption is not None and job.filament_use is None and job.started_at is not None:
            job.filament_use = self.consumption.plan(job, finished=finished)
            job.use_ended_at = iso(dt_util.utcnow())
            job.use_finished = finished

    async def _deduct(self, job: PrintJob) -> None:
        if self.consumption is not None and job.filament_use is not None:
            await self.consumption.async_deduct(job)


def local_day(moment: datetime) -> int:
    """The local calendar day of a moment, as YYYYMMDD (the per-day counters' key)."""
    return int(dt_util.as_local(moment).strftime("%Y%m%d"))
