"""Print items (uploaded files with their metadata) and print jobs: the records and their statuses.

A job moves QUEUED -> PRINTING -> COMPLETED or FAILED, or to CANCELLED from QUEUED or PRINTING.
`runtime/storage.py` keeps them (`JobStore`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

QUEUED: Final = "QUEUED"
PRINTING: Final = "PRINTING"
COMPLETED: Final = "COMPLETED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
JOB_STATUSES: Final = (QUEUED, PRINTING, COMPLETED, FAILED, CANCELLED)
OPEN_STATUSES: Final = frozenset({QUEUED, PRINTING})


class JobError(ValueError):
    """An operation on a job or item that its state does not allow; `status` is the REST answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        """Keep the HTTP status that fits."""
        super().__init__(message)
        self.status = status


def iso(moment: datetime | None) -> str | None:
    """A UTC timestamp as the seeds write it: 2025-05-21T10:00:00.000Z."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a naive instant here is UTC, as the function says
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class PrintItem:
    """An uploaded file and what its slicer says about it."""

    id: int
    filename: str
    stored_name: str
    size: int
    uploaded_at: str
    estimated_time_s: int | None = None
    layer_count: int | None = None
    filament_g: float | None = None
    filament_mm: float | None = None
    slicer: str | None = None
    plates: int = 1
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PrintJob:
    """A job: an item to print on a printer, possibly ejected by an OttoEject."""

    id: int
    print_item_id: int | None
    printer_id: int
    ottoeject_id: int | None
    priority: int
    auto_start: bool
    status: str = QUEUED
    created_at: str = ""
    started_at: str | None = None
    completed_at: str | None = None
    progress_percent: int = 0
    estimated_remaining_time: int | None = None
    # The name the file has on the printer, and whether the printer was seen printing it (so a
    # FINISH left over from the previous print is not taken for this job's end).
    remote_filename: str | None = None
    plate: int = 1
    seen_active: bool = False
    failure: str | None = None
    # Jobs created for prints started outside Home Assistant (Printernizer's automatic job creation).
    job_name: str | None = None
    filename: str | None = None
    customer_info: dict[str, Any] | None = None
    printer_start_time: int | None = None  # unix seconds, as the printer reports it


def minutes(seconds: int | None) -> int | None:
    """Seconds as the seeds count time: whole minutes."""
    return None if seconds is None else round(seconds / 60)


def normalise_filename(name: str | None) -> str:
    """The file a print is of, whatever the variant: no folder (cache/...), no .gcode/.3mf, any case."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip().lower()
    for suffix in (".gcode.3mf", ".3mf", ".gcode", ".bgcode"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base
