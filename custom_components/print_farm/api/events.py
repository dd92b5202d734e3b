"""The seeds' job events as Home Assistant bus events, carrying the same bodies as the REST API.

`print_farm_job_<transition>` carries `{"job": <GET /print-jobs/{id} body>}`; a job created for a
print started elsewhere is first announced as `print_farm_job_auto_created` with its Printernizer
body (and, for a print that had ended while nobody watched, with no `print_farm_job_started`: that
print's start is long past). Every change of a job's stage fires `print_farm_workflow_<stage>`.
Each job and workflow event also carries `device_id` (the printer's device registry id) and
`printer_name`, both `None` while a job for any printer has no printer: the logbook files the entry
under the device, and an automation finds the printer's entities with `device_entities`. The job
events add `rack_name`, the name of the rack the job's plate is stored on (its body has the id).
Automations trigger on these; websocket clients get them with `subscribe_events`.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from ..const import DOMAIN
from ..rules.jobs import CANCELLED, COMPLETED, ENDED_UNSEEN, FAILED, PRINTING, QUEUED, PrintJob
from ..rules.workflow import LOADING, STORING
from ..runtime.farm import PrintFarm
from ..runtime.tracking import AUTO_CREATED, STAGE_CHANGED
from .print_jobs import job_detail_body
from .v1 import v1_body

EVENT_JOB_QUEUED: Final = f"{DOMAIN}_job_queued"
EVENT_JOB_STARTED: Final = f"{DOMAIN}_job_started"
EVENT_JOB_FINISHED: Final = f"{DOMAIN}_job_finished"
EVENT_JOB_FAILED: Final = f"{DOMAIN}_job_failed"
EVENT_JOB_CANCELLED: Final = f"{DOMAIN}_job_cancelled"
EVENT_JOB_AUTO_CREATED: Final = f"{DOMAIN}_job_auto_created"
JOB_EVENTS: Final = {
    QUEUED: EVENT_JOB_QUEUED,
    PRINTING: EVENT_JOB_STARTED,
    COMPLETED: EVENT_JOB_FINISHED,
    FAILED: EVENT_JOB_FAILED,
    CANCELLED: EVENT_JOB_CANCELLED,
}


def workflow_event(stage: str) -> str:
    """The bus event of a job reaching a stage: print_farm_workflow_awaiting_removal, ..."""
    return f"{DOMAIN}_workflow_{stage}"


@callback
def async_announce_jobs(hass: HomeAssistant, farm: PrintFarm) -> CALLBACK_TYPE:
    """Fire a bus event for every transition of the farm's jobs; returns the function that stops it."""

    def printer_of(job: PrintJob) -> dict[str, Any]:
        """The printer's device and name, the keys every job and workflow event adds."""
        printer = farm.printer_by_id(job.printer_id)
        device = (
            dr.async_get(hass).async_get_device(identifiers={(DOMAIN, printer.serial)})
            if printer is not None
            else None
        )
        return {
            "device_id": device.id if device is not None else None,
            "printer_name": printer.name if printer is not None else None,
        }

    @callback
    def announce(job: PrintJob, context: Context | None, what: str) -> None:
        if what == STAGE_CHANGED:
            hass.bus.async_fire(
                workflow_event(job.stage),
                {
                    **printer_of(job),
                    "job_id": job.id,
                    "printer_id": job.printer_id,
                    "stage": job.stage,
                    "filename": farm.jobs.filename_of(job),
                    # The shelf the plate goes to, or a fresh plate comes from.
                    "shelf": job.store_shelf
                    if job.stage == STORING
                    else job.grab_shelf
                    if job.stage == LOADING
                    else None,
                },
                context=context,
            )
            return
        if what == AUTO_CREATED:
            hass.bus.async_fire(EVENT_JOB_AUTO_CREATED, {**v1_body(farm.jobs, job), **printer_of(job)})
            if (job.customer_info or {}).get(ENDED_UNSEEN):
                return  # a print that ended while nobody watched: no start to announce now
        rack = farm.rack_by_id(job.rack_id) if job.rack_id is not None else None
        hass.bus.async_fire(
            JOB_EVENTS[job.status],
            {
                "job": job_detail_body(farm, job),
                **printer_of(job),
                # The name of the rack its plate is (or goes) on: the body has only the rack's id.
                "rack_name": rack.name if rack is not None else None,
            },
            context=context,
        )

    return farm.jobs.async_add_announcer(announce)
