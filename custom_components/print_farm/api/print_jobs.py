"""REST mirror of the OttoEngine Print Jobs API at /api/print_farm/print-jobs, and its extensions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from homeassistant.exceptions import HomeAssistantError
import voluptuous as vol

from ..const import DOMAIN
from ..rules.books.money import money_out, quantity_out, to_decimal
from ..rules.files import format_size
from ..rules.jobs import JOB_STATUSES, QUEUED, JobError, PrintItem, PrintJob, minutes
from ..rules.settings import MAX_UPLOAD_MB
from ..rules.workflow import STEPS
from ..runtime.farm import PrintFarm
from ..runtime.jobs import JobManager
from .base import (
    API_PREFIX,
    ApiError,
    FarmView,
    Operation,
    int_id,
    json_integer,
    operation,
    receive_upload,
)
from .printers import printer_error
from .shapes import (
    BOOLEAN,
    INTEGER,
    MESSAGE,
    NUMBER,
    OPEN_OBJECT,
    STRING,
    array,
    extend,
    merge,
    nullable,
    one_of,
    pick,
    shape,
)

_ID = json_integer(1)
_PRIORITY = vol.All(json_integer(1, 100), msg="priority must be a whole number from 1 (first) to 100")
CREATE_SCHEMA = vol.Schema(
    {
        vol.Required("print_item_id"): _ID,
        # null: any printer that can print it (beyond the seed, which always names one)
        vol.Required("printer_id"): vol.Any(None, _ID),
        vol.Optional("ottoeject_id", default=None): vol.Any(None, _ID),
        vol.Optional("auto_start", default=False): bool,
        vol.Optional("priority", default=1): _PRIORITY,
        # Beyond the seed: the plate of a multi-plate project to print.
        vol.Optional("plate", default=1): json_integer(1, 128),
        # Beyond the seed: the production run (seed 000) the job's grams, time and result fill.
        vol.Optional("production_run_id"): vol.Any(None, vol.All(str, vol.Length(min=1, max=64))),
    }
)
UPDATE_SCHEMA = vol.Schema(
    {
        vol.Optional("priority"): _PRIORITY,
        vol.Optional("auto_start"): bool,
        vol.Optional("printer_id"): vol.Any(None, _ID),
        vol.Optional("ottoeject_id"): vol.Any(None, _ID),
        vol.Optional("production_run_id"): vol.Any(None, vol.All(str, vol.Length(min=1, max=64))),
    }
)

MOVE_SCHEMA = vol.Schema({vol.Required("position"): _ID})


def job_error(err: JobError) -> ApiError:
    """A job refused: the status the rule chose, its message."""
    return ApiError(err.status, str(err))


# --- bodies, each with its JSON Schema ---------------------------------------------------------

ITEM_BODY = shape(
    {
        "id": INTEGER,
        "filename": STRING,
        "file_size": STRING,
        "estimated_print_time": nullable(INTEGER),
        "layer_count": nullable(INTEGER),
        "filament_used": nullable(STRING),
    }
)
_STATUS = one_of(JOB_STATUSES)
JOB_BODY = shape(
    {
        "id": INTEGER,
        "print_item_id": nullable(INTEGER),
        "printer_id": nullable(INTEGER),
        "ottoeject_id": nullable(INTEGER),
        "status": _STATUS,
        "priority": INTEGER,
        "progress_percent": INTEGER,
        "estimated_remaining_time": nullable(INTEGER),
        "created_at": STRING,
        "started_at": nullable(STRING),
        "orchestration_status": STRING,
        "production_run_id": nullable(STRING),
    }
)
# Not in the seed's list: each job's cost (filament and machine time), once the books took it.
JOB_LIST_BODY = extend(JOB_BODY, cost=nullable(NUMBER))
WORKFLOW_BODY = shape(
    {
        "step": one_of(STEPS),
        "state": STRING,
        "attempt": INTEGER,
        "fault": nullable(STRING),
        "done": BOOLEAN,
        "history": array(one_of(STEPS)),
    }
)
JOB_DETAIL_BODY = shape(
    {
        "id": INTEGER,
        "print_item": nullable(ITEM_BODY),
        "printer": nullable(
            shape({"id": INTEGER, "name": STRING, "brand": STRING, "model": nullable(STRING)})
        ),
        "ottoeject": nullable(shape({"id": INTEGER, "device_name": STRING})),
        "status": _STATUS,
        "priority": INTEGER,
        "auto_start": BOOLEAN,
        "progress_percent": INTEGER,
        "estimated_remaining_time": nullable(INTEGER),
        "created_at": STRING,
        "started_at": nullable(STRING),
        "completed_at": nullable(STRING),
        "filename": nullable(STRING),
        "failure": nullable(STRING),
        "orchestration_status": STRING,
        "wait_reason": nullable(STRING),
        "plate": INTEGER,
        "assigned_store_slot": nullable(INTEGER),
        "assigned_grab_slot": nullable(INTEGER),
        "ottorack_id": nullable(INTEGER),
        "workflow": nullable(WORKFLOW_BODY),
        "production_run_id": nullable(STRING),
        "filament_use": nullable(
            array(
                shape(
                    {
                        "filament": INTEGER,
                        "material": nullable(STRING),
                        "grams": NUMBER,
                        "tray": nullable(INTEGER),
                        "spool_id": nullable(STRING),
                        "tray_remaining_percent": nullable(INTEGER),
                        "spool_remaining_grams": nullable(NUMBER),
                        "spool_remaining_percent": nullable(NUMBER),
                    }
                )
            )
        ),
        "filament_deducted": BOOLEAN,
        "cost": nullable(NUMBER),
    }
)
ITEM_DETAIL_BODY = extend(ITEM_BODY, slicer=nullable(STRING), metadata=OPEN_OBJECT, uploaded_at=STRING)


def item_body(item: PrintItem) -> dict[str, Any]:
    """The seed's print item fields."""
    return {
        "id": item.id,
        "filename": item.filename,
        "file_size": format_size(item.size),
        "estimated_print_time": minutes(item.estimated_time_s),
        "layer_count": item.layer_count,
        "filament_used": None if item.filament_g is None else f"{item.filament_g:.1f}g",
    }


def job_body(job: PrintJob) -> dict[str, Any]:
    """The seed's job fields as the list shows them."""
    return {
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
        # Not in the seed's job: its stage, the seed's orchestration_status, its production run.
        "orchestration_status": job.stage,
        "production_run_id": job.production_run_id,
    }


def job_detail_body(farm: PrintFarm, job: PrintJob) -> dict[str, Any]:
    """The seed's full job, with its item, printer and OttoEject nested, and its file name."""
    item = farm.jobs.store.items.get(job.print_item_id) if job.print_item_id is not None else None
    printer = farm.printer_by_id(job.printer_id)
    ejector = farm.ejector_by_id(job.ottoeject_id) if job.ottoeject_id is not None else None
    return {
        "id": job.id,
        "print_item": item_body(item) if item else None,
        "printer": {
            "id": printer.printer_id,
            "name": printer.name,
            "brand": printer.details["brand"],
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
        # Not in the seed: the file a job prints, also for a job created for a print started
        # elsewhere, which has no print item.
        "filename": farm.jobs.filename_of(job),
        # Not in the seed: why a job failed (the printer's error code, or "ended_unseen").
        "failure": job.failure,
        "orchestration_status": job.stage,
        # Not in the seed: why a queued job waits, as the orchestrator last decided.
        "wait_reason": farm.orchestrator.waiting.get(job.id) if job.status == QUEUED else None,
        # Not in the seed: the plate of a multi-plate project it prints.
        "plate": job.plate,
        # Not in the seed's job (its active-jobs names them): the shelves reserved for the plate.
        "assigned_store_slot": job.store_shelf,
        "assigned_grab_slot": job.grab_shelf,
        "ottorack_id": job.rack_id,
        # Not in the seed: where the plate is in the ejection workflow, and why it stopped.
        "workflow": workflow_body(job),
        # Not in the seed: the production run it belongs to, what its print used from which
        # spool (the tray's own remaining percent beside the books' grams, as a check), whether
        # the books took it yet, and what it cost (filament and machine time).
        "production_run_id": job.production_run_id,
        # A print whose file's weights are unknown shows no use, and nothing deducted.
        "filament_use": filament_use_body(farm, job),
        "filament_deducted": bool(job.filament_use) and farm.production.books.deducted(job.id) is not None,
        "cost": money_out(farm.consumption.cost(job)),
    }


def filament_use_body(farm: PrintFarm, job: PrintJob) -> list[dict[str, Any]] | None:
    """What an ended job's print used, per filament, with the spool's books beside the tray's percent."""
    if not job.filament_use:  # not ended yet, or its file's weights are not known
        return None
    spools = farm.production.books.spools
    uses = []
    for use in job.filament_use:
        spool = spools.get(use["spool_id"]) if use.get("spool_id") else None
        uses.append(
            {
                "filament": use["filament"],
                "material": use.get("material"),
                "grams": quantity_out(to_decimal(use["grams"])),
                "tray": use.get("tray"),
                "spool_id": use.get("spool_id"),
                "tray_remaining_percent": use.get("tray_percent"),
                "spool_remaining_grams": quantity_out(spool.remaining_grams) if spool else None,
                "spool_remaining_percent": spool.remaining_percent if spool else None,
            }
        )
    return uses


def workflow_body(job: PrintJob) -> dict[str, Any] | None:
    """A job's ejection workflow as REST shows it: its step, state, fault, and the steps done."""
    if job.workflow is None:
        return None
    return {key: job.workflow.get(key) for key in ("step", "state", "attempt", "fault", "done", "history")}


class JobBaseView(FarmView):
    """A view of the farm's jobs."""

    def jobs(self) -> JobManager:
        """The farm's jobs."""
        return self.farm().jobs

    def job_id(self, job_id: str) -> int:
        """The id of an existing job, or 404."""
        number = int_id(job_id, "Print job")
        if number not in self.jobs().store.jobs:
            raise ApiError(404, f"Print job {job_id} not found")
        return number


class UploadItemView(JobBaseView):
    """/print-jobs/upload: step 1, a file becomes a print item."""

    url = f"{API_PREFIX}/print-jobs/upload"
    name = f"api:{DOMAIN}:print-jobs:upload"

    @operation(
        Operation(
            summary="Upload a G-code or .gcode.3mf file and read its metadata (step 1)",
            multipart={"file": "file"},
            responses={
                200: "Parsed and kept as a print item",
                400: "No file, or not a sliced print file (the reason says why); nothing is kept",
                413: "File too large",
            },
            returns={
                200: merge(
                    shape({"print_item_id": INTEGER}),
                    pick(
                        ITEM_BODY,
                        "filename",
                        "file_size",
                        "estimated_print_time",
                        "layer_count",
                        "filament_used",
                    ),
                    MESSAGE,
                )
            },
        )
    )
    async def post(self, request: web.Request) -> web.Response:
        """Stream the file to disk, read its metadata, keep it as an item."""
        jobs = self.jobs()
        received = await receive_upload(
            self.hass,
            request,
            Path(self.hass.config.path(DOMAIN, "uploads")),
            max_bytes=self.farm().settings[MAX_UPLOAD_MB] * 1024 * 1024,
        )
        try:
            item = await jobs.items.async_add(received.path, received.filename, move=True)
        except JobError as err:
            raise job_error(err) from None
        finally:
            await self.hass.async_add_executor_job(lambda: received.path.unlink(missing_ok=True))
        body = item_body(item)
        return self.json(
            {
                "print_item_id": item.id,
                "filename": item.filename,
                "file_size": format_size(item.size),
                "estimated_print_time": body["estimated_print_time"],
                "layer_count": item.layer_count,
                "filament_used": body["filament_used"],
                "message": "File uploaded and parsed successfully",
            }
        )


class JobsView(JobBaseView):
    """/print-jobs: create (step 2) and list."""

    url = f"{API_PREFIX}/print-jobs"
    extra_urls = [f"{API_PREFIX}/print-jobs/"]
    name = f"api:{DOMAIN}:print-jobs"

    @operation(
        Operation(
            summary="List print jobs",
            admin=False,
            responses={200: "The jobs"},
            returns={200: array(JOB_LIST_BODY)},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Every job, oldest first, with its cost."""
        farm = self.farm()
        jobs = sorted(farm.jobs.store.jobs.values(), key=lambda job: job.id)
        return self.json([{**job_body(job), "cost": money_out(farm.consumption.cost(job))} for job in jobs])

    @operation(
        Operation(
            summary="Create a print job from an uploaded item (step 2)",
            body=CREATE_SCHEMA,
            responses={
                201: "Queued",
                400: "Invalid body (priority from 1 to 100)",
                404: "Unknown item, printer or Ottoeject",
            },
            returns={
                201: extend(
                    pick(JOB_BODY, "id", "print_item_id", "printer_id", "ottoeject_id", "status", "priority"),
                    auto_start=BOOLEAN,
                    created_at=STRING,
                    message=STRING,
                )
            },
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Queue the job."""
        try:
            job = await self.jobs().async_create_job(**body, context=self.context(request))
        except JobError as err:
            raise job_error(err) from None
        return self.json(
            {
                "id": job.id,
                "print_item_id": job.print_item_id,
                "printer_id": job.printer_id,
                "ottoeject_id": job.ottoeject_id,
                "status": job.status,
                "priority": job.priority,
                "auto_start": job.auto_start,
                "created_at": job.created_at,
                "message": "Print job created successfully",
            },
            status_code=201,
        )


class JobView(JobBaseView):
    """/print-jobs/{id}: details, update, cancel."""

    url = f"{API_PREFIX}/print-jobs/{{job_id}}"
    name = f"api:{DOMAIN}:print-job"

    @operation(
        Operation(
            summary="A print job with its item, printer and Ottoeject",
            admin=False,
            responses={200: "The job", 404: "Unknown job"},
            returns={200: JOB_DETAIL_BODY},
        )
    )
    async def get(self, request: web.Request, job_id: str) -> web.Response:
        """The job in full."""
        jobs = self.jobs()
        return self.json(job_detail_body(self.farm(), jobs.store.jobs[self.job_id(job_id)]))

    @operation(
        Operation(
            summary="Update a print job (priority, auto_start; printer and Ottoeject while queued)",
            body=UPDATE_SCHEMA,
            responses={
                200: "Updated",
                400: "Invalid body",
                404: "Unknown job, printer or Ottoeject",
                409: "The job's state does not allow it",
            },
            returns={200: extend(pick(JOB_BODY, "id", "priority", "status"), message=STRING)},
        )
    )
    async def put(self, request: web.Request, job_id: str, body: dict[str, Any]) -> web.Response:
        """Change the job."""
        try:
            job = await self.jobs().async_update_job(self.job_id(job_id), body)
        except JobError as err:
            raise job_error(err) from None
        return self.json(
            {
                "id": job.id,
                "priority": job.priority,
                "status": job.status,
                "message": "Print job updated successfully",
            }
        )

    @operation(
        Operation(
            summary="Cancel and remove a print job (stops the printer if it is printing)",
            responses={
                200: "Cancelled and removed",
                404: "Unknown job",
                409: "Being cancelled already",
                502: "The printer refused to stop",
                503: "The printer is offline",
            },
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, job_id: str) -> web.Response:
        """Cancel it if it is open, then remove it: GET answers 404 afterwards."""
        try:
            await self.jobs().async_delete_job(self.job_id(job_id), stop=True, context=self.context(request))
        except JobError as err:
            raise job_error(err) from None
        except HomeAssistantError as err:
            raise printer_error(err) from None
        return self.json({"message": "Print job cancelled successfully"})


JOB_VIEWS: list[type[FarmView]] = [UploadItemView, JobsView, JobView]
