"""The farm's configuration switch: create jobs for prints started outside Home Assistant."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import farm_device
from .rules.settings import AUTO_CREATE
from .runtime.farm import PrintFarmConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the auto-creation switch."""
    async_add_entities([AutoCreateSwitch(entry)])


class AutoCreateSwitch(SwitchEntity):
    """Whether a print that no job tracks gets a job of its own (the job_creation_auto_create setting)."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_translation_key = "auto_create_jobs"
    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, entry: PrintFarmConfigEntry) -> None:
        """Attach the switch to the farm's device."""
        self._entry = entry
        self._attr_unique_id = f"{entry.entry_id}_{AUTO_CREATE}"
        self._attr_device_info = farm_device(entry)

    @property
    def is_on(self) -> bool:
        """The setting."""
        return bool(self._entry.runtime_data.settings[AUTO_CREATE])

    async def async_added_to_hass(self) -> None:
        """Follow changes made elsewhere (options flow, REST)."""
        self.async_on_remove(self._entry.add_update_listener(self._entry_updated))

    async def _entry_updated(self, hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
        self.async_write_ha_state()

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Create jobs automatically."""
        await self._entry.runtime_data.async_update_settings({AUTO_CREATE: True})

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Do not."""
        await self._entry.runtime_data.async_update_settings({AUTO_CREATE: False})
