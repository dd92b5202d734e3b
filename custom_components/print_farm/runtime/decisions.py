"""A person's decisions on a stuck ejection workflow: retry the step, skip it, abort the workflow.

A mixin of `Ejection` (runtime/ejection.py), which runs the workflows; the repair flow, the actions
and the REST route call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant

from ..rules.jobs import JobError, PrintJob
from ..rules.racks import ShelfError
from ..rules.workflow import COOL, PAUSED, SETTLE, Workflow
from .jobs import JobManager
from .printer import PrinterCoordinator
from .workflow_issues import async_workflow_resumed

if TYPE_CHECKING:
    import asyncio

    from .farm import PrintFarmConfigEntry


class WorkflowDecisions:
    """Retry, skip, abort (mixed into Ejection)."""

    hass: HomeAssistant
    entry: PrintFarmConfigEntry
    jobs: JobManager
    _tasks: dict[int, asyncio.Task[None]]

    if TYPE_CHECKING:  # the workflow runner's own

        async def _save(self, job: PrintJob, wf: Workflow) -> None: ...
        def _spawn(self, job_id: int) -> None: ...
        async def _apply(self, job: PrintJob, wf: Workflow, printer: PrinterCoordinator) -> None: ...
        async def _advance(self, job: PrintJob, wf: Workflow) -> None: ...
        def _release(self, job: PrintJob, wf: Workflow) -> None: ...

    def _paused(self, job_id: int) -> tuple[PrintJob, Workflow]:
        job = self.jobs.store.jobs.get(job_id)
        if job is None:
            raise JobError(f"Print job {job_id} not found", 404)
        if job.workflow is None or job.workflow.get("done"):
            raise JobError(f"Print job {job_id} has no ejection workflow under way.")
        wf = Workflow.from_dict(job.workflow)
        if wf.state != PAUSED:
            raise JobError(f"The ejection workflow of print job {job_id} is not paused (it is at {wf.step}).")
        return job, wf

    async def async_retry(self, job_id: int) -> PrintJob:
        """Go on with the paused step: a step that may have been received is first asked of the device."""
        job, wf = self._paused(job_id)
        wf.state, wf.fault = wf.resume, None
        await self._save(job, wf)
        async_workflow_resumed(self.hass, job_id)
        self._spawn(job_id)
        return job

    async def async_skip(self, job_id: int) -> PrintJob:
        """A person did the paused step (or it is not needed): count it as done and go on."""
        job, wf = self._paused(job_id)
        if wf.step in (COOL, SETTLE):
            raise JobError(
                f"The workflow of print job {job_id} waits at {wf.step}: there is nothing to skip."
            )
        printer = self.entry.runtime_data.printer_by_id(job.printer_id)
        if printer is not None:
            try:
                await self._apply(job, wf, printer)
            except ShelfError as err:
                raise JobError(f"The step cannot be counted as done: {err}") from err
        async_workflow_resumed(self.hass, job_id)
        await self._advance(job, wf)
        self._spawn(job_id)
        return job

    async def async_abort(self, job_id: int) -> PrintJob:
        """End the workflow where it is: the plate's place is a person's to find and mark."""
        job = self.jobs.store.jobs.get(job_id)
        if job is None:
            raise JobError(f"Print job {job_id} not found", 404)
        if job.workflow is None or job.workflow.get("done"):
            raise JobError(f"Print job {job_id} has no ejection workflow under way.")
        wf = Workflow.from_dict(job.workflow)
        if wf.holds_ejector and wf.state != PAUSED:
            raise JobError(
                f"The OttoEject is running {wf.step} for print job {job_id}: abort once it paused, or when the step ended."
            )
        wf.done, wf.fault = True, f"aborted at {wf.step}"
        if (task := self._tasks.pop(job_id, None)) is not None:
            task.cancel()
        self._release(job, wf)
        job.workflow = wf.as_dict()
        job.rack_id = job.store_shelf = job.grab_shelf = None  # the shelves are people's again
        async_workflow_resumed(self.hass, job_id)
        await self.jobs.async_workflow_done(job, None, aborted=True)
        return job
