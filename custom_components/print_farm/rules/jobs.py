"""Print items (uploaded files with their metadata) and print jobs, kept in Home Assistant storage.

A job moves QUEUED -> PRINTING -> COMPLETED or FAILED, or to CANCELLED from QUEUED or PRINTING.
Every transition is saved before the call returns; progress updates are batched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Final, TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import DOMAIN

STORAGE_VERSION: Final = 1
QUEUED: Final = "QUEUED"
PRINTING: Final = "PRINTING"
COMPLETED: Final = "COMPLETED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
JOB_STATUSES: Final = (QUEUED, PRINTING, COMPLETED, FAILED, CANCELLED)
OPEN_STATUSES: Final = frozenset({QUEUED, PRINTING})
# Progress is a fact the user can see again after a restart, but not one worth a disk write per percent.
PROGRESS_SAVE_DELAY: Final = 10


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
    return dt_util.as_utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


class _Stored(TypedDict):
    next_item_id: int
    next_job_id: int
    items: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    bed_clear: dict[str, bool]
    dismissed: list[list[Any]]


def _load[T](cls: type[T], raw: dict[str, Any]) -> T:
    """Build a dataclass from stored data, ignoring keys a newer or older version wrote."""
    names = {item.name for item in fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in raw.items() if key in names})


class JobStore:
    """Items, jobs and each printer's "bed clear" flag."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store; call async_load before use."""
        self._store: Store[_Stored] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.jobs")
        self.items: dict[int, PrintItem] = {}
        self.jobs: dict[int, PrintJob] = {}
        self.bed_clear: dict[int, bool] = {}
        # (printer id, normalised file name, start minute) of auto-created jobs the user deleted:
        # the same print must not come back as a new job.
        self.dismissed: set[tuple[int, str, int | None]] = set()
        self._next_item_id = 1
        self._next_job_id = 1

    async def async_load(self) -> None:
        """Read the stored items and jobs."""
        stored = await self._store.async_load()
        if stored is None:
            return
        self.items = {item["id"]: _load(PrintItem, item) for item in stored["items"]}
        self.jobs = {job["id"]: _load(PrintJob, job) for job in stored["jobs"]}
        self.bed_clear = {int(key): value for key, value in stored.get("bed_clear", {}).items()}
        self.dismissed = {
            (int(a), str(b), None if c is None else int(c)) for a, b, c in stored.get("dismissed", [])
        }
        self._next_item_id = stored["next_item_id"]
        self._next_job_id = stored["next_job_id"]

    def _data(self) -> _Stored:
        return {
            "next_item_id": self._next_item_id,
            "next_job_id": self._next_job_id,
            "items": [asdict(item) for item in self.items.values()],
            "jobs": [asdict(job) for job in self.jobs.values()],
            "bed_clear": {str(key): value for key, value in self.bed_clear.items()},
            "dismissed": [list(key) for key in sorted(self.dismissed, key=str)],
        }

    async def async_save(self) -> None:
        """Save now (a transition: it must survive a crash a second later)."""
        await self._store.async_save(self._data())

    def schedule_save(self) -> None:
        """Save soon (progress)."""
        self._store.async_delay_save(self._data, PROGRESS_SAVE_DELAY)

    def next_item_id(self) -> int:
        """Reserve the next item id (saved with the item)."""
        number = self._next_item_id
        self._next_item_id += 1
        return number

    async def async_add_item(self, item: PrintItem) -> PrintItem:
        """Keep a new item."""
        self.items[item.id] = item
        await self.async_save()
        return item

    async def async_add_job(self, **values: Any) -> PrintJob:
        """Create a QUEUED job."""
        job = PrintJob(id=self._next_job_id, created_at=iso(dt_util.utcnow()) or "", **values)
        self._next_job_id += 1
        self.jobs[job.id] = job
        await self.async_save()
        return job

    async def async_remove_item(self, item_id: int) -> PrintItem:
        """Forget an item no open or past job uses; raise JobError otherwise."""
        users = [job.id for job in self.jobs.values() if job.print_item_id == item_id]
        if users:
            raise JobError(f"Print item {item_id} is used by print job(s) {users}.")
        item = self.items.pop(item_id)
        await self.async_save()
        return item

    async def async_delete_job(self, job_id: int, dismissed: tuple[int, str, int | None] | None) -> PrintJob:
        """Forget a job; an auto-created one is remembered as dismissed."""
        job = self.jobs.pop(job_id)
        if dismissed is not None:
            self.dismissed.add(dismissed)
        await self.async_save()
        return job

    def active_job(self, printer_id: int) -> PrintJob | None:
        """The job printing on a printer, if any."""
        return next(
            (job for job in self.jobs.values() if job.printer_id == printer_id and job.status == PRINTING),
            None,
        )

    def queued(self) -> list[PrintJob]:
        """Queued jobs, most urgent first (lowest priority number, then oldest)."""
        return sorted(
            (job for job in self.jobs.values() if job.status == QUEUED),
            key=lambda job: (job.priority, job.id),
        )


def normalise_filename(name: str | None) -> str:
    """The file a print is of, whatever the variant: no folder (cache/...), no .gcode/.3mf, any case."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip().lower()
    for suffix in (".gcode.3mf", ".3mf", ".gcode", ".bgcode"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base
