"""Discovery that cannot listen does not keep the farm from working: printers are added by address."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.print_farm.const import DOMAIN

from .conftest import printer_subentry_data
from .helpers import wait_until


async def test_a_discovery_address_that_cannot_be_listened_on_is_told_and_the_farm_runs(
    hass: HomeAssistant, sim_printer: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """192.0.2.1 is no address of this machine (TEST-NET-1): binding to it fails."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Print Farm",
        data={"discovery_host": "192.0.2.1", "discovery_port": 2021},
        subentries_data=[
            ConfigSubentryData(
                data=printer_subentry_data(sim_printer),
                subentry_type="printer",
                title="Printer 1",
                unique_id=sim_printer["serial"],
            )
        ],
    )
    entry.add_to_hass(hass)
    with caplog.at_level(logging.WARNING):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert "Cannot listen for printers on 192.0.2.1:2021" in caplog.text
    assert "add them by address" in caplog.text
    printer = next(iter(entry.runtime_data.printers.values()))
    await wait_until(hass, lambda: printer.client.online)
    assert await hass.config_entries.async_unload(entry.entry_id)  # nothing left to close
