"""Device triggers of a printer: print started, finished, failed, and an error it reports.

Each fires once per occurrence because each follows an event the farm fires once per occurrence:

- started: `print_farm_job_started`, a job's one move to PRINTING (a print started elsewhere gets its
  job, and this event, when it is first seen; one that had already ended when first seen fires
  none, and the trigger also ignores a job whose stage is not printing or paused);
- finished: `print_farm_workflow_awaiting_removal`, the print done and its plate on the bed (the job
  completes only later, when the plate is off). An ejection aborted by a person brings a job back to
  this stage, its ended workflow kept on the job: the trigger fires only for a job with no workflow,
  which holds across restarts and automation reloads (the first arrival at this stage has none: the
  OttoEject's workflow begins after the event);
- failed: `print_farm_job_failed`, a job's one end as FAILED (a person's cancel is no failure);
- error: `print_farm_printer_error`, once each time an HMS entry or a print error appears.

The printer's status sensor would not do: it changes on every report of a new state, and comes back
from "unavailable" after a reconnect with the state it had.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.device_automation.exceptions import InvalidDeviceAutomationConfig
from homeassistant.const import CONF_DEVICE_ID, CONF_DOMAIN, CONF_PLATFORM, CONF_TYPE
from homeassistant.core import CALLBACK_TYPE, Event, HassJob, HomeAssistant, callback
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType
import voluptuous as vol

from .api.events import EVENT_JOB_FAILED, EVENT_JOB_STARTED, workflow_event
from .const import DOMAIN
from .rules.jobs import AWAITING_REMOVAL, STAGE_PAUSED, STAGE_PRINTING
from .runtime.farm import PrintFarm
from .runtime.printer_alerts import EVENT_PRINTER_ERROR

PRINT_STARTED: Final = "print_started"
PRINT_FINISHED: Final = "print_finished"
PRINT_FAILED: Final = "print_failed"
PRINTER_ERROR: Final = "printer_error"
TRIGGER_EVENTS: Final = {
    PRINT_STARTED: EVENT_JOB_STARTED,
    PRINT_FINISHED: workflow_event(AWAITING_REMOVAL),
    PRINT_FAILED: EVENT_JOB_FAILED,
    PRINTER_ERROR: EVENT_PRINTER_ERROR,
}
# The stages of a job that has really started (not one created for a print that had ended unseen).
STARTED_STAGES: Final = (STAGE_PRINTING, STAGE_PAUSED)

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend({vol.Required(CONF_TYPE): vol.In(TRIGGER_EVENTS)})


def _farm(hass: HomeAssistant) -> PrintFarm | None:
    entries = hass.config_entries.async_loaded_entries(DOMAIN)
    return entries[0].runtime_data if entries else None  # a single hub entry


async def async_validate_trigger_config(hass: HomeAssistant, config: ConfigType) -> ConfigType:
    """A trigger of a printer's device: one on the farm, an OttoEject, a rack or a spool would never fire."""
    config = TRIGGER_SCHEMA(config)
    farm = _farm(hass)
    # While the farm is not loaded (Home Assistant starting) its printers cannot be told apart yet.
    if farm is not None and farm.printer_by_device(config[CONF_DEVICE_ID]) is None:
        raise InvalidDeviceAutomationConfig(f"Device {config[CONF_DEVICE_ID]} is not a Print Farm printer")
    return config


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, str]]:
    """The triggers of a printer's device (none for the farm, an OttoEject, a rack or a spool)."""
    farm = _farm(hass)
    if farm is None or farm.printer_by_device(device_id) is None:
        return []
    return [
        {CONF_PLATFORM: "device", CONF_DOMAIN: DOMAIN, CONF_DEVICE_ID: device_id, CONF_TYPE: trigger_type}
        for trigger_type in TRIGGER_EVENTS
    ]


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Run `action` on each occurrence for this printer."""
    device_id: str = config[CONF_DEVICE_ID]
    trigger_type: str = config[CONF_TYPE]
    event_type = TRIGGER_EVENTS[trigger_type]
    job = HassJob(action, f"print_farm device trigger {trigger_type}")
    trigger_data = trigger_info["trigger_data"]

    def fires(data: Mapping[str, Any]) -> bool:
        if data.get("device_id") != device_id:
            return False  # another printer's, or a job for any printer
        if trigger_type == PRINT_STARTED:
            return (data.get("job") or {}).get("orchestration_status") in STARTED_STAGES
        if trigger_type == PRINT_FINISHED:
            farm, job_id = _farm(hass), data.get("job_id")
            print_job = (
                farm.jobs.store.jobs.get(job_id) if farm is not None and isinstance(job_id, int) else None
            )
            # Back at this stage after an aborted ejection (its workflow stays): the print finished once.
            return print_job is not None and print_job.workflow is None
        return True

    @callback
    def handle(event: Event) -> None:
        if not fires(event.data):
            return
        hass.async_run_hass_job(
            job,
            {
                "trigger": {
                    **trigger_data,
                    **config,
                    "event": event,
                    "description": f"{trigger_type.replace('_', ' ')} on the printer",
                }
            },
            event.context,
        )

    return hass.bus.async_listen(event_type, handle)
