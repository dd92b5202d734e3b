"""The Printernizer-shaped API: settings, and the jobs in its field names (/api/print_farm/v1/...)."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
import voluptuous as vol

from ..const import DOMAIN
from ..rules.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PRINTING,
    QUEUED,
    JobError,
    PrintJob,
    normalise_filename,
)
from ..rules.settings import DEFAULTS, UPDATE_SCHEMA
from ..runtime.jobs import JobManager
from .base import API_PREFIX, ApiError, FarmView, Operation, int_id, json_integer, json_schema_of, operation
from .shapes import INTEGER, MESSAGE, OPEN_OBJECT, STRING, array, nullable, one_of, shape

V1 = f"{API_PREFIX}/v1"
JOB_UPDATE_SCHEMA = vol.Schema(
    {
        vol.Optional("job_name"): vol.All(str, vol.Strip, vol.Length(min=1, max=200)),
        vol.Optional("priority"): json_integer(1, 100),
    }
)


# A job's status in Printernizer's words.
V1_STATUS: Final = {
    QUEUED: "pending",
    PRINTING: "running",
    COMPLETED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
}


V1_JOB_BODY = shape(
    {
        "id": INTEGER,
        "printer_id": nullable(INTEGER),
        "job_name": nullable(STRING),
        "filename": nullable(STRING),
        "status": one_of(V1_STATUS.values()),
        "start_time": nullable(STRING),
        "end_time": nullable(STRING),
        "progress": INTEGER,
        "print_item_id": nullable(INTEGER),
        "priority": INTEGER,
        "customer_info": OPEN_OBJECT,
    }
)
# Every setting is in the body (`settings_of` fills in the defaults), each as PUT takes it.
SETTINGS_BODY = {**json_schema_of(UPDATE_SCHEMA), "required": list(DEFAULTS), "additionalProperties": False}


def v1_body(jobs: JobManager, job: PrintJob) -> dict[str, Any]:
    """A job in Printernizer's field names (the /v1/jobs API and the auto-created event)."""
    return {
        "id": job.id,
        "printer_id": job.printer_id,
        "job_name": job.job_name or normalise_filename(jobs.filename_of(job)) or None,
        "filename": jobs.filename_of(job),
        "status": V1_STATUS[job.status],
        "start_time": job.started_at,
        "end_time": job.completed_at,
        "progress": job.progress_percent,
        "print_item_id": job.print_item_id,
        "priority": job.priority,
        "customer_info": job.customer_info or {},
    }


class SettingsView(FarmView):
    """/v1/settings."""

    url = f"{V1}/settings"
    name = f"api:{DOMAIN}:v1:settings"

    @operation(
        Operation(
            summary="The farm's settings",
            admin=False,
            responses={200: "The settings"},
            returns={200: SETTINGS_BODY},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Every setting."""
        return self.json(self.farm().settings)

    @operation(
        Operation(
            summary="Change settings (any subset)",
            body=UPDATE_SCHEMA,
            responses={200: "The settings after the change", 400: "Unknown setting or invalid value"},
            returns={200: SETTINGS_BODY},
        )
    )
    async def put(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Validate and save."""
        return self.json(await self.farm().async_update_settings(body))


class V1JobsView(FarmView):
    """/v1/jobs: every job, auto-created ones included."""

    url = f"{V1}/jobs"
    name = f"api:{DOMAIN}:v1:jobs"

    @operation(
        Operation(
            summary="Jobs in Printernizer's shape; ?auto_created=true|false filters",
            admin=False,
            responses={200: "The jobs", 400: "Bad filter"},
            returns={200: shape({"jobs": array(V1_JOB_BODY), "total": INTEGER})},
            query={"auto_created": one_of(("true", "false"))},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """List, optionally only the auto-created (or only the other) jobs."""
        jobs = self.farm().jobs
        wanted = request.query.get("auto_created")
        if wanted not in (None, "true", "false"):
            raise ApiError(400, "auto_created is true or false.")
        listed = [v1_body(jobs, job) for job in sorted(jobs.store.jobs.values(), key=lambda job: job.id)]
        if wanted is not None:
            listed = [
                job for job in listed if bool(job["customer_info"].get("auto_created")) == (wanted == "true")
            ]
        return self.json({"jobs": listed, "total": len(listed)})


class V1JobView(FarmView):
    """/v1/jobs/{id}."""

    url = f"{V1}/jobs/{{job_id}}"
    name = f"api:{DOMAIN}:v1:job"

    def job_id(self, job_id: str) -> int:
        """An existing job's id, or 404."""
        number = int_id(job_id, "Job")
        if number not in self.farm().jobs.store.jobs:
            raise ApiError(404, f"Job {job_id} not found")
        return number

    @operation(
        Operation(
            summary="A job in Printernizer's shape, with customer_info",
            admin=False,
            responses={200: "The job", 404: "Unknown job"},
            returns={200: V1_JOB_BODY},
        )
    )
    async def get(self, request: web.Request, job_id: str) -> web.Response:
        """The job."""
        jobs = self.farm().jobs
        return self.json(v1_body(jobs, jobs.store.jobs[self.job_id(job_id)]))

    @operation(
        Operation(
            summary="Edit a job (job_name, priority)",
            body=JOB_UPDATE_SCHEMA,
            responses={
                200: "The job",
                400: "Invalid body",
                404: "Unknown job",
                409: "Ended jobs cannot change",
            },
            returns={200: V1_JOB_BODY},
        )
    )
    async def put(self, request: web.Request, job_id: str, body: dict[str, Any]) -> web.Response:
        """Edit it, like a manual job."""
        jobs = self.farm().jobs
        number = self.job_id(job_id)
        try:
            job = await jobs.async_update_job(number, body)
        except JobError as err:
            raise ApiError(err.status, str(err)) from None
        return self.json(v1_body(jobs, job))

    @operation(
        Operation(
            summary="Delete a job record (an auto-created print is not created again)",
            responses={200: "Deleted", 404: "Unknown job"},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, job_id: str) -> web.Response:
        """Forget the job; the printer is not touched."""
        await self.farm().jobs.async_delete_job(self.job_id(job_id), stop=False)
        return self.json({"message": "Job deleted successfully"})


V1_VIEWS: list[type[FarmView]] = [SettingsView, V1JobsView, V1JobView]
