"""REST mirror of the OttoEngine Printers API at /api/print_farm/printers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from homeassistant.const import CONF_HOST, CONF_NAME
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
import voluptuous as vol

from ..const import (
    CONF_ACCESS_CODE,
    CONF_CAMERA_PORT,
    CONF_EJECT_GCODE,
    CONF_FTPS_PORT,
    CONF_MQTT_PORT,
    CONF_OTTOEJECT,
    CONF_POSITION,
    CONF_SERIAL,
    CONF_SETTLE,
    DOMAIN,
)
from ..rules.errors import SetupError
from ..rules.files import BadFileName, format_size, sanitize_filename
from ..rules.jobs import JobError
from ..rules.settings import MAX_UPLOAD_MB
from ..runtime.farm import PrintFarm
from ..runtime.printer import PrinterCoordinator, PrinterUnavailableError
from ..runtime.printer_config import async_add_printer, async_remove_printer, async_update_printer
from .base import (
    API_PREFIX,
    ApiError,
    FarmView,
    Operation,
    int_id,
    json_integer,
    operation,
    receive_upload,
)
from .printer_bodies import DETAIL_BODY, STATUS_BODY, SUMMARY_BODY, detail_body, status_body, summary_body
from .shapes import INTEGER, MESSAGE, STRING, array, extend, shape

_BUILD_VOLUME = vol.Schema(
    {
        vol.Required("width_mm"): vol.All(vol.Coerce(float), vol.Range(min=1, max=10000)),
        vol.Required("depth_mm"): vol.All(vol.Coerce(float), vol.Range(min=1, max=10000)),
        vol.Required("height_mm"): vol.All(vol.Coerce(float), vol.Range(min=1, max=10000)),
    }
)
_FILAMENT = vol.Schema({vol.Optional("material"): str, vol.Optional("color"): str, vol.Optional("name"): str})
_PORT = json_integer(1, 65535)  # strict: true, "6000" and 6000.9 are no port
_NONEMPTY = vol.All(str, vol.Strip, vol.Length(min=1, max=200))
_OPTIONAL_FIELDS: dict[vol.Marker, Any] = {
    vol.Optional("brand"): _NONEMPTY,
    vol.Optional("model"): _NONEMPTY,
    vol.Optional("type"): _NONEMPTY,
    vol.Optional("build_volume"): vol.Any(None, _BUILD_VOLUME),
    vol.Optional("filament"): vol.Any(None, _FILAMENT),
    vol.Optional("mqtt_port"): _PORT,
    vol.Optional("ftps_port"): _PORT,
    vol.Optional("camera_port"): _PORT,
    # Beyond the seed: the OttoEject that takes the printer's plates off (null: none), its position
    # there, the bed-positioning G-code and the time the move takes (null: the model's default).
    vol.Optional("ottoeject_id"): vol.Any(None, json_integer(1)),
    vol.Optional("ottoeject_position"): vol.All(
        str, vol.Strip, vol.Upper, vol.Match(r"^\w{1,20}$", msg="ottoeject_position is like P1")
    ),
    vol.Optional("eject_gcode"): vol.Any(None, vol.All(str, vol.Strip, vol.Length(min=1, max=2000))),
    vol.Optional("settle_s"): vol.Any(None, vol.All(vol.Coerce(float), vol.Range(min=0, max=300))),
}
REGISTER_SCHEMA = vol.Schema(
    {
        vol.Required("name"): _NONEMPTY,
        vol.Required("ip_address"): _NONEMPTY,
        vol.Required("access_code"): _NONEMPTY,
        vol.Required("serial_number"): _NONEMPTY,
        **_OPTIONAL_FIELDS,
    }
)
UPDATE_SCHEMA = vol.Schema(
    {
        vol.Optional("name"): _NONEMPTY,
        vol.Optional("ip_address"): _NONEMPTY,
        vol.Optional("access_code"): _NONEMPTY,
        vol.Optional("serial_number"): _NONEMPTY,
        **_OPTIONAL_FIELDS,
    }
)
GCODE_SCHEMA = vol.Schema({vol.Required("gcode"): vol.All(str, vol.Length(min=1, max=65536))})
START_PRINT_SCHEMA = vol.Schema(
    {
        vol.Required("filename"): vol.All(str, vol.Length(min=1, max=255)),
        vol.Optional("plate", default=1): vol.All(vol.Coerce(int), vol.Range(min=1, max=64)),
        vol.Optional("useAms"): bool,
        vol.Optional("use_ams"): bool,
        vol.Optional("ams_mapping"): [vol.All(vol.Coerce(int), vol.Range(min=-1, max=255))],
        vol.Optional("bed_leveling"): bool,
        vol.Optional("flow_cali"): bool,
        vol.Optional("timelapse"): bool,
    }
)

_SETUP_ERRORS = {
    "cannot_connect": (502, "Cannot connect to the printer: check the address and that LAN mode is on."),
    "invalid_auth": (400, "The printer refused the access code."),
    "wrong_serial": (400, "The printer at this address has another serial number."),
    "already_configured": (409, "A printer with this serial number is already registered."),
    "serial_fixed": (
        400,
        "The serial number identifies the printer and cannot change: register the other printer.",
    ),
    "certificate_changed": (
        502,
        "The printer presents another certificate than the one trusted: accept it in Home Assistant's repairs first.",
    ),
}


def _setup_error(err: SetupError) -> ApiError:
    status, message = _SETUP_ERRORS.get(err.reason, (400, err.reason))
    return ApiError(status, message)


def printer_error(err: HomeAssistantError) -> ApiError:
    """Printer trouble: 503 when it cannot be reached, 502 when it answered badly."""
    status = 503 if isinstance(err, PrinterUnavailableError) else 502
    return ApiError(status, str(err))


def _subentry_changes(body: dict[str, Any]) -> dict[str, Any]:
    mapping = {
        "name": CONF_NAME,
        "ip_address": CONF_HOST,
        "access_code": CONF_ACCESS_CODE,
        "serial_number": CONF_SERIAL,
        "mqtt_port": CONF_MQTT_PORT,
        "ftps_port": CONF_FTPS_PORT,
        "camera_port": CONF_CAMERA_PORT,
    }
    return {mapping[key]: value for key, value in body.items() if key in mapping}


def ejection_changes(farm: PrintFarm, current: Mapping[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The OttoEject keys a body sets (None removes one); ApiError for an OttoEject that is not there."""
    changes: dict[str, Any] = {}
    if "ottoeject_id" in body:
        if body["ottoeject_id"] is None:
            return dict.fromkeys((CONF_OTTOEJECT, CONF_POSITION, CONF_EJECT_GCODE, CONF_SETTLE))
        ejector = farm.ejector_by_id(body["ottoeject_id"])
        if ejector is None:
            raise ApiError(400, f"Ottoeject {body['ottoeject_id']} not found")
        changes[CONF_OTTOEJECT] = ejector.subentry.subentry_id
    if "ottoeject_position" in body:
        changes[CONF_POSITION] = body["ottoeject_position"]
    if changes and not (changes.get(CONF_POSITION) or current.get(CONF_POSITION)):
        raise ApiError(400, "A printer with an OttoEject needs its ottoeject_position (like P1).")
    for key in ("eject_gcode", "settle_s"):
        if key in body:
            changes[{"eject_gcode": CONF_EJECT_GCODE, "settle_s": CONF_SETTLE}[key]] = body[key]
    return changes


def _details(body: dict[str, Any]) -> dict[str, Any]:
    return {key: body[key] for key in ("brand", "type", "build_volume", "filament") if key in body}


REGISTERED_BODY = shape({"id": INTEGER, "name": STRING, "message": STRING})
UPLOADED_BODY = shape({"filename": STRING, "file_size": STRING, "upload_time": STRING, "message": STRING})


# --- views ------------------------------------------------------------------------------------


class _PrinterView(FarmView):
    def printer(self, printer_id: str) -> PrinterCoordinator:
        number = int_id(printer_id, "Printer")
        printer = self.farm().printer_by_id(number)
        if printer is None:
            raise ApiError(404, f"Printer {printer_id} not found")
        return printer


class PrintersView(FarmView):
    """/printers: list and register."""

    url = f"{API_PREFIX}/printers"
    extra_urls = [f"{API_PREFIX}/printers/"]
    name = f"api:{DOMAIN}:printers"

    @operation(
        Operation(
            summary="List printers",
            admin=False,
            responses={200: "The printers"},
            returns={200: array(SUMMARY_BODY)},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """All printers with their live status and filament."""
        farm = self.farm()
        printers = sorted(farm.printers.values(), key=lambda printer: printer.printer_id)
        return self.json([summary_body(printer) for printer in printers])

    @operation(
        Operation(
            summary="Register a printer (its connection is tested first)",
            body=REGISTER_SCHEMA,
            responses={
                201: "Registered",
                400: "Invalid body, access code refused or wrong serial number",
                409: "Already registered",
                502: "The printer cannot be reached",
            },
            returns={201: REGISTERED_BODY},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Validate like the config flow, then add the printer's subentry."""
        farm = self.farm()
        ejection = ejection_changes(farm, {}, body)  # checked before anything is added
        try:
            printer = await async_add_printer(self.hass, farm.entry, _subentry_changes(body), _details(body))
            if ejection:
                printer = await async_update_printer(self.hass, farm.entry, printer, {}, {}, ejection)
        except SetupError as err:
            raise _setup_error(err) from None
        return self.json(
            {"id": printer.printer_id, "name": printer.name, "message": "Printer registered successfully"},
            status_code=201,
        )


class PrinterView(_PrinterView):
    """/printers/{id}: details, update, delete."""

    url = f"{API_PREFIX}/printers/{{printer_id}}"
    name = f"api:{DOMAIN}:printer"

    @operation(
        Operation(
            summary="Printer details with live state",
            admin=False,
            responses={200: "The printer", 404: "Unknown printer"},
            returns={200: DETAIL_BODY},
        )
    )
    async def get(self, request: web.Request, printer_id: str) -> web.Response:
        """One printer in full."""
        return self.json(detail_body(self.printer(printer_id)))

    @operation(
        Operation(
            summary="Update a printer (connection changes are tested first)",
            body=UPDATE_SCHEMA,
            responses={
                200: "Updated",
                400: "Invalid body",
                404: "Unknown printer",
                409: "Serial already registered",
                502: "The printer cannot be reached",
            },
            returns={200: extend(DETAIL_BODY, message=STRING)},
        )
    )
    async def put(self, request: web.Request, printer_id: str, body: dict[str, Any]) -> web.Response:
        """Change stored details; the live details are returned."""
        printer = self.printer(printer_id)
        farm = printer.entry.runtime_data
        ejection = ejection_changes(farm, printer.subentry.data, body)
        if ejection and (holder := farm.ejection.placement.in_use(printer_id=printer.printer_id)) is not None:
            raise ApiError(
                409, f"Print job {holder}'s plate depends on this printer's OttoEject now: change it later."
            )
        try:
            printer = await async_update_printer(
                self.hass, printer.entry, printer, _subentry_changes(body), _details(body), ejection
            )
        except SetupError as err:
            raise _setup_error(err) from None
        return self.json({**detail_body(printer), "message": "Printer updated successfully"})

    @operation(
        Operation(
            summary="Remove a printer",
            responses={200: "Deleted", 404: "Unknown printer"},
            returns={200: MESSAGE},
        )
    )
    async def delete(self, request: web.Request, printer_id: str) -> web.Response:
        """Remove the printer's subentry and device."""
        printer = self.printer(printer_id)
        await async_remove_printer(self.hass, printer.entry, printer)
        return self.json({"message": "Printer deleted successfully"})


class PrinterStatusView(_PrinterView):
    """/printers/{id}/status."""

    url = f"{API_PREFIX}/printers/{{printer_id}}/status"
    name = f"api:{DOMAIN}:printer:status"

    @operation(
        Operation(
            summary="Focused live status",
            admin=False,
            responses={200: "The status", 404: "Unknown printer"},
            returns={200: STATUS_BODY},
        )
    )
    async def get(self, request: web.Request, printer_id: str) -> web.Response:
        """The live status only."""
        return self.json(status_body(self.printer(printer_id)))


class SendGcodeView(_PrinterView):
    """/printers/{id}/send-gcode."""

    url = f"{API_PREFIX}/printers/{{printer_id}}/send-gcode"
    name = f"api:{DOMAIN}:printer:send-gcode"

    @operation(
        Operation(
            summary="Run G-code lines (separated by \\n)",
            body=GCODE_SCHEMA,
            responses={
                202: "Sent and acknowledged",
                400: "Invalid body",
                404: "Unknown printer",
                502: "The printer refused or did not answer",
                503: "The printer is offline",
            },
            returns={202: MESSAGE},
        )
    )
    async def post(self, request: web.Request, printer_id: str, body: dict[str, Any]) -> web.Response:
        """Send the G-code."""
        printer = self.printer(printer_id)
        try:
            await printer.async_send_gcode(body["gcode"].replace("\\n", "\n"))
        except HomeAssistantError as err:
            raise printer_error(err) from None
        return self.json({"message": "G-code sent."}, status_code=202)


class UploadView(_PrinterView):
    """/printers/{id}/upload: multipart, streamed to disk, then to the printer over FTPS."""

    url = f"{API_PREFIX}/printers/{{printer_id}}/upload"
    name = f"api:{DOMAIN}:printer:upload"

    @operation(
        Operation(
            summary="Upload a file to the printer's storage",
            multipart={"file": "file", "remote_filename": "text"},
            responses={
                200: "Uploaded",
                400: "No file, or not a printable file",
                404: "Unknown printer",
                413: "File too large",
                502: "Transfer failed",
                503: "The printer is offline",
            },
            returns={200: UPLOADED_BODY},
        )
    )
    async def post(self, request: web.Request, printer_id: str) -> web.Response:
        """Receive the file, send it to the printer, and remove the local copy."""
        printer = self.printer(printer_id)
        directory = Path(self.hass.config.path(DOMAIN, "uploads"))
        received = await receive_upload(
            self.hass, request, directory, max_bytes=self.farm().settings[MAX_UPLOAD_MB] * 1024 * 1024
        )
        try:
            remote = received.filename
            if received.fields.get("remote_filename"):
                try:
                    remote = sanitize_filename(received.fields["remote_filename"])
                except BadFileName as err:
                    raise ApiError(400, str(err)) from None
            try:
                await printer.async_upload(received.path, remote)
            except HomeAssistantError as err:
                raise printer_error(err) from None
        finally:
            await self.hass.async_add_executor_job(lambda: received.path.unlink(missing_ok=True))
        return self.json(
            {
                "filename": remote,
                "file_size": format_size(received.size),
                "upload_time": dt_util.utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "message": f"File '{remote}' uploaded successfully to printer {printer.printer_id}.",
            }
        )


class StartPrintView(_PrinterView):
    """/printers/{id}/start-print."""

    url = f"{API_PREFIX}/printers/{{printer_id}}/start-print"
    name = f"api:{DOMAIN}:printer:start-print"

    @operation(
        Operation(
            summary="Start a file that is on the printer's storage",
            body=START_PRINT_SCHEMA,
            responses={
                202: "Started",
                400: "Invalid body",
                404: "Unknown printer",
                409: "Its bed is not known to be clear, or a job is being started on it",
                502: "The printer refused or did not answer",
                503: "The printer is offline",
            },
            returns={202: MESSAGE},
        )
    )
    async def post(self, request: web.Request, printer_id: str, body: dict[str, Any]) -> web.Response:
        """Send project_file with the options given."""
        printer = self.printer(printer_id)
        options: dict[str, Any] = {"plate": body["plate"]}
        use_ams = body.get("use_ams", body.get("useAms"))
        if use_ams is not None:
            options["use_ams"] = use_ams
        for key in ("ams_mapping", "bed_leveling", "flow_cali", "timelapse"):
            if key in body:
                options[key] = body[key]
        try:
            await self.farm().jobs.async_start_file(printer, body["filename"], **options)
        except JobError as err:
            raise ApiError(err.status, str(err)) from None
        except HomeAssistantError as err:
            raise printer_error(err) from None
        return self.json({"message": f"Start print command for {body['filename']} sent."}, status_code=202)


def _command_view(command: str, method: str) -> type[_PrinterView]:
    class CommandView(_PrinterView):
        url = f"{API_PREFIX}/printers/{{printer_id}}/{command}"
        name = f"api:{DOMAIN}:printer:{command}"

        @operation(
            Operation(
                summary=f"{command.capitalize()} the current print",
                responses={
                    202: "Sent and acknowledged",
                    404: "Unknown printer",
                    502: "The printer refused or did not answer",
                    503: "The printer is offline",
                },
                returns={202: MESSAGE},
            )
        )
        async def post(self, request: web.Request, printer_id: str) -> web.Response:
            printer = self.printer(printer_id)
            try:
                await getattr(printer, method)()
            except HomeAssistantError as err:
                raise printer_error(err) from None
            return self.json({"message": f"{command.capitalize()} command sent to printer."}, status_code=202)

    CommandView.__name__ = f"{command.capitalize()}View"
    return CommandView


PRINTER_VIEWS: list[type[FarmView]] = [
    PrintersView,
    PrinterView,
    PrinterStatusView,
    SendGcodeView,
    UploadView,
    StartPrintView,
    _command_view("pause", "async_pause"),
    _command_view("resume", "async_resume"),
    _command_view("stop", "async_stop_print"),
]
