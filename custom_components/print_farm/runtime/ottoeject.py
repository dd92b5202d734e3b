"""One OttoEject in Home Assistant: Moonraker polled for its status, and its macros run once each."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_API_KEY, CONF_HOST, CONF_PORT, CONF_SCAN_INTERVAL
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from ..const import DOMAIN, LOGGER, SUBENTRY_OTTOEJECT
from ..protocols.moonraker import (
    DEFAULT_PORT,
    EjectorState,
    EjectorStatus,
    MacroOutcome,
    MoonrakerAuthError,
    MoonrakerBusyError,
    MoonrakerClient,
    MoonrakerConnectionError,
    MoonrakerError,
    MoonrakerMacroError,
    MoonrakerNotReadyError,
    MoonrakerUnknownMacroError,
    MoonrakerWatcher,
)
from ..rules.errors import SetupError
from ..rules.workflow import DEFAULT_MACROS, check_template

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

CONF_ACK_TIMEOUT: Final = "ack_timeout"
CONF_MACROS: Final = "macros"  # the workflow's macro templates, by step (rules/workflow.py)
DEFAULT_SCAN_INTERVAL: Final = 5
DEFAULT_ACK_TIMEOUT: Final = 30
# While a macro runs, its end is what the orchestrator waits for: look more often.
EJECTING_INTERVAL: Final = timedelta(seconds=1)
MACRO_HOME: Final = "OTTOEJECT_HOME"
MACRO_PARK: Final = "PARK_OTTOEJECT"


class EjectorUnavailableError(HomeAssistantError):
    """Moonraker cannot be reached (REST answers 503)."""


class EjectorBusyError(HomeAssistantError):
    """Klipper is not ready or a macro is running (REST answers 409)."""


class EjectorUnknownMacroError(HomeAssistantError):
    """The device has no such macro (REST answers 400)."""


class EjectorCommandError(HomeAssistantError):
    """Klipper answered the macro with an error (REST answers 502)."""


def _client(hass: HomeAssistant, data: Mapping[str, Any]) -> MoonrakerClient:
    return MoonrakerClient(
        async_get_clientsession(hass),
        data[CONF_HOST],
        int(data.get(CONF_PORT) or DEFAULT_PORT),
        api_key=data.get(CONF_API_KEY) or None,
        ack_timeout=float(data.get(CONF_ACK_TIMEOUT) or DEFAULT_ACK_TIMEOUT),
    )


def macro_templates(data: Mapping[str, Any]) -> dict[str, str]:
    """An OttoEject's macro templates: the stored ones over the defaults; ValueError for a bad one."""
    stored = data.get(CONF_MACROS) or {}
    templates = {step: str(stored.get(step) or default).strip() for step, default in DEFAULT_MACROS.items()}
    for template in templates.values():
        check_template(template)
    return templates


async def async_validate_ottoeject(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, Any]:
    """Reach Moonraker as given and return the subentry data to store.

    Raises SetupError with cannot_connect (Moonraker does not answer) or invalid_auth (API key).
    A Moonraker whose Klipper is down is accepted: it shows OFFLINE or ISSUE, as the seed says.
    """
    cleaned = {
        CONF_HOST: str(data[CONF_HOST]).strip(),
        CONF_PORT: int(data.get(CONF_PORT) or DEFAULT_PORT),
        CONF_API_KEY: (data.get(CONF_API_KEY) or "").strip() or None,
        CONF_SCAN_INTERVAL: int(data.get(CONF_SCAN_INTERVAL) or DEFAULT_SCAN_INTERVAL),
        CONF_ACK_TIMEOUT: int(data.get(CONF_ACK_TIMEOUT) or DEFAULT_ACK_TIMEOUT),
    }
    try:
        cleaned[CONF_MACROS] = macro_templates(data)
    except ValueError as err:
        raise SetupError("invalid_macro_template") from err
    try:
        client = _client(hass, cleaned)
    except ValueError as err:  # not a host name (a URL, a space...)
        raise SetupError("cannot_connect") from err
    try:
        await client.server_info()
    except MoonrakerAuthError as err:
        raise SetupError("invalid_auth") from err
    except MoonrakerError as err:
        raise SetupError("cannot_connect") from err
    finally:
        await client.close()
    return cleaned


class EjectorCoordinator(DataUpdateCoordinator[EjectorStatus]):
    """Polls one OttoEject and runs its macros."""

    config_entry: PrintFarmConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: PrintFarmConfigEntry, subentry: ConfigSubentry, ejector_id: int
    ) -> None:
        """Prepare the poller; the first refresh happens in the background."""
        self._interval = timedelta(
            seconds=int(subentry.data.get(CONF_SCAN_INTERVAL) or DEFAULT_SCAN_INTERVAL)
        )
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"OttoEject {subentry.title}",
            update_interval=self._interval,
        )
        self.subentry = subentry
        self.ejector_id = ejector_id
        self.client = _client(hass, subentry.data)
        self.macros: list[str] = []
        self._applied = (dict(subentry.data), subentry.title)
        self.watcher = self._watcher()
        self._watching: asyncio.Task[None] | None = None
        self._push_listeners: list[CALLBACK_TYPE] = []
        # The job whose workflow holds the ejector: manual macros are refused meanwhile.
        self.held_by: int | None = None

    def _watcher(self) -> MoonrakerWatcher:
        return MoonrakerWatcher(
            async_get_clientsession(self.hass),
            self.host,
            int(self.subentry.data.get(CONF_PORT) or DEFAULT_PORT),
            api_key=self.subentry.data.get(CONF_API_KEY) or None,
            on_change=self._pushed,
        )

    @callback
    def async_start_watching(self) -> None:
        """Follow Klipper over Moonraker's websocket, for as long as the entry is loaded."""
        self._watching = self.config_entry.async_create_background_task(
            self.hass, self.watcher.run(), f"{DOMAIN} websocket of {self.device_name}"
        )

    def _stop_watching(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            self._watching = None

    @callback
    def _pushed(self) -> None:
        for listener in tuple(self._push_listeners):
            listener()
        # The entities follow too (a poll now rather than at the next interval).
        self.hass.async_create_task(self.async_request_refresh(), eager_start=False)

    @callback
    def async_add_push_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call listener() on every change Moonraker pushes (Klipper's state, a script's start and end)."""
        self._push_listeners.append(listener)
        return lambda: self._push_listeners.remove(listener)

    @property
    def templates(self) -> dict[str, str]:
        """The workflow's macro templates of this OttoEject."""
        return macro_templates(self.subentry.data)

    @property
    def device_name(self) -> str:
        """The OttoEject's name."""
        return self.subentry.title

    @property
    def host(self) -> str:
        """Moonraker's address."""
        return str(self.subentry.data[CONF_HOST])

    @property
    def state(self) -> EjectorState:
        """The last status read (OFFLINE before the first)."""
        return self.data.state if self.data else EjectorState.OFFLINE

    @property
    def device_info(self) -> DeviceInfo:
        """The OttoEject's device, identified by its subentry."""
        return DeviceInfo(
            identifiers={(DOMAIN, f"ottoeject_{self.subentry.subentry_id}")},
            manufacturer="Ottomat3D",
            model="OttoEject",
            name=self.device_name,
            configuration_url=f"http://{self.host}:{self.subentry.data.get(CONF_PORT, DEFAULT_PORT)}",
        )

    async def _async_update_data(self) -> EjectorStatus:
        try:
            status = await self.client.status()
        except MoonrakerAuthError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="ottoeject_auth",
                translation_placeholders={"name": self.device_name},
            ) from err
        # OFFLINE is a status, not a failure: the seed reports an unreachable device that way.
        self.update_interval = EJECTING_INTERVAL if status.state is EjectorState.EJECTING else self._interval
        if status.state is EjectorState.ONLINE and not self.macros:
            try:
                self.macros = await self.client.macros()
            except MoonrakerError:
                LOGGER.debug("%s: macro list not available yet", self.device_name)
        return status

    async def async_apply_subentry(self, subentry: ConfigSubentry) -> None:
        """Follow a changed subentry: a new client for new connection details."""
        self.subentry = subentry
        applied = (dict(subentry.data), subentry.title)
        if applied == self._applied:
            return
        if applied[0] != self._applied[0]:
            await self.client.close()
            self.client = _client(self.hass, subentry.data)
            self._interval = timedelta(
                seconds=int(subentry.data.get(CONF_SCAN_INTERVAL) or DEFAULT_SCAN_INTERVAL)
            )
            self.macros = []
            self._stop_watching()
            self.watcher = self._watcher()
            self.async_start_watching()
        self._applied = applied
        await self.async_refresh()

    async def async_shutdown(self) -> None:
        """Stop polling and let a macro still in flight end on its own."""
        await super().async_shutdown()
        self._stop_watching()
        await self.client.close()

    async def async_live_status(self) -> EjectorStatus:
        """Read the status now (REST status route) and share it with the entities."""
        await self.async_refresh()
        return self.data

    async def async_run_macro(
        self,
        name: str,
        params: Mapping[str, str | int | float] | None = None,
        *,
        marker: str | None = None,
        job_id: int | None = None,
    ) -> MacroOutcome:
        """Run one macro once; errors come translated. A late acknowledgement is an outcome, not an error.

        While a job's workflow holds the ejector, only that workflow (`job_id`) may run a macro: a
        person's (REST, action, button) is refused as busy, with the job that holds it.
        """
        placeholders = {"name": self.device_name, "macro": name}
        if self.held_by is not None and job_id != self.held_by:
            raise EjectorBusyError(
                translation_domain=DOMAIN,
                translation_key="ottoeject_held",
                translation_placeholders={**placeholders, "job": str(self.held_by)},
            )
        try:
            outcome = await self.client.run_macro(name, params, marker=marker)
        except MoonrakerUnknownMacroError as err:
            raise EjectorUnknownMacroError(
                translation_domain=DOMAIN,
                translation_key="unknown_macro",
                translation_placeholders=placeholders,
            ) from err
        except ValueError as err:
            raise EjectorUnknownMacroError(
                translation_domain=DOMAIN,
                translation_key="bad_macro_call",
                translation_placeholders={**placeholders, "error": str(err)},
            ) from err
        except MoonrakerConnectionError as err:
            raise EjectorUnavailableError(
                translation_domain=DOMAIN,
                translation_key="ottoeject_offline",
                translation_placeholders=placeholders,
            ) from err
        except (MoonrakerBusyError, MoonrakerNotReadyError) as err:
            raise EjectorBusyError(
                translation_domain=DOMAIN,
                translation_key="ottoeject_busy",
                translation_placeholders={**placeholders, "error": str(err)},
            ) from err
        except (MoonrakerMacroError, MoonrakerError) as err:
            raise EjectorCommandError(
                translation_domain=DOMAIN,
                translation_key="macro_failed",
                translation_placeholders={**placeholders, "error": str(err)},
            ) from err
        finally:
            await self.async_request_refresh()
        return outcome


def ottoeject_taken(
    entry: PrintFarmConfigEntry, host: str, port: int, *, except_subentry: str | None = None
) -> bool:
    """Whether an OttoEject at this address and port is already part of the farm."""
    return any(
        subentry.subentry_type == SUBENTRY_OTTOEJECT
        and subentry.subentry_id != except_subentry
        and subentry.data[CONF_HOST] == host.strip()
        and int(subentry.data[CONF_PORT]) == int(port)
        for subentry in entry.subentries.values()
    )


async def async_add_ottoeject(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, name: str, data: dict[str, Any]
) -> EjectorCoordinator:
    """Validate and add an OttoEject (REST registration); return it polled once."""
    if ottoeject_taken(entry, data[CONF_HOST], data.get(CONF_PORT) or DEFAULT_PORT):
        raise SetupError("already_configured")
    validated = await async_validate_ottoeject(hass, data)
    subentry = ConfigSubentry(
        data=MappingProxyType(validated), subentry_type=SUBENTRY_OTTOEJECT, title=name, unique_id=None
    )
    hass.config_entries.async_add_subentry(entry, subentry)
    farm = entry.runtime_data
    await farm.async_sync()
    ejector = farm.ejectors[subentry.subentry_id]
    await ejector.async_refresh()
    return ejector


async def async_update_ottoeject(
    hass: HomeAssistant,
    entry: PrintFarmConfigEntry,
    ejector: EjectorCoordinator,
    name: str,
    data: dict[str, Any],
) -> None:
    """Rename an OttoEject or move it (a changed connection is validated before it is saved)."""
    subentry = ejector.subentry
    if data != dict(subentry.data):
        if ottoeject_taken(entry, data[CONF_HOST], data[CONF_PORT], except_subentry=subentry.subentry_id):
            raise SetupError("already_configured")
        data = await async_validate_ottoeject(hass, data)
    hass.config_entries.async_update_subentry(entry, subentry, data=data, title=name)
    await entry.runtime_data.async_sync()
