"""Actions: send G-code, upload a file, start a print. Registered once, for every printer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from homeassistant.auth.permissions.const import POLICY_CONTROL
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized, UnknownUser
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .api.print_jobs import item_body, job_body
from .api.production_runs import completion_body, material_body, spool_body
from .const import DOMAIN
from .rules.books.records import InventoryError, Spool
from .rules.books.runs import Books
from .rules.books.schema import GRAMS, IDENTIFIER, SIGNED_GRAMS, SPOOL_FIELDS
from .rules.files import BadFileName, sanitize_filename
from .rules.jobs import JobError
from .rules.racks import NO_PLATE, PLATE_EMPTY, PLATE_WITH_PRINT, ShelfError
from .runtime.farm import PrintFarm
from .runtime.jobs import BedNotClearError, JobManager
from .runtime.ottoeject import EjectorCoordinator, EjectorUnknownMacroError
from .runtime.printer import PrinterCoordinator
from .runtime.production import SPOOL_PREFIX, BooksNotSaved, ProductionManager
from .runtime.rack import RackCoordinator, shelf_validation_error

ATTR_DEVICE_ID = "device_id"
ATTR_GCODE = "gcode"
ATTR_PATH = "path"
ATTR_FILENAME = "filename"
ATTR_REMOTE_FILENAME = "remote_filename"
ATTR_SHELF = "shelf"
ATTR_PLATE_STATE = "plate_state"
ATTR_PRINT_JOB_ID = "print_job_id"
ATTR_MACRO = "macro"
ATTR_PARAMS = "params"

_DEVICE: dict[vol.Marker, Any] = {vol.Required(ATTR_DEVICE_ID): cv.string}
SEND_GCODE_SCHEMA = vol.Schema({**_DEVICE, vol.Required(ATTR_GCODE): vol.All(cv.string, vol.Length(min=1))})
UPLOAD_FILE_SCHEMA = vol.Schema(
    {**_DEVICE, vol.Required(ATTR_PATH): cv.string, vol.Optional(ATTR_REMOTE_FILENAME): cv.string}
)
START_PRINT_SCHEMA = vol.Schema(
    {
        **_DEVICE,
        vol.Required(ATTR_FILENAME): vol.All(cv.string, vol.Length(min=1, max=255)),
        vol.Optional("plate", default=1): vol.All(vol.Coerce(int), vol.Range(min=1, max=64)),
        vol.Optional("use_ams", default=False): cv.boolean,
        vol.Optional("ams_mapping"): [vol.All(vol.Coerce(int), vol.Range(min=-1, max=255))],
        vol.Optional("bed_leveling", default=True): cv.boolean,
        vol.Optional("flow_cali", default=False): cv.boolean,
        vol.Optional("timelapse", default=False): cv.boolean,
    }
)


RESET_SHELF_SCHEMA = vol.Schema(
    {**_DEVICE, vol.Required(ATTR_SHELF): vol.All(vol.Coerce(int), vol.Range(min=1))}
)
SET_SHELF_SCHEMA = RESET_SHELF_SCHEMA.extend(
    {
        vol.Required(ATTR_PLATE_STATE): vol.In([NO_PLATE, PLATE_EMPTY, PLATE_WITH_PRINT]),
        vol.Optional(ATTR_PRINT_JOB_ID): vol.All(vol.Coerce(int), vol.Range(min=1)),
    }
)


ADD_ITEM_SCHEMA = vol.Schema({vol.Required(ATTR_PATH): cv.string, vol.Optional(ATTR_FILENAME): cv.string})
JOB_ID_SCHEMA = vol.Schema({vol.Required("job_id"): vol.All(vol.Coerce(int), vol.Range(min=1))})
CREATE_JOB_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_DEVICE_ID): cv.string,  # none: any printer that can print it
        vol.Required("print_item_id"): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Optional("ottoeject_id"): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Optional("auto_start", default=False): cv.boolean,
        vol.Optional("priority", default=1): vol.All(vol.Coerce(int), vol.Range(min=1, max=100)),
        vol.Optional("plate", default=1): vol.All(vol.Coerce(int), vol.Range(min=1, max=128)),
        vol.Optional("production_run_id"): IDENTIFIER,
    }
)
SET_JOB_RUN_SCHEMA = vol.Schema(
    {
        vol.Required("job_id"): vol.All(vol.Coerce(int), vol.Range(min=1)),
        # None (or left out): the job belongs to no run.
        vol.Optional("production_run_id"): vol.Any(None, IDENTIFIER),
    }
)
MOVE_JOB_SCHEMA = vol.Schema(
    {
        vol.Required("job_id"): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Required("position"): vol.All(vol.Coerce(int), vol.Range(min=1)),
    }
)
RUN_MACRO_SCHEMA = vol.Schema(
    {
        **_DEVICE,
        vol.Required(ATTR_MACRO): vol.All(cv.string, vol.Length(min=1, max=100)),
        vol.Optional(ATTR_PARAMS): {cv.string: vol.Any(cv.string, int, float)},
    }
)
_GRAMS = vol.All(vol.Coerce(float), GRAMS)
_SIGNED_GRAMS = vol.All(vol.Coerce(float), SIGNED_GRAMS)
RECORD_USAGE_SCHEMA = vol.Schema(
    {
        vol.Required("run_id"): IDENTIFIER,
        vol.Required("material_id"): IDENTIFIER,
        vol.Optional("spool_weight_before_grams"): _GRAMS,
        vol.Optional("spool_weight_after_grams"): _GRAMS,
        vol.Optional("actual_weight_grams"): _GRAMS,
        vol.Optional("actual_purge_grams"): _GRAMS,
    }
)
COMPLETE_RUN_SCHEMA = vol.Schema({vol.Required("run_id"): IDENTIFIER})
ADJUST_SPOOL_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Exclusive(ATTR_DEVICE_ID, "spool"): cv.string,
            vol.Exclusive("spool_id", "spool"): IDENTIFIER,
            vol.Exclusive("remaining_grams", "amount"): _GRAMS,
            vol.Exclusive("delta_grams", "amount"): _SIGNED_GRAMS,
            # The spool's Bambu RFID tray_uuid ("" forgets it): a tray that reads it places the spool.
            vol.Optional("tray_uuid"): vol.Any(vol.All(str, vol.Length(max=0)), SPOOL_FIELDS["tray_uuid"]),
        }
    ),
    cv.has_at_least_one_key(ATTR_DEVICE_ID, "spool_id"),
    cv.has_at_least_one_key("remaining_grams", "delta_grams", "tray_uuid"),
)


def _target[T](call: ServiceCall, find: Callable[[PrintFarm, str], T | None], error_key: str) -> T:
    """The device a call targets, found by `find` in the loaded farm, or a translated validation error."""
    device_id = call.data[ATTR_DEVICE_ID]
    for entry in call.hass.config_entries.async_entries(DOMAIN):
        if (
            entry.state is ConfigEntryState.LOADED
            and (found := find(entry.runtime_data, device_id)) is not None
        ):
            return found
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=error_key,
        translation_placeholders={"device_id": device_id},
    )


def _printer(hass: HomeAssistant, call: ServiceCall) -> PrinterCoordinator:
    """The printer a call targets."""
    return _target(call, PrintFarm.printer_by_device, "not_a_printer")


def _ejector(call: ServiceCall) -> EjectorCoordinator:
    """The OttoEject a call targets."""
    return _target(call, PrintFarm.ejector_by_device, "not_an_ottoeject")


async def _run_macro(call: ServiceCall) -> ServiceResponse:
    ejector = _ejector(call)
    name = call.data[ATTR_MACRO].strip().upper()
    try:
        outcome = await ejector.async_run_macro(name, call.data.get(ATTR_PARAMS))
    except EjectorUnknownMacroError as err:
        # Bad input, not a device failure: a validation error with the same translation.
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=err.translation_key,
            translation_placeholders=err.translation_placeholders,
        ) from err
    return {
        "macro": name,
        "acknowledged": outcome.acknowledged,
        "response": outcome.response,
        "detail": outcome.detail,
    }


def _farm(call: ServiceCall) -> PrintFarm:
    """The loaded farm, or a translated validation error."""
    for entry in call.hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            farm: PrintFarm = entry.runtime_data
            return farm
    raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_loaded")


def _jobs(call: ServiceCall) -> JobManager:
    return _farm(call).jobs


def _job_call[T](
    operation: Callable[[ServiceCall, JobManager], Awaitable[T]],
) -> Callable[[ServiceCall], Awaitable[T]]:
    """Run a job operation; a state that does not allow it is the caller's mistake."""

    async def run(call: ServiceCall) -> T:
        try:
            return await operation(call, _jobs(call))
        except JobError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="job_refused",
                translation_placeholders={"error": str(err)},
            ) from err

    return run


@_job_call
async def _add_print_item(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    path = await _allowed_file(call)
    filename = _printable_name(call.data.get(ATTR_FILENAME) or path.name)
    item = await jobs.items.async_add(path, filename, move=False)
    return {"print_item_id": item.id, **item_body(item)}


@_job_call
async def _create_job(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    job = await jobs.async_create_job(
        print_item_id=call.data["print_item_id"],
        printer_id=_printer(call.hass, call).printer_id if call.data.get(ATTR_DEVICE_ID) else None,
        ottoeject_id=call.data.get("ottoeject_id"),
        auto_start=call.data["auto_start"],
        priority=call.data["priority"],
        plate=call.data["plate"],
        production_run_id=call.data.get("production_run_id"),
        context=call.context,
    )
    return job_body(job)


@_job_call
async def _set_job_run(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    changes = {"production_run_id": call.data.get("production_run_id")}
    return job_body(await jobs.async_update_job(call.data["job_id"], changes))


@_job_call
async def _start_job(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    return job_body(await jobs.async_start_job(call.data["job_id"], call.context))


@_job_call
async def _cancel_job(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    return job_body(await jobs.async_cancel_job(call.data["job_id"], call.context))


@_job_call
async def _move_job(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    return job_body(await jobs.async_move_job(call.data["job_id"], call.data["position"]))


@_job_call
async def _retry_workflow(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    return job_body(await _farm(call).ejection.async_retry(call.data["job_id"]))


@_job_call
async def _skip_workflow_step(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    return job_body(await _farm(call).ejection.async_skip(call.data["job_id"]))


@_job_call
async def _abort_workflow(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    return job_body(await _farm(call).ejection.async_abort(call.data["job_id"]))


@_job_call
async def _mark_bed_clear(call: ServiceCall, jobs: JobManager) -> ServiceResponse:
    await jobs.async_set_bed_clear(_printer(call.hass, call).printer_id, context=call.context)
    return None


def _production(call: ServiceCall) -> ProductionManager:
    return _farm(call).production


async def _change_books[T](call: ServiceCall, operation: Callable[[Books], T]) -> T:
    """Change the books; a refusal is the caller's mistake and changes nothing."""
    try:
        return await _production(call).async_change(operation, call.context)
    except BooksNotSaved as err:  # not the caller's mistake: nothing changed, and it may be tried again
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="production_not_saved",
            translation_placeholders={"error": str(err)},
        ) from err
    except InventoryError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="production_refused",
            translation_placeholders={"error": str(err)},
        ) from err


async def _record_material_usage(call: ServiceCall) -> ServiceResponse:
    changes = {key: value for key, value in call.data.items() if key not in ("run_id", "material_id")}
    material = await _change_books(
        call, lambda books: books.update_material(call.data["run_id"], call.data["material_id"], changes)
    )
    return material_body(material)


async def _complete_production_run(call: ServiceCall) -> ServiceResponse:
    completion = await _change_books(call, lambda books: books.complete_run(call.data["run_id"]))
    return completion_body(completion)


def _spool_id(call: ServiceCall) -> str:
    if "spool_id" in call.data:
        return str(call.data["spool_id"])
    device = dr.async_get(call.hass).async_get(call.data[ATTR_DEVICE_ID])
    for domain, identifier in device.identifiers if device else ():
        if domain == DOMAIN and identifier.startswith(SPOOL_PREFIX):
            return identifier.removeprefix(SPOOL_PREFIX)
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="not_a_spool",
        translation_placeholders={"device_id": call.data[ATTR_DEVICE_ID]},
    )


async def _adjust_spool(call: ServiceCall) -> ServiceResponse:
    spool_id = _spool_id(call)
    remaining, delta = call.data.get("remaining_grams"), call.data.get("delta_grams")

    def adjust(books: Books) -> Spool:
        if "tray_uuid" in call.data:
            books.update_spool(spool_id, {"tray_uuid": call.data["tray_uuid"] or None})
        if remaining is None and delta is None:
            return books.spool(spool_id)
        return books.adjust_spool(spool_id, remaining_grams=remaining, delta_grams=delta)

    spool = await _change_books(call, adjust)
    return spool_body(spool, _production(call))


def _rack(call: ServiceCall) -> RackCoordinator:
    """The rack a call targets."""
    return _target(call, PrintFarm.rack_by_device, "not_a_rack")


async def _set_shelf(call: ServiceCall) -> ServiceResponse:
    rack = _rack(call)
    try:
        shelf = await rack.async_set_shelf_content(
            call.data[ATTR_SHELF],
            call.data[ATTR_PLATE_STATE],
            call.data.get(ATTR_PRINT_JOB_ID),
            context=call.context,
        )
    except ShelfError as err:
        raise shelf_validation_error(err) from err
    return {**shelf.as_dict(), "ottorack_id": rack.rack_id}


async def _reset_shelf(call: ServiceCall) -> ServiceResponse:
    rack = _rack(call)
    try:
        shelf = await rack.async_reset_shelf(call.data[ATTR_SHELF], context=call.context)
    except ShelfError as err:
        raise shelf_validation_error(err) from err
    return {**shelf.as_dict(), "ottorack_id": rack.rack_id}


async def _send_gcode(call: ServiceCall) -> ServiceResponse:
    await _printer(call.hass, call).async_send_gcode(call.data[ATTR_GCODE])
    return None


async def _allowed_file(call: ServiceCall) -> Path:
    """The call's `path`, if it is a file in a directory Home Assistant may read."""
    hass = call.hass
    path = Path(call.data[ATTR_PATH])
    if not path.is_absolute():
        path = Path(hass.config.path(str(path)))
    # Only directories the user allowed in allowlist_external_dirs, like Home Assistant's own file
    # actions; the check resolves the path on disk, so it runs in the executor.
    if not await hass.async_add_executor_job(hass.config.is_allowed_path, str(path)):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="path_not_allowed",
            translation_placeholders={"path": str(path)},
        )
    if not await hass.async_add_executor_job(path.is_file):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="file_not_found",
            translation_placeholders={"path": str(path)},
        )
    return path


def _printable_name(name: str) -> str:
    try:
        return sanitize_filename(name)
    except BadFileName as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_printable",
            translation_placeholders={"name": str(err)},
        ) from err


async def _upload_file(call: ServiceCall) -> ServiceResponse:
    printer = _printer(call.hass, call)
    path = await _allowed_file(call)
    remote = _printable_name(call.data.get(ATTR_REMOTE_FILENAME) or path.name)
    size = await printer.async_upload(path, remote)
    return {"filename": remote, "size": size}


async def _start_print(call: ServiceCall) -> None:
    options: dict[str, Any] = {
        key: value for key, value in call.data.items() if key not in (ATTR_DEVICE_ID, ATTR_FILENAME)
    }
    printer = _printer(call.hass, call)
    # The same farm method as REST's start-print: the bed-clear rule holds for both.
    try:
        await _jobs(call).async_start_file(printer, call.data[ATTR_FILENAME], **options)
    except BedNotClearError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="bed_not_clear",
            translation_placeholders={"printer": printer.name},
        ) from err
    except JobError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="job_refused",
            translation_placeholders={"error": str(err)},
        ) from err


def _admin_only(
    handler: Callable[[ServiceCall], Awaitable[ServiceResponse]],
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """Refuse calls by users who are not administrators (automations run without a user)."""

    async def checked(call: ServiceCall) -> ServiceResponse:
        if call.context.user_id:
            user = await call.hass.auth.async_get_user(call.context.user_id)
            if user is None:
                raise UnknownUser(
                    context=call.context, permission=POLICY_CONTROL, user_id=call.context.user_id
                )
            if not user.is_admin:
                raise Unauthorized(context=call.context, permission=POLICY_CONTROL)
        return await handler(call)

    return checked


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions; they reach printers, so they are for administrators."""
    for name, handler, schema, response in (
        ("send_gcode", _send_gcode, SEND_GCODE_SCHEMA, SupportsResponse.NONE),
        ("upload_file", _upload_file, UPLOAD_FILE_SCHEMA, SupportsResponse.OPTIONAL),
        ("start_print", _start_print, START_PRINT_SCHEMA, SupportsResponse.NONE),
        ("set_shelf", _set_shelf, SET_SHELF_SCHEMA, SupportsResponse.OPTIONAL),
        ("reset_shelf", _reset_shelf, RESET_SHELF_SCHEMA, SupportsResponse.OPTIONAL),
        ("run_macro", _run_macro, RUN_MACRO_SCHEMA, SupportsResponse.OPTIONAL),
        ("add_print_item", _add_print_item, ADD_ITEM_SCHEMA, SupportsResponse.OPTIONAL),
        ("create_job", _create_job, CREATE_JOB_SCHEMA, SupportsResponse.OPTIONAL),
        ("start_job", _start_job, JOB_ID_SCHEMA, SupportsResponse.OPTIONAL),
        ("cancel_job", _cancel_job, JOB_ID_SCHEMA, SupportsResponse.OPTIONAL),
        ("mark_bed_clear", _mark_bed_clear, vol.Schema(_DEVICE), SupportsResponse.NONE),
        ("move_job", _move_job, MOVE_JOB_SCHEMA, SupportsResponse.OPTIONAL),
        ("set_job_run", _set_job_run, SET_JOB_RUN_SCHEMA, SupportsResponse.OPTIONAL),
        ("retry_workflow", _retry_workflow, JOB_ID_SCHEMA, SupportsResponse.OPTIONAL),
        ("skip_workflow_step", _skip_workflow_step, JOB_ID_SCHEMA, SupportsResponse.OPTIONAL),
        ("abort_workflow", _abort_workflow, JOB_ID_SCHEMA, SupportsResponse.OPTIONAL),
        ("record_material_usage", _record_material_usage, RECORD_USAGE_SCHEMA, SupportsResponse.OPTIONAL),
        ("complete_production_run", _complete_production_run, COMPLETE_RUN_SCHEMA, SupportsResponse.OPTIONAL),
        ("adjust_spool", _adjust_spool, ADJUST_SPOOL_SCHEMA, SupportsResponse.OPTIONAL),
    ):
        hass.services.async_register(DOMAIN, name, _admin_only(handler), schema, supports_response=response)
