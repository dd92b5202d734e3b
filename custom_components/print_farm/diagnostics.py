"""Diagnostics: the farm's configuration and each printer's state, with every secret redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_ACCESS_CODE, CONF_SERIAL
from .runtime.farm import PrintFarmConfigEntry

TO_REDACT = {
    CONF_ACCESS_CODE,
    "access_code",
    "api_key",
    "password",
    "token",
    CONF_SERIAL,
    "sn",
    "serial_number",
    "ip",
    "host",
    "rtsp_url",  # the printer's LAN address (and, on some firmware, the access code)
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PrintFarmConfigEntry
) -> dict[str, Any]:
    """What the farm runs and what its printers last said."""
    farm = entry.runtime_data
    return {
        "entry": async_redact_data(dict(entry.data), TO_REDACT),
        "printers": [
            {
                "id": printer.printer_id,
                "subentry": async_redact_data(dict(printer.subentry.data), TO_REDACT),
                "connection": printer.client.connection,
                "online": printer.client.online,
                "version": repr(printer.client.version),
                "fields": async_redact_data(
                    {key: repr(value) for key, value in printer.client.fields.items()}, TO_REDACT
                ),
                "raw": async_redact_data(_copy(printer.client.state.raw), TO_REDACT),
            }
            for printer in farm.printers.values()
        ],
    }


def _copy(raw: dict[str, Any]) -> dict[str, Any]:
    """Copy the raw report, which paho's thread may be merging into right now."""
    for _ in range(5):
        try:
            return dict(raw)
        except RuntimeError:  # changed size during the copy: try again
            continue
    return {}
