"""Adding, changing and removing printers: the config flow and the REST API both come here."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_NAME
from homeassistant.core import HomeAssistant

from ..const import (
    CONF_ACCESS_CODE,
    CONF_CAMERA_PORT,
    CONF_EJECT_GCODE,
    CONF_FINGERPRINT,
    CONF_FIRMWARE,
    CONF_FTPS_PORT,
    CONF_MODEL,
    CONF_MQTT_PORT,
    CONF_OTTOEJECT,
    CONF_POSITION,
    CONF_SERIAL,
    CONF_SETTLE,
    SUBENTRY_PRINTER,
)
from ..protocols.bambu import (
    DEFAULT_CAMERA_PORT,
    DEFAULT_FTPS_PORT,
    DEFAULT_MQTT_PORT,
    BambuAuthError,
    BambuCertificateError,
    BambuConnectionError,
    BambuSerialError,
    probe,
)
from ..rules.errors import SetupError

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry
    from .printer import PrinterCoordinator

# The subentry keys that say which OttoEject takes the printer's plates, and how.
EJECTION_KEYS: Final = (CONF_OTTOEJECT, CONF_POSITION, CONF_EJECT_GCODE, CONF_SETTLE)


async def async_validate_printer(
    hass: HomeAssistant, data: dict[str, Any], *, pinned: str | None = None
) -> dict[str, Any]:
    """Connect to the printer as given and return the subentry data to store.

    A new printer's certificate is pinned here (trust on first use) after its CN has been checked
    against the serial; a known printer (`pinned`) must present the pinned certificate, so that a
    changed one goes through the repair that asks the user, never silently. The model and
    firmware come from the printer.
    Raises SetupError with cannot_connect, invalid_auth, wrong_serial or certificate_changed.
    """
    serial = data[CONF_SERIAL].strip().upper()
    mqtt_port = int(data.get(CONF_MQTT_PORT) or DEFAULT_MQTT_PORT)
    try:
        fingerprint, version = await probe(
            hass.loop,
            data[CONF_HOST].strip(),
            serial,
            data[CONF_ACCESS_CODE],
            port=mqtt_port,
            fingerprint=pinned,
        )
    except BambuAuthError as err:
        raise SetupError("invalid_auth") from err
    except BambuSerialError as err:
        raise SetupError("wrong_serial") from err
    except BambuCertificateError as err:
        raise SetupError("certificate_changed") from err
    except (BambuConnectionError, ValueError) as err:
        raise SetupError("cannot_connect") from err
    return {
        CONF_HOST: data[CONF_HOST].strip(),
        CONF_SERIAL: serial,
        CONF_ACCESS_CODE: data[CONF_ACCESS_CODE],
        CONF_MQTT_PORT: mqtt_port,
        CONF_FTPS_PORT: int(data.get(CONF_FTPS_PORT) or DEFAULT_FTPS_PORT),
        CONF_CAMERA_PORT: int(data.get(CONF_CAMERA_PORT) or DEFAULT_CAMERA_PORT),
        CONF_FINGERPRINT: fingerprint,
        CONF_MODEL: version.model,
        CONF_FIRMWARE: version.firmware,
    }


def is_configured(entry: PrintFarmConfigEntry, serial: str, *, except_subentry: str | None = None) -> bool:
    """Whether a printer with this serial number is already part of the farm."""
    return any(
        subentry.unique_id == serial.strip().upper() and subentry.subentry_id != except_subentry
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_PRINTER
    )


async def async_add_printer(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, data: dict[str, Any], details: dict[str, Any]
) -> PrinterCoordinator:
    """Validate and add a printer (REST registration); return the running printer."""
    if is_configured(entry, data[CONF_SERIAL]):
        raise SetupError("already_configured")
    validated = await async_validate_printer(hass, data)
    if is_configured(entry, validated[CONF_SERIAL]):  # added meanwhile (two requests at once)
        raise SetupError("already_configured")
    subentry = ConfigSubentry(
        data=MappingProxyType(validated),
        subentry_type=SUBENTRY_PRINTER,
        title=data.get(CONF_NAME) or f"{validated[CONF_MODEL] or 'Printer'} {validated[CONF_SERIAL][-4:]}",
        unique_id=validated[CONF_SERIAL],
    )
    farm = entry.runtime_data
    # The id exists before the subentry does, so the printer comes up with it.
    await farm.registry.async_ensure(subentry.subentry_id, **details)
    hass.config_entries.async_add_subentry(entry, subentry)
    await farm.async_sync()
    return farm.printers[subentry.subentry_id]


async def async_update_printer(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    printer: PrinterCoordinator,
    changes: dict[str, Any],
    details: dict[str, Any],
    ejection: dict[str, Any] | None = None,
) -> PrinterCoordinator:
    """Change a printer (REST update): connection changes are validated before they are saved.

    `ejection` sets the printer's OttoEject keys (CONF_OTTOEJECT, CONF_POSITION, CONF_EJECT_GCODE,
    CONF_SETTLE); a None value removes one.
    """
    subentry = printer.subentry
    data = dict(subentry.data)
    connection_keys = (CONF_HOST, CONF_SERIAL, CONF_ACCESS_CODE, CONF_MQTT_PORT, CONF_FTPS_PORT)
    if CONF_SERIAL in changes and changes[CONF_SERIAL].strip().upper() != data[CONF_SERIAL]:
        raise SetupError("serial_fixed")  # the serial is the printer: add the other one instead
    if any(key in changes and changes[key] != data.get(key) for key in connection_keys):
        candidate = {**data, **{key: changes[key] for key in connection_keys if key in changes}}
        kept = {key: data[key] for key in EJECTION_KEYS if key in data}
        data = {**await async_validate_printer(hass, candidate, pinned=data.get(CONF_FINGERPRINT)), **kept}
    if CONF_CAMERA_PORT in changes:  # used only when someone watches: nothing to test now
        data[CONF_CAMERA_PORT] = changes[CONF_CAMERA_PORT]
    for key, value in (ejection or {}).items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    farm = entry.runtime_data
    if details:
        await farm.registry.async_update(subentry.subentry_id, **details)
    hass.config_entries.async_update_subentry(
        entry,
        subentry,
        data=data,
        title=changes.get(CONF_NAME) or subentry.title,
        unique_id=data[CONF_SERIAL],
    )
    await farm.async_sync()
    return farm.printers[subentry.subentry_id]


async def async_remove_printer(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, printer: PrinterCoordinator
) -> None:
    """Remove a printer and its device."""
    hass.config_entries.async_remove_subentry(entry, printer.subentry.subentry_id)
    await entry.runtime_data.async_sync()
