"""REST mirror of the OttoEngine Ottoeject API at /api/print_farm/ottoeject."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from homeassistant.const import CONF_API_KEY, CONF_HOST, CONF_PORT
from homeassistant.exceptions import HomeAssistantError
import voluptuous as vol

from ..const import DOMAIN
from ..protocols.moonraker import DEFAULT_PORT, EjectorState
from ..rules.errors import SetupError
from ..runtime.ottoeject import (
    EjectorBusyError,
    EjectorCoordinator,
    EjectorUnavailableError,
    EjectorUnknownMacroError,
    async_add_ottoeject,
    async_update_ottoeject,
)
from .base import API_PREFIX, ApiError, FarmView, Operation, int_id, operation
from .shapes import ANY, INTEGER, MESSAGE, STRING, array, extend, one_of, shape

_NAME = vol.All(str, vol.Strip, vol.Length(min=1, max=100))
_PORT = vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))
_OPTIONAL: dict[vol.Marker, Any] = {
    vol.Optional("port"): _PORT,
    vol.Optional("api_key"): vol.Any(None, vol.All(str, vol.Length(max=200))),
}
REGISTER_SCHEMA = vol.Schema(
    {vol.Required("device_name"): _NAME, vol.Required("ip_address"): _NAME, **_OPTIONAL}
)
UPDATE_SCHEMA = vol.Schema(
    {vol.Optional("device_name"): _NAME, vol.Optional("ip_address"): _NAME, **_OPTIONAL}
)
MACRO_SCHEMA = vol.Schema(
    {
        vol.Required("macro"): vol.All(str, vol.Length(min=1, max=100)),
        vol.Optional("params"): {vol.All(str, vol.Length(min=1, max=50)): vol.Any(str, int, float)},
    }
)
_SETUP_ERRORS = {
    "cannot_connect": (502, "Cannot reach Moonraker at this address and port."),
    "invalid_auth": (400, "Moonraker refused the API key."),
    "already_configured": (409, "An Ottoeject at this address and port is already registered."),
}


def _setup_error(err: SetupError) -> ApiError:
    status, message = _SETUP_ERRORS.get(err.reason, (400, err.reason))
    return ApiError(status, message)


SUMMARY_BODY = shape({"id": INTEGER, "device_name": STRING, "status": one_of(EjectorState)})
_CHANGED_BODY = extend(SUMMARY_BODY, message=STRING)
MACRO_SENT_BODY = shape({"message": STRING, "moonraker_response": ANY})


def _summary(ejector: EjectorCoordinator) -> dict[str, Any]:
    return {"id": ejector.ejector_id, "device_name": ejector.device_name, "status": str(ejector.state)}


def _connection(body: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    data = dict(current or {})
    if "ip_address" in body:
        data[CONF_HOST] = body["ip_address"]
    if "port" in body:
        data[CONF_PORT] = body["port"]
    if "api_key" in body:
        data[CONF_API_KEY] = body["api_key"]
    return data


class _EjectorView(FarmView):
    def ejector(self, ejector_id: str) -> EjectorCoordinator:
        ejector = self.farm().ejector_by_id(int_id(ejector_id, "Ottoeject"))
        if ejector is None:
            raise ApiError(404, f"Ottoeject {ejector_id} not found")
        return ejector


class EjectorsView(FarmView):
    """/ottoeject: list and register."""

    url = f"{API_PREFIX}/ottoeject"
    extra_urls = [f"{API_PREFIX}/ottoeject/"]
    name = f"api:{DOMAIN}:ottoeject"

    @operation(
        Operation(
            summary="List Ottoejects with their last polled status",
            admin=False,
            responses={200: "The Ottoejects"},
            returns={200: array(SUMMARY_BODY)},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """All OttoEjects."""
        ejectors = sorted(self.farm().ejectors.values(), key=lambda ejector: ejector.ejector_id)
        return self.json([_summary(ejector) for ejector in ejectors])

    @operation(
        Operation(
            summary="Register an Ottoeject (Moonraker is reached first)",
            body=REGISTER_SCHEMA,
            responses={
                201: "Registered",
                400: "Invalid body or API key refused",
                409: "Already registered",
                502: "Moonraker cannot be reached",
            },
            returns={201: _CHANGED_BODY},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Validate like the "Add OttoEject" form, then add the subentry."""
        farm = self.farm()
        try:
            ejector = await async_add_ottoeject(
                self.hass, farm.entry, body["device_name"], _connection(body, {CONF_PORT: DEFAULT_PORT})
            )
        except SetupError as err:
            raise _setup_error(err) from None
        return self.json(
            {**_summary(ejector), "message": "Ottoeject registered successfully"}, status_code=201
        )


class EjectorView(_EjectorView):
    """/ottoeject/{id}: get, update, delete."""

    url = f"{API_PREFIX}/ottoeject/{{ejector_id}}"
    name = f"api:{DOMAIN}:ottoeject:item"

    @operation(
        Operation(
            summary="An Ottoeject with its live status",
            admin=False,
            responses={200: "The Ottoeject", 404: "Unknown Ottoeject"},
            returns={200: SUMMARY_BODY},
        )
    )
    async def get(self, request: web.Request, ejector_id: str) -> web.Response:
        """Stored details and the live status."""
        ejector = self.ejector(ejector_id)
        await ejector.async_live_status()
        return self.json(_summary(ejector))

    @operation(
        Operation(
            summary="Update an Ottoeject (a new address is reached first)",
            body=UPDATE_SCHEMA,
            responses={
                200: "Updated",
                400: "Invalid body",
                404: "Unknown Ottoeject",
                409: "Address taken",
                502: "Moonraker cannot be reached",
            },
            returns={200: _CHANGED_BODY},
        )
    )
    async def put(self, request: web.Request, ejector_id: str, body: dict[str, Any]) -> web.Response:
        """Rename, or move to another address (tested before saving)."""
        ejector = self.ejector(ejector_id)
        try:
            await async_update_ottoeject(
                self.hass,
                ejector.config_entry,
                ejector,
                body.get("device_name", ejector.device_name),
                _connection(body, dict(ejector.subentry.data)),
            )
        except SetupError as err:
            raise _setup_error(err) from None
        return self.json({**_summary(ejector), "message": "Ottoeject updated successfully"})

    @operation(
        Operation(
            summary="Remove an Ottoeject",
            responses={200: "Deleted", 404: "Unknown Ottoeject", 409: "A job's plate depends on it"},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, ejector_id: str) -> web.Response:
        """Remove the subentry and its device."""
        ejector = self.ejector(ejector_id)
        farm = self.farm()
        if (holder := farm.ejection.placement.in_use(ejector_id=ejector.ejector_id)) is not None:
            raise ApiError(409, f"Print job {holder}'s plate depends on this Ottoeject now: remove it later.")
        self.hass.config_entries.async_remove_subentry(farm.entry, ejector.subentry.subentry_id)
        await farm.async_sync()
        return self.json({"message": "Ottoeject deleted successfully"})


class EjectorStatusView(_EjectorView):
    """/ottoeject/{id}/status."""

    url = f"{API_PREFIX}/ottoeject/{{ejector_id}}/status"
    name = f"api:{DOMAIN}:ottoeject:status"

    @operation(
        Operation(
            summary="Live status: ONLINE, EJECTING, OFFLINE or ISSUE",
            admin=False,
            responses={200: "The status", 404: "Unknown Ottoeject"},
            returns={200: SUMMARY_BODY},
        )
    )
    async def get(self, request: web.Request, ejector_id: str) -> web.Response:
        """Poll the device now."""
        ejector = self.ejector(ejector_id)
        await ejector.async_live_status()
        return self.json(_summary(ejector))


class EjectorMacroView(_EjectorView):
    """/ottoeject/{id}/macros: run a macro."""

    url = f"{API_PREFIX}/ottoeject/{{ejector_id}}/macros"
    name = f"api:{DOMAIN}:ottoeject:macros"

    @operation(
        Operation(
            summary="Run a Klipper macro once",
            body=MACRO_SCHEMA,
            responses={
                202: "Sent and acknowledged",
                400: "Unknown macro or bad parameters",
                404: "Unknown Ottoeject",
                409: "Klipper not ready, or a macro is running",
                502: "Acknowledgement timed out (poll the status), or Klipper refused the macro",
                503: "Moonraker cannot be reached",
            },
            returns={202: MACRO_SENT_BODY},
        )
    )
    async def post(self, request: web.Request, ejector_id: str, body: dict[str, Any]) -> web.Response:
        """Send the macro; past the acknowledgement wait answer the seed's 502 and keep it running."""
        ejector = self.ejector(ejector_id)
        macro = body["macro"]
        try:
            outcome = await ejector.async_run_macro(macro, body.get("params"))
        except EjectorUnknownMacroError as err:
            raise ApiError(400, str(err)) from None
        except EjectorUnavailableError as err:
            raise ApiError(503, str(err)) from None
        except EjectorBusyError as err:
            raise ApiError(409, str(err)) from None
        except HomeAssistantError as err:
            raise ApiError(502, str(err)) from None
        if not outcome.acknowledged:
            return self.json(
                {
                    "error": "Macro Execution Proxy Error",
                    "message": (
                        f"Command '{macro}' sent to Ottoeject, but acknowledgement from device timed out. "
                        f"External polling for completion is required. Detail: {outcome.detail}"
                    ),
                    "moonraker_details": None,
                },
                status_code=502,
            )
        return self.json(
            {
                "message": f"Macro '{macro}' command sent to Ottoeject {ejector.ejector_id}.",
                "moonraker_response": outcome.response,
            },
            status_code=202,
        )


EJECTOR_VIEWS: list[type[FarmView]] = [EjectorsView, EjectorView, EjectorStatusView, EjectorMacroView]
