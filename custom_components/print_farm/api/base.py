"""The REST views' common ground: errors in the seeds' shape, body validation, admin checks, OpenAPI.

Each view declares, per method, the voluptuous schema it validates its body with and the JSON
Schema of each success body (from `shapes`, beside the builder of that body); the OpenAPI document
is built from those same declarations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import copy
from dataclasses import dataclass, field
from functools import wraps
from http import HTTPStatus
import json
from pathlib import Path
import re
from typing import TYPE_CHECKING, Any, cast
import uuid

from aiohttp import BodyPartReader, ClientError, web
from aiohttp.http_exceptions import HttpProcessingError
from homeassistant.components.http import KEY_HASS_USER, HomeAssistantView  # type: ignore[attr-defined]
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
import voluptuous as vol
import voluptuous_openapi

from ..const import DOMAIN
from ..rules.files import BadFileName, format_size, sanitize_filename
from .shapes import OPEN_OBJECT, STRING, JsonSchema, array, shape

if TYPE_CHECKING:
    from ..runtime.farm import PrintFarm

API_PREFIX = f"/api/{DOMAIN}"
UPLOAD_CHUNK = 1024 * 1024

_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answered as `{"error": title, "message": detail}`, the seeds' error shape."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        """Remember the status, the message and any extra fields of the body."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        """The error as a JSON response."""
        body = {"error": _TITLES.get(self.status, HTTPStatus(self.status).phrase), "message": self.message}
        return web.json_response({**body, **self.extra}, status=self.status)


@dataclass(frozen=True, kw_only=True)
class Operation:
    """What one method of a route takes and answers, for validation and for the OpenAPI document."""

    summary: str
    admin: bool = True
    body: vol.Schema | None = None
    multipart: dict[str, str] | None = None
    responses: dict[int, str] = field(default_factory=dict)
    # The JSON Schema of the body of each success status (every 2xx in `responses` has one).
    returns: dict[int, JsonSchema] = field(default_factory=dict)
    # The query parameters it reads, all optional, with the JSON Schema of each value.
    query: dict[str, JsonSchema] = field(default_factory=dict)
    # The status of a body that does not fit the schema: 400, or 422 where the seed says so (DayZero).
    invalid_status: int = 400


def operation[F: Callable[..., Awaitable[web.StreamResponse]]](op: Operation) -> Callable[[F], F]:
    """Declare a view method: admin check, body validation, errors to JSON, and its OpenAPI entry."""

    def decorate(handler: F) -> F:
        @wraps(handler)
        async def wrapper(
            self: FarmView, request: web.Request, *args: Any, **kwargs: Any
        ) -> web.StreamResponse:
            try:
                if op.admin and not request[KEY_HASS_USER].is_admin:
                    raise ApiError(403, "This operation needs an administrator.")
                self.check_request(request)
                if op.body is not None:
                    kwargs["body"] = await _validated_body(request, op.body, op.invalid_status)
                return await handler(self, request, *args, **kwargs)
            except ApiError as err:
                return err.response()

        wrapper.operation = op  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


async def _validated_body(request: web.Request, schema: vol.Schema, invalid_status: int) -> Any:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(invalid_status, "The body must be JSON.") from None
    try:
        return schema(body)
    except vol.Invalid as err:
        # str(err) names the field and the problem but not the value: it may be an access code.
        raise ApiError(invalid_status, str(err)) from None


class FarmView(HomeAssistantView):
    """A Print Farm REST view: authenticated, with the farm at hand."""

    requires_auth = True

    def __init__(self, hass: HomeAssistant) -> None:
        """Keep Home Assistant, to find the farm per request."""
        self.hass = hass

    def farm(self) -> PrintFarm:
        """The running farm, or 503 when the integration is not set up."""
        for entry in self.hass.config_entries.async_entries(DOMAIN):
            if entry.state is ConfigEntryState.LOADED:
                farm: PrintFarm = entry.runtime_data
                return farm
        raise ApiError(503, "The Print Farm integration is not set up.")

    def check_request(self, request: web.Request) -> None:
        """Checks of the request itself (headers), made before its body is read; none by default."""

    @staticmethod
    def context(request: web.Request) -> Context:
        """The context of a change made through the API: who made it."""
        return Context(user_id=request[KEY_HASS_USER].id)


_DIGITS = re.compile(r"[0-9]{1,18}")


def whole_number(value: str) -> int | None:
    """A path or query number of ASCII digits only, else None.

    `int()` also takes an Arabic-Indic one (U+0661), " 1", "+1" and "1_0": none of them names 1 here.
    """
    return int(value) if _DIGITS.fullmatch(value) else None


def json_integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    """A body field that is a JSON integer in range: not a bool (Python's True is 1), not 2.0."""

    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            raise vol.Invalid(
                f"must be from {minimum} to {maximum}"
                if maximum is not None
                else f"must be {minimum} or more"
            )
        return number

    validate.openapi = {  # type: ignore[attr-defined]
        "type": "integer",
        "minimum": minimum,
        **({"maximum": maximum} if maximum is not None else {}),
    }
    return validate


def int_id(value: str, what: str) -> int:
    """Parse an integer path id, or answer 404 (an id that cannot exist is not found)."""
    number = whole_number(value)
    if number is None:
        raise ApiError(404, f"{what} {value!r} not found")
    return number


# --- OpenAPI ----------------------------------------------------------------------------------


def build_openapi(views: list[type[FarmView]]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the given views, from their declared operations."""
    paths: dict[str, Any] = {}
    for view in views:
        url = str(view.url)
        item: dict[str, Any] = {}
        for method in ("get", "post", "put", "delete", "patch"):
            handler = getattr(view, method, None)
            op: Operation | None = getattr(handler, "operation", None)
            if op is None:
                continue
            entry: dict[str, Any] = {
                "summary": op.summary,
                "responses": {
                    str(code): {
                        "description": text,
                        **(
                            {"content": {"application/json": {"schema": op.returns[code]}}}
                            if code in op.returns
                            else {}
                        ),
                    }
                    for code, text in {
                        **op.responses,
                        401: "Not authenticated",
                        **({403: "Not an administrator"} if op.admin else {}),
                    }.items()
                },
            }
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": json_schema_of(op.body)}},
                }
            if op.multipart is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    name: {
                                        "type": "string",
                                        **({"format": "binary"} if kind == "file" else {}),
                                    }
                                    for name, kind in op.multipart.items()
                                },
                                "required": [name for name, kind in op.multipart.items() if kind == "file"],
                            }
                        }
                    },
                }
            parameters = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _path_parameters(url)
            ] + [
                {"name": name, "in": "query", "required": False, "schema": schema}
                for name, schema in op.query.items()
            ]
            if parameters:
                entry["parameters"] = parameters
            item[method] = entry
        paths[url] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Print Farm for Home Assistant",
            "version": "0.1.0",
            "description": "Mirror of the OttoEngine, Printernizer and production-run APIs under /api/print_farm.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def json_schema_of(schema: vol.Schema) -> JsonSchema:
    """The JSON Schema (2020-12, as OpenAPI 3.1 has it) of what a voluptuous schema takes."""
    converted: JsonSchema = _as_json_schema(voluptuous_openapi.convert(schema, custom_serializer=_openapi_of))
    return converted


def _as_json_schema(schema: Any) -> Any:
    """voluptuous_openapi's output as JSON Schema says it, for what the validators do.

    Objects with listed keys take no other (voluptuous refuses extra keys unless a schema allows
    them, which voluptuous_openapi marks), and OpenAPI 3.0's `nullable`, which JSON Schema ignores,
    becomes "or null".
    """
    if isinstance(schema, list):
        return [_as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _as_json_schema(value) for key, value in schema.items()}
    if result.get("type") == "object" and "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    if result.pop("nullable", False):
        outer = {key: result.pop(key) for key in ("default", "description") if key in result}
        result = {"anyOf": [result, {"type": "null"}], **outer}
    return result


def _openapi_of(validator: Any) -> Any:
    """The OpenAPI schema a validator function declares (`validator.openapi`), if it declares one.

    A copy: voluptuous_openapi adds to what it is given (a default, nullable), and one validator
    may serve several fields.
    """
    declared = getattr(validator, "openapi", None)
    return copy.deepcopy(declared) if declared is not None else voluptuous_openapi.UNSUPPORTED


def _path_parameters(url: str) -> list[str]:
    names = []
    for part in url.split("/"):
        if part.startswith("{") and part.endswith("}"):
            names.append(part[1:-1].split(":")[0])
    return names


OPENAPI_DOCUMENT = shape(
    {
        "openapi": STRING,
        "info": OPEN_OBJECT,
        "components": OPEN_OBJECT,
        "security": array(OPEN_OBJECT),
        "paths": OPEN_OBJECT,
    }
)


class OpenApiView(FarmView):
    """GET /api/print_farm/openapi.json: the document of every route."""

    url = f"{API_PREFIX}/openapi.json"
    name = f"api:{DOMAIN}:openapi"

    def __init__(self, hass: HomeAssistant, views: list[type[FarmView]]) -> None:
        """Keep the list of views the document describes."""
        super().__init__(hass)
        self._views = views

    @operation(
        Operation(
            summary="This OpenAPI document",
            admin=False,
            responses={200: "The document"},
            returns={200: OPENAPI_DOCUMENT},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Serve the document."""
        return web.Response(
            text=json.dumps(build_openapi([*self._views, OpenApiView])),
            content_type="application/json",
        )


# --- uploads ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """A multipart upload written to disk, with the form's other fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str]


async def receive_upload(
    hass: HomeAssistant, request: web.Request, directory: Path, *, max_bytes: int
) -> ReceivedFile:
    """Stream the multipart `file` part to a new file in `directory`, chunk by chunk.

    Answers 400 without a file or with a name that is not printable, 413 past max_bytes; the
    partial file is removed on every failure.
    """
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise ApiError(400, "The body must be multipart/form-data with a 'file' part.") from None
    fields: dict[str, str] = {}
    received: ReceivedFile | None = None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name != "file" or received is not None:
                if part.name and part.name != "file":
                    fields[part.name] = (await part.read_chunk(4096)).decode(errors="replace").strip()
                continue
            try:
                filename = sanitize_filename(part.filename or "")
            except BadFileName as err:
                raise ApiError(400, str(err)) from None
            received = await _write_part(hass, part, directory, filename, max_bytes)
    except (
        AssertionError,
        ValueError,
        ClientError,
        HttpProcessingError,
        asyncio.IncompleteReadError,
    ) as err:
        # aiohttp's reader asserts on a body cut short, and raises InvalidHeader (an
        # HttpProcessingError) on a part header it cannot parse, such as one with a NUL byte; the
        # partial file is already gone.
        if received is not None:
            await hass.async_add_executor_job(lambda: received.path.unlink(missing_ok=True))
        raise ApiError(
            400, f"The upload is not a complete multipart body ({err.__class__.__name__})."
        ) from None
    if received is None:
        raise ApiError(400, "No file was uploaded under the 'file' key.")
    return ReceivedFile(received.path, received.filename, received.size, fields)


async def _write_part(
    hass: HomeAssistant, part: BodyPartReader, directory: Path, filename: str, max_bytes: int
) -> ReceivedFile:
    await hass.async_add_executor_job(lambda: directory.mkdir(parents=True, exist_ok=True))
    target = directory / f".upload-{uuid.uuid4().hex}"
    handle = await hass.async_add_executor_job(target.open, "wb")
    size = 0
    try:
        while chunk := await part.read_chunk(UPLOAD_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise ApiError(413, f"The file is larger than {format_size(max_bytes)}.")
            await hass.async_add_executor_job(handle.write, chunk)
    except BaseException:
        await hass.async_add_executor_job(_close_and_remove, handle, target)
        raise
    await hass.async_add_executor_job(handle.close)
    return ReceivedFile(target, filename, size, {})


def _close_and_remove(handle: Any, path: Path) -> None:
    handle.close()
    path.unlink(missing_ok=True)
