"""Print jobs' actions (complete, start, move, workflow decisions), print items and bed-clear."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from homeassistant.exceptions import HomeAssistantError

from ..const import DOMAIN
from ..rules.jobs import JobError
from .base import API_PREFIX, ApiError, FarmView, Operation, int_id, operation
from .print_jobs import ITEM_DETAIL_BODY, JOB_BODY, MOVE_SCHEMA, JobBaseView, item_body, job_body, job_error
from .shapes import BOOLEAN, INTEGER, MESSAGE, STRING, extend, nullable, pick, shape


class JobCompleteView(JobBaseView):
    """/print-jobs/{id}/complete."""

    url = f"{API_PREFIX}/print-jobs/{{job_id}}/complete"
    name = f"api:{DOMAIN}:print-job:complete"

    @operation(
        Operation(
            summary="Mark a print job completed",
            responses={
                200: "Completed",
                404: "Unknown job",
                409: "Not printing (never started, failed, cancelled or completed)",
            },
            returns={
                200: extend(pick(JOB_BODY, "id", "status"), completed_at=nullable(STRING), message=STRING)
            },
        )
    )
    async def post(self, request: web.Request, job_id: str) -> web.Response:
        """Complete it."""
        try:
            job = await self.jobs().async_complete_job(self.job_id(job_id), self.context(request))
        except JobError as err:
            raise job_error(err) from None
        return self.json(
            {
                "id": job.id,
                "status": job.status,
                "completed_at": job.completed_at,
                "message": "Print job marked as completed",
            }
        )


class JobMoveView(JobBaseView):
    """/print-jobs/{id}/move (beyond the seed): a queued job's place among the jobs of its priority."""

    url = f"{API_PREFIX}/print-jobs/{{job_id}}/move"
    name = f"api:{DOMAIN}:print-job:move"

    @operation(
        Operation(
            summary="Put a queued job at a position (from 1) among the queued jobs of its priority",
            body=MOVE_SCHEMA,
            responses={
                200: "Moved; the job's body",
                400: "Invalid body",
                404: "Unknown job",
                409: "Not queued",
            },
            returns={200: extend(JOB_BODY, queue_position=nullable(INTEGER))},
        )
    )
    async def post(self, request: web.Request, job_id: str, body: dict[str, Any]) -> web.Response:
        """Move it."""
        try:
            job = await self.jobs().async_move_job(self.job_id(job_id), body["position"])
        except JobError as err:
            raise job_error(err) from None
        return self.json({**job_body(job), "queue_position": job.queue_position})


class JobWorkflowView(JobBaseView):
    """/print-jobs/{id}/workflow/{retry|skip|abort} (beyond the seed): a person's decision on a stuck workflow."""

    url = f"{API_PREFIX}/print-jobs/{{job_id}}/workflow/{{decision}}"
    name = f"api:{DOMAIN}:print-job:workflow"

    @operation(
        Operation(
            summary="Retry the paused step of a job's ejection workflow, skip it, or abort the workflow",
            responses={
                200: "Done; the job's body",
                404: "Unknown job or decision",
                409: "No workflow under way, or it is not paused (retry, skip)",
            },
            returns={200: JOB_BODY},
        )
    )
    async def post(self, request: web.Request, job_id: str, decision: str) -> web.Response:
        """Decide."""
        ejection = self.farm().ejection
        decide = {
            "retry": ejection.async_retry,
            "skip": ejection.async_skip,
            "abort": ejection.async_abort,
        }.get(decision)
        if decide is None:
            raise ApiError(404, f"Unknown decision {decision!r}: retry, skip or abort.")
        try:
            job = await decide(self.job_id(job_id))
        except JobError as err:
            raise job_error(err) from None
        return self.json(job_body(job))


class JobStartView(JobBaseView):
    """/print-jobs/{id}/start (beyond the seed): send the file and start the print now."""

    url = f"{API_PREFIX}/print-jobs/{{job_id}}/start"
    name = f"api:{DOMAIN}:print-job:start"

    @operation(
        Operation(
            summary="Start a queued job now: upload its file to the printer and start it",
            responses={
                202: "Started",
                404: "Unknown job",
                409: "Not queued, printer busy, or bed not clear",
                502: "Upload or start failed",
                503: "Printer offline",
            },
            returns={202: extend(pick(JOB_BODY, "id", "status", "started_at"), message=STRING)},
        )
    )
    async def post(self, request: web.Request, job_id: str) -> web.Response:
        """Start it."""
        try:
            job = await self.jobs().async_start_job(self.job_id(job_id), self.context(request))
        except JobError as err:
            raise job_error(err) from None
        except HomeAssistantError as err:
            raise ApiError(502, str(err)) from None
        return self.json(
            {
                "id": job.id,
                "status": job.status,
                "started_at": job.started_at,
                "message": "Print job started",
            },
            status_code=202,
        )


class ItemView(JobBaseView):
    """/print-items/{id} (beyond the seed): an uploaded item, and deleting it."""

    url = f"{API_PREFIX}/print-items/{{item_id}}"
    name = f"api:{DOMAIN}:print-item"

    @operation(
        Operation(
            summary="An uploaded print item and its metadata",
            admin=False,
            responses={200: "The item", 404: "Unknown item"},
            returns={200: ITEM_DETAIL_BODY},
        )
    )
    async def get(self, request: web.Request, item_id: str) -> web.Response:
        """The item with every metadata field read from the file."""
        item = self.jobs().store.items.get(int_id(item_id, "Print item"))
        if item is None:
            raise ApiError(404, f"Print item {item_id} not found")
        return self.json(
            {**item_body(item), "slicer": item.slicer, "metadata": item.info, "uploaded_at": item.uploaded_at}
        )

    @operation(
        Operation(
            summary="Delete an item and its file",
            responses={200: "Deleted", 404: "Unknown item", 409: "A job uses it"},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, item_id: str) -> web.Response:
        """Delete it unless a job uses it."""
        try:
            await self.jobs().items.async_remove(int_id(item_id, "Print item"))
        except JobError as err:
            raise job_error(err) from None
        return self.json({"message": "Print item deleted successfully"})


class BedClearView(FarmView):
    """/printers/{id}/bed-clear (beyond the seed): the plate was taken off."""

    url = f"{API_PREFIX}/printers/{{printer_id}}/bed-clear"
    name = f"api:{DOMAIN}:printer:bed-clear"

    @operation(
        Operation(
            summary="Record that a printer's bed is clear",
            responses={200: "Recorded", 404: "Unknown printer"},
            returns={200: shape({"id": INTEGER, "bed_clear": BOOLEAN, "message": STRING})},
        )
    )
    async def post(self, request: web.Request, printer_id: str) -> web.Response:
        """Mark the bed clear, so that the next job may start."""
        number = int_id(printer_id, "Printer")
        try:
            await self.farm().jobs.async_set_bed_clear(number, context=self.context(request))
        except JobError as err:
            raise job_error(err) from None
        return self.json({"id": number, "bed_clear": True, "message": "Bed marked clear"})


JOB_ACTION_VIEWS: list[type[FarmView]] = [
    JobCompleteView,
    JobStartView,
    JobMoveView,
    JobWorkflowView,
    ItemView,
    BedClearView,
]
