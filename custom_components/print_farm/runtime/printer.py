"""One printer in Home Assistant: its client, its device, its listeners and its operations."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.device_registry import DeviceInfo

from ..const import (
    CONF_ACCESS_CODE,
    CONF_FINGERPRINT,
    CONF_FTPS_PORT,
    CONF_MQTT_PORT,
    CONF_SERIAL,
    DOMAIN,
    LOGGER,
)
from ..protocols.bambu import (
    DEFAULT_FTPS_PORT,
    DEFAULT_MQTT_PORT,
    FIELD_CONNECTION,
    FIELD_VERSION,
    BambuAuthError,
    BambuClient,
    BambuCommandError,
    BambuConnectionError,
    BambuError,
    BambuTimeoutError,
    ConnectionState,
    upload,
)
from ..protocols.bambu.client import ACK_TIMEOUT
from ..protocols.bambu.tls import fetch_fingerprint
from ..rules.settings import WATCHDOG_SECONDS, settings_of
from .printer_alerts import ErrorAnnouncer
from .workflow_issues import async_failed_plate_cleared

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

type FieldListener = Callable[[], None]
FIELD_SIGNING: Final = "signing_required"
# Not a field of the printer's reports: a file on its way to the printer (its entities follow it).
FIELD_UPLOAD: Final = "upload"
# Seconds a command waits for the printer's acknowledgement (subentry data; 10 when not set), as an
# OttoEject's `ack_timeout`.
CONF_ACK_TIMEOUT: Final = "ack_timeout"


class PrinterUnavailableError(HomeAssistantError):
    """The printer cannot be reached (REST answers 503)."""


class PrinterCommandError(HomeAssistantError):
    """The printer was reached but the operation failed (REST answers 502)."""


def _shown_serial(serial: str | None) -> str:
    """A serial number fit to show: the certificate's CN is whatever the other device put there."""
    return serial if serial and serial.isalnum() and len(serial) <= 32 else "?"


def printer_errors[F: Callable[..., Coroutine[Any, Any, Any]]](func: F) -> F:
    """Turn the client's errors into translated Home Assistant errors, in one place."""

    @wraps(func)
    async def wrapper(self: PrinterCoordinator, *args: Any, **kwargs: Any) -> Any:
        try:
            return await func(self, *args, **kwargs)
        except BambuConnectionError as err:
            raise PrinterUnavailableError(
                translation_domain=DOMAIN,
                translation_key="printer_offline",
                translation_placeholders={"name": self.name},
            ) from err
        except BambuTimeoutError as err:
            raise PrinterCommandError(
                translation_domain=DOMAIN,
                translation_key="printer_timeout",
                translation_placeholders={"name": self.name},
            ) from err
        except BambuCommandError as err:
            raise PrinterCommandError(
                translation_domain=DOMAIN,
                translation_key="printer_refused",
                translation_placeholders={"name": self.name, "reason": str(err)},
            ) from err
        except BambuError as err:
            raise PrinterCommandError(
                translation_domain=DOMAIN,
                translation_key="printer_error",
                translation_placeholders={"name": self.name, "error": str(err)},
            ) from err

    return cast(F, wrapper)


class PrinterCoordinator:
    """Owns one printer's client and tells its entities which fields changed."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrintFarmConfigEntry,
        subentry: ConfigSubentry,
        printer_id: int,
    ) -> None:
        """Prepare the printer; async_start connects it."""
        self.hass = hass
        self.entry = entry
        self.subentry = subentry
        self.printer_id = printer_id
        data = subentry.data
        self.serial: str = data[CONF_SERIAL]
        self.client = self._make_client()
        # What the client was built from: Home Assistant updates subentries in place.
        self._applied = (dict(data), subentry.title)
        # Listeners by the field they read, so a report wakes only the entities it concerns.
        self._listeners: dict[FieldListener, frozenset[str]] = {}
        self.upload: tuple[str, int] | None = None  # a file on its way here: (name, percent sent)
        self._by_field: dict[str, list[FieldListener]] = {}
        self._remove_client_listener: CALLBACK_TYPE | None = None
        self._alerts = ErrorAnnouncer(self)
        # The stored address failed (nothing answered, or another printer did) since the client started.
        self._address_failed = False
        self._checking_address: str | None = None

    def _make_client(self) -> BambuClient:
        data = self.subentry.data
        return BambuClient(
            self.hass.loop,
            data[CONF_HOST],
            self.serial,
            data[CONF_ACCESS_CODE],
            port=data.get(CONF_MQTT_PORT, DEFAULT_MQTT_PORT),
            fingerprint=data.get(CONF_FINGERPRINT),
            watchdog=float(settings_of(self.entry.options)[WATCHDOG_SECONDS]),
            ack_timeout=float(data.get(CONF_ACK_TIMEOUT) or ACK_TIMEOUT),
        )

    @property
    def host(self) -> str:
        """The printer's address."""
        return str(self.subentry.data[CONF_HOST])

    @property
    def details(self) -> dict[str, Any]:
        """What the REST API stores about the printer (brand, type, build volume, filament)."""
        record = self.entry.runtime_data.registry.get(self.subentry.subentry_id)
        if record:
            return dict(record)
        return {"brand": "Bambu Lab", "type": "FDM", "build_volume": None, "filament": None}

    @property
    def name(self) -> str:
        """The printer's name (the subentry's title)."""
        return self.subentry.title

    @property
    def model(self) -> str | None:
        """The model the printer reported, else the one stored at setup."""
        if self.client.version and self.client.version.model:
            return self.client.version.model
        return self.subentry.data.get("model")

    @property
    def device_info(self) -> DeviceInfo:
        """The printer's device, identified by its serial number."""
        version = self.client.version
        return DeviceInfo(
            identifiers={(DOMAIN, self.serial)},
            manufacturer="Bambu Lab",
            model=self.model,
            name=self.name,
            serial_number=self.serial,
            sw_version=(version.firmware if version else None) or self.subentry.data.get("firmware"),
        )

    async def async_start(self) -> None:
        """Connect (in the background) and follow the printer."""
        self._remove_client_listener = self.client.add_listener(self._on_change)
        self.client.start()

    async def async_stop(self) -> None:
        """Disconnect."""
        if self._remove_client_listener is not None:
            self._remove_client_listener()
            self._remove_client_listener = None
        await self.client.stop()

    async def async_apply_subentry(self, subentry: ConfigSubentry) -> None:
        """Follow a changed subentry (Home Assistant changes it in place): reconnect only for new connection details."""
        self.subentry = subentry
        applied = (dict(subentry.data), subentry.title)
        if applied == self._applied:
            return
        # What the MQTT client is built from; the FTPS and camera ports and the ejection keys are read when used.
        client_keys = (CONF_HOST, CONF_ACCESS_CODE, CONF_MQTT_PORT, CONF_FINGERPRINT, CONF_ACK_TIMEOUT)
        reconnect = any(applied[0].get(key) != self._applied[0].get(key) for key in client_keys)
        self._applied = applied
        if reconnect:
            await self.async_stop()
            self.client = self._make_client()
            self._address_failed = False
            await self.async_start()
        self._update_device()
        # Every entity re-reads its value (from the new client, if there is one).
        for listener in tuple(self._listeners):
            listener()

    @callback
    def async_add_listener(self, listener: FieldListener, fields: frozenset[str]) -> CALLBACK_TYPE:
        """Call listener() whenever one of the fields changes."""
        self._listeners[listener] = fields
        for field in fields:
            self._by_field.setdefault(field, []).append(listener)

        @callback
        def remove() -> None:
            for field in self._listeners.pop(listener, ()):
                self._by_field[field].remove(listener)

        return remove

    @callback
    def _on_change(self, changed: frozenset[str]) -> None:
        if FIELD_CONNECTION in changed:
            connection = self.client.connection
            if connection in (ConnectionState.DISCONNECTED, ConnectionState.WRONG_PRINTER):
                self._address_failed = True
            elif connection is ConnectionState.CONNECTED:
                self._address_failed = False
            self._update_issues()
        if FIELD_SIGNING in changed:
            self._update_signing_issue()
        if "errors" in changed:
            self._alerts.update()
        if FIELD_VERSION in changed:
            self._update_device()
        by_field = self._by_field
        if len(changed) == 1:
            (field,) = changed
            for listener in tuple(by_field.get(field, ())):
                listener()
            return
        # dict.fromkeys: each listener once, in a stable order.
        for listener in tuple(
            dict.fromkeys(listener for field in changed for listener in by_field.get(field, ()))
        ):
            listener()

    @callback
    def _update_issues(self) -> None:
        """Raise or clear the repairs that only the user can fix."""
        connection = self.client.connection
        auth_issue = f"access_code_refused_{self.subentry.subentry_id}"
        cert_issue = f"certificate_changed_{self.subentry.subentry_id}"
        wrong_issue = f"wrong_printer_{self.subentry.subentry_id}"
        data: dict[str, str | int | float | None] = {
            "entry_id": self.entry.entry_id,
            "subentry_id": self.subentry.subentry_id,
        }
        if connection is ConnectionState.AUTH_FAILED:
            self._raise_auth_issue()
        elif connection is ConnectionState.CERTIFICATE_CHANGED:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                cert_issue,
                data={**data, "fingerprint": self.client.presented_fingerprint},
                is_fixable=True,
                severity=ir.IssueSeverity.ERROR,
                translation_key="certificate_changed",
                translation_placeholders={
                    "name": self.name,
                    "fingerprint": self.client.presented_fingerprint or "?",
                },
            )
        elif connection is ConnectionState.WRONG_PRINTER:
            # Never the certificate repair: trusting the other printer's certificate cannot fix this.
            found = _shown_serial(self.client.found_serial)
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                wrong_issue,
                data={**data, "found_serial": found},
                is_fixable=True,
                severity=ir.IssueSeverity.ERROR,
                translation_key="wrong_printer",
                translation_placeholders={"name": self.name, "host": self.host, "found_serial": found},
            )
        elif connection is ConnectionState.CONNECTED:
            for issue in (auth_issue, cert_issue, wrong_issue):
                ir.async_delete_issue(self.hass, DOMAIN, issue)

    @callback
    def async_heard_at(self, host: str) -> None:
        """Discovery heard this printer at host: move it there if its stored address fails.

        A working printer is never moved (one with two interfaces announces both addresses), and
        the new address must present the pinned certificate first: anyone can send a NOTIFY.
        """
        if host == self.host or self.client.online or not self._address_failed or self._checking_address:
            return
        self._checking_address = host
        self.entry.async_create_task(self.hass, self._async_move_to(host), f"{DOMAIN} check {host}")

    async def _async_move_to(self, host: str) -> None:
        data = self.subentry.data
        port = int(data.get(CONF_MQTT_PORT, DEFAULT_MQTT_PORT))
        try:
            seen = await self.hass.async_add_executor_job(fetch_fingerprint, host, port, self.serial, 5.0)
        except BambuError as err:
            LOGGER.debug(
                "%s was heard at %s, but it does not answer there as itself: %s", self.name, host, err
            )
            return
        finally:
            self._checking_address = None
        if data.get(CONF_FINGERPRINT) not in (None, seen):
            LOGGER.debug("%s was heard at %s, which presents another certificate", self.name, host)
            return
        # It may have come back meanwhile, or been changed or removed by the user.
        if (
            self.client.online
            or not self._address_failed
            or self.subentry.data is not data
            or self.subentry.subentry_id not in self.entry.subentries
        ):
            return
        LOGGER.info("%s moved from %s to %s (heard on the network)", self.name, self.host, host)
        self.hass.config_entries.async_update_subentry(
            self.entry, self.subentry, data={**data, CONF_HOST: host}
        )

    @callback
    def _set_upload(self, name: str | None, percent: int | None) -> None:
        """A file on its way to the printer (its name and percent sent), or None when none is."""
        upload = None if name is None or percent is None else (name, percent)
        if upload != self.upload:
            self.upload = upload
            self._on_change(frozenset({FIELD_UPLOAD}))

    @callback
    def _raise_auth_issue(self) -> None:
        """Ask for the new access code (the repair flow checks it against the printer)."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"access_code_refused_{self.subentry.subentry_id}",
            data={"entry_id": self.entry.entry_id, "subentry_id": self.subentry.subentry_id},
            is_fixable=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="access_code_refused",
            translation_placeholders={"name": self.name},
        )

    @callback
    def async_forget_issues(self) -> None:
        """The printer left the farm: the repairs that named it go with it."""
        for kind in ("access_code_refused", "certificate_changed", "wrong_printer", "signed_commands"):
            ir.async_delete_issue(self.hass, DOMAIN, f"{kind}_{self.subentry.subentry_id}")
        async_failed_plate_cleared(self.hass, self.printer_id)

    @property
    def requires_signing(self) -> bool:
        """Whether the printer refuses unsigned print commands (its authorization control is on)."""
        return bool(self.client.fields.get(FIELD_SIGNING))

    @callback
    def _update_signing_issue(self) -> None:
        """Tell the user once a printer asks for signed commands; they are never sent to it unsigned."""
        issue = f"signed_commands_{self.subentry.subentry_id}"
        if self.requires_signing:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="signed_commands_required",
                translation_placeholders={"name": self.name},
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, issue)

    def _refuse_unsigned(self) -> None:
        if self.requires_signing:
            raise PrinterCommandError(
                translation_domain=DOMAIN,
                translation_key="signed_commands_required",
                translation_placeholders={"name": self.name},
            )

    @callback
    def _update_device(self) -> None:
        device_registry = dr.async_get(self.hass)
        if device := device_registry.async_get_device(identifiers={(DOMAIN, self.serial)}):
            info = self.device_info
            device_registry.async_update_device(
                device.id,
                model=info.get("model"),
                sw_version=info.get("sw_version"),
                name=info.get("name"),
            )

    # --- operations: the actions, buttons and REST views all call these ------------------

    @printer_errors
    async def async_pause(self) -> None:
        """Pause the current print."""
        await self.client.pause()

    @printer_errors
    async def async_resume(self) -> None:
        """Resume the paused print."""
        await self.client.resume()

    @printer_errors
    async def async_stop_print(self) -> None:
        """Stop the current print."""
        await self.client.stop_print()

    @printer_errors
    async def async_set_light(self, on: bool) -> None:
        """Turn the chamber light on or off (both of them on a printer with two)."""
        await self.client.set_chamber_light(on)

    @printer_errors
    async def async_set_print_speed(self, level: int) -> None:
        """Set the print speed level (1 silent to 4 ludicrous)."""
        await self.client.set_print_speed(level)

    @printer_errors
    async def async_send_gcode(self, gcode: str) -> None:
        """Run G-code lines on the printer (never unsigned to one that refuses it)."""
        self._refuse_unsigned()
        await self.client.send_gcode(gcode)

    @printer_errors
    async def async_start_print(self, filename: str, **options: Any) -> None:
        """Start a file that is on the printer's storage (never unsigned to one that refuses it)."""
        self._refuse_unsigned()
        await self.client.start_print(filename, **options)

    @printer_errors
    async def async_upload(self, local: Path, remote_name: str) -> int:
        """Send a local file to the printer's storage over FTPS; return its size."""
        data = self.subentry.data
        LOGGER.debug("Uploading %s to %s as %s", local.name, self.name, remote_name)
        shown = -1

        def progress(sent: int, total: int) -> None:  # in the executor's thread
            nonlocal shown
            percent = 100 * sent // total if total else 100
            if percent != shown:  # at most 101 changes, whatever the size
                shown = percent
                self.hass.loop.call_soon_threadsafe(self._set_upload, remote_name, percent)

        self._set_upload(remote_name, 0)
        try:
            return await self.hass.async_add_executor_job(
                lambda: upload(
                    self.host,
                    self.serial,
                    data[CONF_ACCESS_CODE],
                    local,
                    remote_name,
                    port=data.get(CONF_FTPS_PORT, DEFAULT_FTPS_PORT),
                    fingerprint=data.get(CONF_FINGERPRINT),
                    deadline=3600,
                    progress=progress,
                )
            )
        except BambuAuthError as err:
            # The code changed (LAN mode switched off and on) while MQTT kept its session: the same
            # repair as a refused MQTT login asks for the new one.
            self._raise_auth_issue()
            raise PrinterCommandError(
                translation_domain=DOMAIN,
                translation_key="access_code_refused",
                translation_placeholders={"name": self.name},
            ) from err
        finally:
            # The progress the executor queued ran before this task resumed: this comes last.
            self._set_upload(None, None)
