"""The Printers API's bodies (OttoEngine /api/printers/), each beside its JSON Schema."""

from __future__ import annotations

from typing import Any

from ..const import CONF_POSITION
from ..protocols.bambu import STATUS_OFFLINE
from ..runtime.printer import PrinterCoordinator
from .shapes import INTEGER, NUMBER, STRING, extend, nullable, pick, shape

FILAMENT_BODY = shape(
    {"material": nullable(STRING), "color": nullable(STRING), "name": nullable(STRING), "source": STRING}
)
STATUS_BODY = shape(
    {
        "id": INTEGER,
        "name": STRING,
        "brand": STRING,
        "model": nullable(STRING),
        "status": STRING,
        "current_stage": nullable(STRING),
        "progress_percent": nullable(INTEGER),
        "remaining_time_minutes": nullable(INTEGER),
    }
)
SUMMARY_BODY = shape(
    {
        "id": INTEGER,
        "name": STRING,
        "status": STRING,
        "type": STRING,
        "filament": pick(FILAMENT_BODY, "material", "color"),
    }
)
_BUILD_VOLUME_BODY = shape({"width_mm": NUMBER, "depth_mm": NUMBER, "height_mm": NUMBER})
DETAIL_BODY = extend(
    STATUS_BODY,
    type=STRING,
    filament=FILAMENT_BODY,
    build_volume=nullable(_BUILD_VOLUME_BODY),
    ip_address=STRING,
    serial_number=STRING,
    bed_temperature=nullable(NUMBER),
    nozzle_temperature=nullable(NUMBER),
    ottoeject_id=nullable(INTEGER),
    ottoeject_position=nullable(STRING),
)


def _status(printer: PrinterCoordinator) -> str:
    if not printer.client.online:
        return STATUS_OFFLINE
    return str(printer.client.fields["gcode_state"] or "UNKNOWN")


def _filament(printer: PrinterCoordinator, stored: dict[str, Any] | None) -> dict[str, Any]:
    live = printer.client.fields["filament"] if printer.client.online else None
    if live is not None:
        return {"material": live.material, "color": live.color, "name": live.name, "source": live.source}
    if stored:
        return {
            "material": stored.get("material", "N/A"),
            "color": stored.get("color", "N/A"),
            "name": stored.get("name"),
            "source": "database_fallback",
        }
    return {"material": "N/A", "color": "N/A", "name": None, "source": "database_fallback"}


def status_body(printer: PrinterCoordinator) -> dict[str, Any]:
    """The focused live status of a printer (GET /printers/{id}/status)."""
    fields = printer.client.fields
    online = printer.client.online
    stage = fields["stage"] if online else None
    return {
        "id": printer.printer_id,
        "name": printer.name,
        "brand": printer.details["brand"],
        "model": printer.model,
        "status": _status(printer),
        "current_stage": stage.upper() if stage else STATUS_OFFLINE if not online else None,
        "progress_percent": (fields["progress"] or 0) if online else None,
        "remaining_time_minutes": (fields["remaining_time"] or 0) if online else None,
    }


def summary_body(printer: PrinterCoordinator) -> dict[str, Any]:
    """A printer in the list (GET /printers)."""
    details = printer.details
    filament = _filament(printer, details["filament"])
    return {
        "id": printer.printer_id,
        "name": printer.name,
        "status": _status(printer),
        "type": details["type"],
        "filament": {"material": filament["material"], "color": filament["color"]},
    }


def detail_body(printer: PrinterCoordinator) -> dict[str, Any]:
    """Everything about a printer (GET /printers/{id}); never its access code."""
    record = printer.details
    fields = printer.client.fields
    online = printer.client.online
    body = status_body(printer)
    body.update(
        type=record["type"],
        filament=_filament(printer, record["filament"]),
        build_volume=record["build_volume"],
        ip_address=printer.host,
        serial_number=printer.serial,
        bed_temperature=fields["bed_temp"] if online else None,
        nozzle_temperature=fields["nozzle_temp"] if online else None,
    )
    ejector = printer.entry.runtime_data.ejection.placement.ejector_of(printer)
    body.update(
        ottoeject_id=ejector.ejector_id if ejector else None,
        ottoeject_position=printer.subentry.data.get(CONF_POSITION) if ejector else None,
    )
    order = [
        "id",
        "name",
        "brand",
        "model",
        "type",
        "status",
        "current_stage",
        "progress_percent",
        "remaining_time_minutes",
        "filament",
        "build_volume",
        "ip_address",
        "serial_number",
        "bed_temperature",
        "nozzle_temperature",
        # Not in the seed: the OttoEject that takes its plates off, and its position there.
        "ottoeject_id",
        "ottoeject_position",
    ]
    return {key: body[key] for key in order}
