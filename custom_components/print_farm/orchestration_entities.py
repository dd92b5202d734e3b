"""The orchestration's entities on the farm's device: its figures, the next job and why it waits, its health.

The sensor and binary_sensor platforms add them; each is written when the jobs change or a
dispatch decides (and the per-day counter at midnight), never polled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfTime
from homeassistant.core import callback
from homeassistant.helpers.event import async_track_time_change
from homeassistant.util import dt as dt_util

from .entity import ShownEntity, farm_device
from .rules.jobs import PRINTING
from .runtime.endings import local_day
from .runtime.farm import PrintFarm, PrintFarmConfigEntry

# The wait reasons shown as an attribute: the first jobs of the queue (attributes stay small).
MAX_WAITING_SHOWN: Final = 20


def _active_workflows(farm: PrintFarm) -> int:
    """Printing jobs, and plates of failed prints on their way to the rack."""
    return sum(
        1
        for job in farm.jobs.store.jobs.values()
        if job.status == PRINTING or (job.workflow is not None and not job.workflow.get("done"))
    )


def _average_minutes(farm: PrintFarm) -> float | None:
    stats = farm.jobs.store.stats
    return round(stats["completion_seconds"] / stats["completed"] / 60, 1) if stats["completed"] else None


def _next_job(farm: PrintFarm) -> str | None:
    queued = farm.jobs.store.queued()
    return farm.jobs.filename_of(queued[0]) if queued else None


def _next_job_attributes(farm: PrintFarm) -> dict[str, Any]:
    queued = farm.jobs.store.queued()
    waiting = farm.orchestrator.waiting
    first = queued[0] if queued else None
    return {
        "job_id": first.id if first else None,
        "printer_id": first.printer_id if first else None,
        "wait_reason": waiting.get(first.id) if first else None,
        "waiting": {job.id: waiting[job.id] for job in queued[:MAX_WAITING_SHOWN] if job.id in waiting},
    }


@dataclass(frozen=True, kw_only=True)
class OrchestrationSensorDescription(SensorEntityDescription):
    """A figure of the orchestration: a row of the table below."""

    value_fn: Callable[[PrintFarm], Any]
    attributes_fn: Callable[[PrintFarm], dict[str, Any]] | None = None


ORCHESTRATION_SENSORS: tuple[OrchestrationSensorDescription, ...] = (
    OrchestrationSensorDescription(
        key="active_workflows",
        translation_key="active_workflows",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_active_workflows,
    ),
    OrchestrationSensorDescription(
        key="jobs_completed_today",
        translation_key="jobs_completed_today",
        state_class=SensorStateClass.TOTAL,
        value_fn=lambda farm: farm.jobs.store.today("completed_today", local_day(dt_util.utcnow())),
    ),
    OrchestrationSensorDescription(
        key="jobs_failed",
        translation_key="jobs_failed",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda farm: farm.jobs.store.stats["failed"],
    ),
    OrchestrationSensorDescription(
        key="average_completion_time",
        translation_key="average_completion_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=0,
        value_fn=_average_minutes,
    ),
    OrchestrationSensorDescription(
        key="next_job",
        translation_key="next_job",
        value_fn=_next_job,
        attributes_fn=_next_job_attributes,
    ),
)


class _FarmEntity(ShownEntity):
    """An entity of the farm's device, written when the jobs change or a dispatch decides."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: PrintFarmConfigEntry, key: str) -> None:
        self.farm = entry.runtime_data
        self._attr_unique_id = f"{entry.entry_id}_{key}"
        self._attr_device_info = farm_device(entry)

    async def async_added_to_hass(self) -> None:
        """Follow the jobs, the dispatch decisions, and the day's turn."""
        self._shown = self.shown()
        self.async_on_remove(self.farm.jobs.async_add_listener(self._write_if_changed))
        self.async_on_remove(self.farm.orchestrator.async_add_listener(self._write_if_changed))
        self.async_on_remove(async_track_time_change(self.hass, self._new_day, hour=0, minute=0, second=1))

    @callback
    def _new_day(self, _now: datetime) -> None:
        self._write_if_changed()


class OrchestrationSensor(_FarmEntity, SensorEntity):
    """A figure of the orchestration."""

    entity_description: OrchestrationSensorDescription

    def __init__(self, entry: PrintFarmConfigEntry, description: OrchestrationSensorDescription) -> None:
        """Bind the sensor to the farm."""
        super().__init__(entry, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> Any:
        """The value."""
        return self.entity_description.value_fn(self.farm)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The attributes, where the description has some."""
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self.farm) if attributes_fn else None


HEALTH = BinarySensorEntityDescription(
    key="orchestration_problem",
    translation_key="orchestration_problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


class OrchestrationHealthSensor(_FarmEntity, BinarySensorEntity):
    """On when the orchestration has a problem (the health route's 503), with what is wrong."""

    entity_description = HEALTH

    def __init__(self, entry: PrintFarmConfigEntry) -> None:
        """Bind the sensor to the farm."""
        super().__init__(entry, HEALTH.key)

    @property
    def is_on(self) -> bool:
        """Whether something does not work (job processing switched off on purpose is fine)."""
        return not self.farm.orchestrator.health().healthy

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What does not work, and the state of each service."""
        health = self.farm.orchestrator.health()
        return {"issues": health.issues, **health.services}
