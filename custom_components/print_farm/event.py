"""The farm's job event entity: every job transition, for automations and notifications."""

from __future__ import annotations

from homeassistant.components.event import EventEntity
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.events import EVENT_JOB_AUTO_CREATED, JOB_EVENTS
from .entity import farm_device
from .runtime.farm import PrintFarmConfigEntry

PARALLEL_UPDATES = 0

# print_farm_job_finished -> "finished", the event entity's event type.
EVENT_TYPES = {
    event: event.removeprefix("print_farm_job_") for event in (*JOB_EVENTS.values(), EVENT_JOB_AUTO_CREATED)
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the farm's job event entity."""
    async_add_entities([JobEventEntity(entry)])


class JobEventEntity(EventEntity):
    """Carries print_farm_job_* bus events: queued, started, finished, failed, cancelled, auto_created."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_translation_key = "job"
    _attr_event_types = list(EVENT_TYPES.values())

    def __init__(self, entry: PrintFarmConfigEntry) -> None:
        """Attach the entity to the farm's device."""
        self._attr_unique_id = f"{entry.entry_id}_job_events"
        self._attr_device_info = farm_device(entry)

    async def async_added_to_hass(self) -> None:
        """Listen to the job events on the bus."""
        for event_type in EVENT_TYPES:
            self.async_on_remove(self.hass.bus.async_listen(event_type, self._job_event))

    @callback
    def _job_event(self, event: Event) -> None:
        # Transitions carry {"job": <print-jobs body>}; auto_created carries the Printernizer job itself.
        job = event.data.get("job") or event.data
        self._trigger_event(
            EVENT_TYPES[str(event.event_type)],
            {
                "job_id": job.get("id"),
                "status": job.get("status"),
                "printer_id": job.get("printer_id") or (job.get("printer") or {}).get("id"),
                "filename": job.get("filename") or (job.get("print_item") or {}).get("filename"),
            },
        )
        self.async_write_ha_state()
