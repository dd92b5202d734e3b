"""The logbook: every `print_farm_*` bus event in human words, on the entity it concerns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.const import Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .api.events import (
    EVENT_JOB_AUTO_CREATED,
    EVENT_JOB_CANCELLED,
    EVENT_JOB_FAILED,
    EVENT_JOB_FINISHED,
    EVENT_JOB_QUEUED,
    EVENT_JOB_STARTED,
    workflow_event,
)
from .const import DOMAIN
from .rules.jobs import (
    AWAITING_REMOVAL,
    STAGE_OF_STATUS,
    STAGE_PAUSED,
    STAGE_PRINTING,
    START_SENT,
    STARTING,
    WAITING,
)
from .rules.workflow import COOLING, EJECTING, LOADING, PARKING, STORING
from .runtime.consumption import EVENT_SPOOL_EMPTY_SOON
from .runtime.farm import PrintFarm
from .runtime.printer_alerts import EVENT_PRINTER_ERROR
from .runtime.production import EVENT_SPOOL_LOW
from .runtime.rack import EVENT_SHELF_CHANGED

type Describe = Callable[[Event], dict[str, str]]

FARM = "Print Farm"
JOB_MESSAGES = {
    EVENT_JOB_QUEUED: "queued {job}",
    EVENT_JOB_STARTED: "started printing {job}",
    EVENT_JOB_FINISHED: "completed {job}",
    EVENT_JOB_FAILED: "failed {job}",
    EVENT_JOB_CANCELLED: "cancelled {job}",
}
# What a job's stage says, after the job's name ("{shelf}" while its plate is stored or loaded).
STAGE_MESSAGES = {
    WAITING: "{job} waits in the queue",
    STARTING: "{job} is being sent to the printer",
    START_SENT: "{job} was sent to the printer, its start is awaited",
    STAGE_PRINTING: "{job} is printing",
    STAGE_PAUSED: "{job} is paused",
    AWAITING_REMOVAL: "{job} finished printing, its plate waits to be taken off",
    COOLING: "{job}: the bed cools before the plate is ejected",
    EJECTING: "{job}: the OttoEject takes the plate off",
    STORING: "{job}: the OttoEject stores the plate on shelf {shelf}",
    LOADING: "{job}: the OttoEject loads a fresh plate from shelf {shelf}",
    PARKING: "{job}: the OttoEject parks",
    STAGE_OF_STATUS["COMPLETED"]: "{job} is completed",
    STAGE_OF_STATUS["FAILED"]: "{job} failed",
    STAGE_OF_STATUS["CANCELLED"]: "{job} was cancelled",
}
# The same, for a storing or loading event that names no shelf.
SHELFLESS_MESSAGES = {
    STORING: "{job}: the OttoEject stores the plate on the rack",
    LOADING: "{job}: the OttoEject loads a fresh plate from the rack",
}
SHELF_CONTENTS = {
    (False, None): "no plate",
    (True, "empty"): "an empty plate",
    (True, "with_print"): "a finished print",
}


@callback
def async_describe_events(
    hass: HomeAssistant, async_describe_event: Callable[[str, str, Describe], None]
) -> None:
    """Describe the farm's events for the logbook."""

    def farm() -> PrintFarm | None:
        entries = hass.config_entries.async_loaded_entries(DOMAIN)
        return entries[0].runtime_data if entries else None  # a single hub entry

    def entity(platform: Platform, unique_id: str) -> str | None:
        return er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)

    def printer_entry(printer_id: Any, printer_name: Any, message: str) -> dict[str, str]:
        """An entry on the printer's status sensor, named after the printer (the event's name for it first)."""
        name = str(printer_name) if printer_name else None
        described = {LOGBOOK_ENTRY_NAME: name or FARM, LOGBOOK_ENTRY_MESSAGE: message}
        current = farm()
        printer = current.printer_by_id(printer_id) if current and isinstance(printer_id, int) else None
        if printer is not None:
            described[LOGBOOK_ENTRY_NAME] = name or printer.name
            if entity_id := entity(Platform.SENSOR, f"{printer.serial}_status"):
                described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        elif printer_id is None and current is not None:
            # A job for any printer: the farm's job event entity.
            if entity_id := entity(Platform.EVENT, f"{current.entry.entry_id}_job_events"):
                described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return described

    @callback
    def describe_job(event: Event) -> dict[str, str]:
        job = _mapping(event.data.get("job"))
        printer = _mapping(job.get("printer"))
        message = JOB_MESSAGES[str(event.event_type)].format(
            job=_job_name(job.get("id"), job.get("filename"))
        )
        if event.event_type == EVENT_JOB_FAILED and job.get("failure"):
            message += f" (error {job['failure']})"
        if event.event_type == EVENT_JOB_QUEUED and not printer:
            message += " for the first free printer that fits"
        return printer_entry(
            printer.get("id"), event.data.get("printer_name") or printer.get("name"), message
        )

    @callback
    def describe_auto_created(event: Event) -> dict[str, str]:
        data = event.data
        message = f"gave {_job_name(data.get('id'), data.get('filename'))} to a print started outside Home Assistant"
        return printer_entry(data.get("printer_id"), data.get("printer_name"), message)

    def describe_stage(stage: str) -> Describe:
        @callback
        def describe(event: Event) -> dict[str, str]:
            data = event.data
            job = _job_name(data.get("job_id"), data.get("filename"))
            shelf = data.get("shelf")
            message = (
                STAGE_MESSAGES[stage].format(job=job, shelf=shelf)
                if shelf is not None or stage not in (STORING, LOADING)
                else SHELFLESS_MESSAGES[stage].format(job=job)
            )
            return printer_entry(data.get("printer_id"), data.get("printer_name"), message)

        return describe

    @callback
    def describe_shelf(event: Event) -> dict[str, str]:
        data = event.data
        plate_state = data.get("plate_state")
        content = SHELF_CONTENTS.get(
            (bool(data.get("has_plate")), plate_state if isinstance(plate_state, str) else None),
            "an unknown content",
        )
        message = f"shelf {data.get('shelf_number')} now holds {content}"
        if data.get("print_job_id") is not None:
            message += f" (job {data['print_job_id']})"
        described = {LOGBOOK_ENTRY_NAME: str(data.get("rack_name") or "Rack"), LOGBOOK_ENTRY_MESSAGE: message}
        rack = (
            current.rack_by_id(data["rack_id"])
            if (current := farm()) and isinstance(data.get("rack_id"), int)
            else None
        )
        if rack is not None and (
            entity_id := entity(
                Platform.SELECT, f"rack_{rack.subentry.subentry_id}_shelf_{data.get('shelf_number')}"
            )
        ):
            described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return described

    @callback
    def describe_spool_low(event: Event) -> dict[str, str]:
        data = event.data
        described = {
            LOGBOOK_ENTRY_NAME: str(data.get("name") or "Spool"),
            LOGBOOK_ENTRY_MESSAGE: f"is low: {data.get('remaining_grams')} g of {data.get('material')} left "
            f"(below {data.get('threshold_grams')} g)",
        }
        if entity_id := entity(Platform.SENSOR, f"spool_{data.get('spool_id')}_remaining"):
            described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return described

    @callback
    def describe_empty_soon(event: Event) -> dict[str, str]:
        data = event.data
        jobs = ", ".join(str(job_id) for job_id in data.get("job_ids") or ())
        return {
            LOGBOOK_ENTRY_NAME: FARM,
            LOGBOOK_ENTRY_MESSAGE: f"the queued jobs ({jobs}) need {data.get('needed_grams')} g of "
            f"{data.get('material')}, only {data.get('available_grams')} g is loaded",
        }

    @callback
    def describe_printer_error(event: Event) -> dict[str, str]:
        data = event.data
        what = data.get("text") or "an error"
        kind = "HMS" if data.get("kind") == "hms" else "print error"
        severity = f"{data['severity']} " if data.get("severity") else ""
        described = {
            LOGBOOK_ENTRY_NAME: str(data.get("name") or "Printer"),
            LOGBOOK_ENTRY_MESSAGE: f"reported {what} ({severity}{kind} {data.get('code')})",
        }
        printer = current.printer_by_serial(str(data.get("serial"))) if (current := farm()) else None
        if printer is not None and (entity_id := entity(Platform.SENSOR, f"{printer.serial}_status")):
            described[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return described

    for event_type in JOB_MESSAGES:
        async_describe_event(DOMAIN, event_type, describe_job)
    async_describe_event(DOMAIN, EVENT_JOB_AUTO_CREATED, describe_auto_created)
    for stage in STAGE_MESSAGES:
        async_describe_event(DOMAIN, workflow_event(stage), describe_stage(stage))
    async_describe_event(DOMAIN, EVENT_SHELF_CHANGED, describe_shelf)
    async_describe_event(DOMAIN, EVENT_SPOOL_LOW, describe_spool_low)
    async_describe_event(DOMAIN, EVENT_SPOOL_EMPTY_SOON, describe_empty_soon)
    async_describe_event(DOMAIN, EVENT_PRINTER_ERROR, describe_printer_error)


def _mapping(value: Any) -> Mapping[str, Any]:
    """A part of an event's data that should be a mapping, or an empty one (a hand-fired event)."""
    return value if isinstance(value, Mapping) else {}


def _job_name(job_id: Any, filename: Any) -> str:
    """The job as the logbook names it: "job 12 (benchy.gcode)", or what is known of it."""
    if filename:
        return f"job {job_id} ({filename})" if job_id is not None else str(filename)
    return f"job {job_id}"
