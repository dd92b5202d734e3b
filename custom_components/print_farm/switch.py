"""The farm's switches: each one of its settings, shared with the options flow and REST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import farm_device
from .rules.settings import AUTO_CREATE, JOB_PROCESSING, JOB_RUN_AUTO_OPEN
from .runtime.farm import PrintFarmConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SettingSwitchDescription(SwitchEntityDescription):
    """A switch that is one of the farm's boolean settings (`key`)."""


SWITCHES: tuple[SettingSwitchDescription, ...] = (
    # Queued jobs with auto_start start by themselves; off, they wait (printing goes on).
    SettingSwitchDescription(key=JOB_PROCESSING, translation_key="job_processing"),
    # A print that no job tracks gets a job of its own.
    SettingSwitchDescription(
        key=AUTO_CREATE, translation_key="auto_create_jobs", entity_category=EntityCategory.CONFIG
    ),
    # Each automatic or orchestrated job opens a production run that its print fills.
    SettingSwitchDescription(
        key=JOB_RUN_AUTO_OPEN, translation_key="job_run_auto_open", entity_category=EntityCategory.CONFIG
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the farm's switches."""
    async_add_entities(SettingSwitch(entry, description) for description in SWITCHES)


class SettingSwitch(SwitchEntity):
    """One boolean setting of the farm."""

    entity_description: SettingSwitchDescription
    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: PrintFarmConfigEntry, description: SettingSwitchDescription) -> None:
        """Attach the switch to the farm's device."""
        self.entity_description = description
        self._entry = entry
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = farm_device(entry)

    @property
    def is_on(self) -> bool:
        """The setting."""
        return bool(self._entry.runtime_data.settings[self.entity_description.key])

    async def async_added_to_hass(self) -> None:
        """Follow changes made elsewhere (options flow, REST)."""
        self.async_on_remove(self._entry.add_update_listener(self._entry_updated))

    async def _entry_updated(self, hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
        self.async_write_ha_state()

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn the setting on."""
        await self._entry.runtime_data.async_update_settings({self.entity_description.key: True})

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn it off."""
        await self._entry.runtime_data.async_update_settings({self.entity_description.key: False})
