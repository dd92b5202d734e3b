"""Home Assistant's entry points: the actions and REST views once, then the farm of the config entry."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.typing import ConfigType

from .api import async_register_views
from .api.events import async_announce_jobs
from .const import DOMAIN
from .entity import ams_device_unit
from .rules.settings import INSTALL_VOICE_SENTENCES
from .runtime.discovery import async_start_discovery
from .runtime.farm import PrintFarm, PrintFarmConfigEntry
from .runtime.items import async_remove_leftovers
from .runtime.voice import async_sync_sentences
from .services import async_setup_services

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.LIGHT,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Sweep what a hard kill left of uploads, then register the actions and REST views once."""
    await async_remove_leftovers(hass)  # before the views: no upload can be under way
    async_setup_services(hass)
    async_register_views(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PrintFarmConfigEntry) -> bool:
    """Start the farm: its printers connect in the background."""
    farm = PrintFarm(hass, entry)
    entry.async_on_unload(async_announce_jobs(hass, farm))
    await farm.async_setup()
    entry.runtime_data = farm
    entry.async_on_unload(farm.async_shutdown)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await farm.async_sync()
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    entry.async_on_unload(await async_start_discovery(hass, entry))
    await async_sync_sentences(hass, farm.settings[INSTALL_VOICE_SENTENCES])
    return True


async def _async_entry_updated(hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
    """Follow added, changed and removed subentries without restarting the other printers."""
    await entry.runtime_data.async_sync()
    await async_sync_sentences(hass, entry.runtime_data.settings[INSTALL_VOICE_SENTENCES])


async def async_unload_entry(hass: HomeAssistant, entry: PrintFarmConfigEntry) -> bool:
    """Stop the farm."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let a person delete an AMS unit's device once its printer no longer reports the unit."""
    for printer in entry.runtime_data.printers.values():
        unit_id = ams_device_unit(device, printer.serial)
        if unit_id is not None:
            units = printer.client.fields["ams_units"]
            return units is not None and all(unit.id != unit_id for unit in units)
    return False


async def async_remove_entry(hass: HomeAssistant, entry: PrintFarmConfigEntry) -> None:
    """The farm is removed: every repair it raised goes with it (they name its printers and jobs), and its sentences."""
    await async_sync_sentences(hass, False)  # only the file it wrote; the user's own stays
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if domain == DOMAIN:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
