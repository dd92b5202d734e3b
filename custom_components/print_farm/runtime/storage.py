"""What the farm keeps in Home Assistant storage: device ids, printer details, rack shelves, jobs.

Each class owns one `.storage/print_farm.*` file; the production books own theirs
(`runtime/production.py`), with its migrations. Every file holds facts (ids never handed out twice,
shelves, jobs, the books), so every one is a `FactStore`: written whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields
from typing import Any, Final, TypedDict, override

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import DOMAIN
from ..rules.dispatch import queue_order
from ..rules.jobs import (
    OPEN_STATUSES,
    PRINTING,
    QUEUED,
    STAGE_OF_STATUS,
    Dismissed,
    JobError,
    PrintItem,
    PrintJob,
    SeenPrint,
    iso,
)
from ..rules.racks import Shelf, ShelfError

STORAGE_VERSION: Final = 1


class StoreFromTheFuture(Exception):
    """A storage file was written by a newer major version; loading it would lose data."""


class StoreWriteError(Exception):
    """A storage file could not be written; what it should have held is not on disk."""


class FactStore[T: Mapping[str, Any]](Store[T]):
    """A storage file of facts: written atomically (a crash leaves the old file or the new one).

    `async_save_or_raise` also tells its caller when the write failed: Home Assistant's `Store`
    only logs a failed write, which would let a caller answer "saved" for what is not on disk.
    """

    def __init__(self, hass: HomeAssistant, version: int, key: str, *, minor_version: int = 1) -> None:
        """A store of `key`, written atomically."""
        super().__init__(hass, version, key, minor_version=minor_version, atomic_writes=True)
        self._write_error: BaseException | None = None

    @override
    async def _async_write_data(self, path: str, data: dict[str, Any]) -> None:
        try:
            await super()._async_write_data(path, data)
        except Exception as err:
            self._write_error = err  # Store logs and swallows its own WriteError: keep it for the caller
            raise

    def _take_write_error(self) -> BaseException | None:
        error, self._write_error = self._write_error, None
        return error

    async def async_save_or_raise(self, data: T) -> None:
        """Save now; StoreWriteError when the file could not be written."""
        self._take_write_error()  # a failure of an earlier (delayed) save is not this one's
        try:
            await self.async_save(data)
        except Exception as err:
            raise StoreWriteError(f"{self.key} could not be written: {err}") from err
        if (error := self._take_write_error()) is not None:
            raise StoreWriteError(f"{self.key} could not be written: {error}") from error


# "day" (YYYYMMDD, local) is the day "completed_today" and "failed_today" count.
STAT_KEYS: Final = (
    "processed",
    "completed",
    "failed",
    "completion_seconds",
    "day",
    "completed_today",
    "failed_today",
)

# Progress is a fact the user can see again after a restart, but not one worth a disk write per percent.
PROGRESS_SAVE_DELAY: Final = 10


class PrinterRecord(TypedDict):
    """What the REST API stores about a printer beyond its connection (which is the subentry's)."""

    id: int
    brand: str
    type: str
    build_volume: dict[str, Any] | None
    filament: dict[str, Any] | None


class _StoredPrinters(TypedDict):
    next_id: int
    printers: dict[str, PrinterRecord]


class PrinterRegistry:
    """Integer ids for printers, stable across restarts, keyed by subentry id."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the registry; call async_load before use."""
        self._store = FactStore[_StoredPrinters](hass, STORAGE_VERSION, f"{DOMAIN}.printers")
        self._data: _StoredPrinters = {"next_id": 1, "printers": {}}

    async def async_load(self) -> None:
        """Read the stored records."""
        if (stored := await self._store.async_load()) is not None:
            self._data = stored

    def get(self, subentry_id: str) -> PrinterRecord | None:
        """Return a printer's record."""
        return self._data["printers"].get(subentry_id)

    def subentry_for(self, printer_id: int) -> str | None:
        """Return the subentry id of an integer printer id."""
        for subentry_id, record in self._data["printers"].items():
            if record["id"] == printer_id:
                return subentry_id
        return None

    async def async_ensure(self, subentry_id: str, **details: Any) -> PrinterRecord:
        """Return the record of a subentry, creating it (with the next id) when missing."""
        record = self._data["printers"].get(subentry_id)
        if record is None:
            record = PrinterRecord(
                id=self._data["next_id"],
                brand=details.get("brand") or "Bambu Lab",
                type=details.get("type") or "FDM",
                build_volume=details.get("build_volume"),
                filament=details.get("filament"),
            )
            self._data["next_id"] += 1
            self._data["printers"][subentry_id] = record
            # An id handed out must never be handed out again: save before returning.
            await self._store.async_save(self._data)
        return record

    async def async_ensure_all(self, subentry_ids: Iterable[str]) -> None:
        """Create the missing records of several subentries (the next ids, in order) with one save.

        A farm of a hundred printers set up for the first time writes its file once, not a hundred times.
        """
        missing = [subentry_id for subentry_id in subentry_ids if subentry_id not in self._data["printers"]]
        for subentry_id in missing:
            self._data["printers"][subentry_id] = PrinterRecord(
                id=self._data["next_id"], brand="Bambu Lab", type="FDM", build_volume=None, filament=None
            )
            self._data["next_id"] += 1
        if missing:  # ids handed out must never be handed out again: saved before they are used
            await self._store.async_save(self._data)

    async def async_update(self, subentry_id: str, **details: Any) -> PrinterRecord:
        """Change the stored details of a printer."""
        record = await self.async_ensure(subentry_id)
        for key in ("brand", "type", "build_volume", "filament"):
            if key in details:
                record[key] = details[key]
        await self._store.async_save(self._data)
        return record

    async def async_remove(self, subentry_id: str) -> None:
        """Forget a printer (its id is not reused)."""
        if self._data["printers"].pop(subentry_id, None) is not None:
            await self._store.async_save(self._data)


class _StoredIds(TypedDict):
    next_id: int
    ids: dict[str, int]


class IdRegistry:
    """Integer ids for one kind of device, stable across restarts and never reused, keyed by subentry id."""

    def __init__(self, hass: HomeAssistant, kind: str) -> None:
        """Create the registry of `kind` ("ottoejects", ...); call async_load before use."""
        self._store = FactStore[_StoredIds](hass, STORAGE_VERSION, f"{DOMAIN}.{kind}")
        self._data: _StoredIds = {"next_id": 1, "ids": {}}

    async def async_load(self) -> None:
        """Read the stored ids."""
        if (stored := await self._store.async_load()) is not None:
            self._data = stored

    def subentry_for(self, device_id: int) -> str | None:
        """The subentry of an integer id."""
        return next((subentry for subentry, number in self._data["ids"].items() if number == device_id), None)

    async def async_ensure(self, subentry_id: str) -> int:
        """The id of a subentry, handed out (and saved) on first use."""
        if (number := self._data["ids"].get(subentry_id)) is None:
            number = self._data["ids"][subentry_id] = self._data["next_id"]
            self._data["next_id"] += 1
            await self._store.async_save(self._data)
        return number

    async def async_remove(self, subentry_id: str) -> None:
        """Forget a subentry's id (it is not reused)."""
        if self._data["ids"].pop(subentry_id, None) is not None:
            await self._store.async_save(self._data)


class _StoredRack(TypedDict, total=False):
    id: int
    shelves: list[dict[str, Any]]
    # Shelf number (as text) -> {"filename", "completed_at"} of a print whose job was deleted.
    kept: dict[str, dict[str, Any]]


class _StoredRacks(TypedDict):
    next_id: int
    racks: dict[str, _StoredRack]


class RackStore:
    """Racks' integer ids and shelves, by subentry id."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store; call async_load before use."""
        self._store = FactStore[_StoredRacks](hass, STORAGE_VERSION, f"{DOMAIN}.racks")
        self._data: _StoredRacks = {"next_id": 1, "racks": {}}
        self._shelves: dict[str, list[Shelf]] = {}

    async def async_load(self) -> None:
        """Read the stored racks."""
        if (stored := await self._store.async_load()) is not None:
            self._data = stored
        self._shelves = {
            subentry_id: [Shelf(**shelf) for shelf in rack["shelves"]]
            for subentry_id, rack in self._data["racks"].items()
        }

    async def _async_save(self) -> None:
        for subentry_id, shelves in self._shelves.items():
            self._data["racks"][subentry_id]["shelves"] = [asdict(shelf) for shelf in shelves]
        await self._store.async_save(self._data)

    def rack_id(self, subentry_id: str) -> int | None:
        """The integer id of a rack."""
        rack = self._data["racks"].get(subentry_id)
        return rack["id"] if rack else None

    def subentry_for(self, rack_id: int) -> str | None:
        """The subentry id of an integer rack id."""
        for subentry_id, rack in self._data["racks"].items():
            if rack["id"] == rack_id:
                return subentry_id
        return None

    def shelves(self, subentry_id: str) -> list[Shelf]:
        """A rack's shelves, in order."""
        return self._shelves.get(subentry_id, [])

    async def async_ensure(self, subentry_id: str, number_of_shelves: int) -> int:
        """Create or resize a rack's shelves (removed shelves must be empty); return its id."""
        rack = self._data["racks"].get(subentry_id)
        if rack is None:
            rack = _StoredRack(id=self._data["next_id"], shelves=[])
            self._data["next_id"] += 1
            self._data["racks"][subentry_id] = rack
            self._shelves[subentry_id] = []
        shelves = self._shelves[subentry_id]
        if len(shelves) == number_of_shelves:
            return rack["id"]
        occupied = [shelf.shelf_number for shelf in shelves[number_of_shelves:] if shelf.occupied]
        if occupied:
            raise ShelfError(f"Shelves {occupied} hold plates: empty them before removing them.")
        del shelves[number_of_shelves:]
        shelves.extend(Shelf(number) for number in range(len(shelves) + 1, number_of_shelves + 1))
        await self._async_save()
        return rack["id"]

    async def async_remove(self, subentry_id: str) -> None:
        """Forget a rack (its id is not reused)."""
        if self._data["racks"].pop(subentry_id, None) is not None:
            self._shelves.pop(subentry_id, None)
            await self._async_save()

    async def async_set_shelf(self, subentry_id: str, shelf: Shelf) -> tuple[Shelf, Shelf]:
        """Replace a validated shelf and save; return (before, after).

        What was kept of a deleted job's print goes with the plate it described.
        """
        shelves = self._shelves[subentry_id]
        before = shelves[shelf.shelf_number - 1]
        shelves[shelf.shelf_number - 1] = shelf
        if before.print_job_id != shelf.print_job_id:
            self._data["racks"][subentry_id].get("kept", {}).pop(str(shelf.shelf_number), None)
        await self._async_save()
        return before, shelf

    def kept(self, subentry_id: str, shelf_number: int) -> dict[str, Any] | None:
        """What a shelf keeps of the print on it when its job was deleted: its file and finish time."""
        return self._data["racks"][subentry_id].get("kept", {}).get(str(shelf_number))

    async def async_keep(self, job_id: int, record: dict[str, Any]) -> None:
        """A job is being deleted: the shelves holding its print keep its file and finish time."""
        changed = False
        for subentry_id, shelves in self._shelves.items():
            for shelf in shelves:
                if shelf.print_job_id == job_id:
                    self._data["racks"][subentry_id].setdefault("kept", {})[str(shelf.shelf_number)] = record
                    changed = True
        if changed:
            await self._async_save()


class _StoredJobs(TypedDict):
    next_item_id: int
    next_job_id: int
    items: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    bed_clear: dict[str, bool]
    # Printer id -> [file name, start, seen running] of a print whose job was deleted while it ran.
    dismissed: dict[str, list[Any]]
    # Counters of ended jobs, kept apart from the jobs, which can be deleted (JobStore.stats).
    stats: dict[str, int]
    # Printer id -> the start time of the print whose plate was taken off when its bed was marked clear.
    bed_cleared_after: dict[str, int | None]
    # Printer id -> the [kind, code] of each printer error already announced (minor version 2).
    announced_errors: dict[str, list[list[str]]]


# 2: `dismissed` holds at most one print per printer, by start time (1 kept a start minute per print);
# jobs may have `start_time_before`. 3: jobs have a `stage`. 4: jobs may have shelves reserved, an
# ejection `workflow`, `any_printer`, a `queue_position` (their defaults are what 3 meant); a 3 can
# no longer read the file without losing them, hence the major version.
JOBS_STORAGE_VERSION: Final = 4
# Minor 2: `announced_errors` (a 4.1 file has none: nothing announced yet).
JOBS_STORAGE_MINOR_VERSION: Final = 2


class JobsStorage(FactStore[_StoredJobs]):
    """The jobs file, with its migrations."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> _StoredJobs:
        if old_major_version > JOBS_STORAGE_VERSION:
            raise StoreFromTheFuture(f"{self.key} is version {old_major_version}; update the integration.")
        data = dict(old_data)
        if old_major_version < 2:
            # Version 1 marked deleted automatic jobs by start minute and did not say which was the
            # newest; their prints are long over. Marks that could block a new print are dropped.
            data["dismissed"] = {}
        if old_major_version < 3:
            # Until 3 a job ended when its print did: its stage is its status's.
            data["jobs"] = [
                {**job, "stage": STAGE_OF_STATUS[job["status"]]} for job in old_data.get("jobs", [])
            ]
        data.setdefault("announced_errors", {})
        return data  # type: ignore[return-value]


def _reserves(job: PrintJob) -> bool:
    """Whether a job's reserved shelves are still its own: it is open, or its plate is on its way."""
    return job.status in OPEN_STATUSES or (job.workflow is not None and not job.workflow.get("done"))


def _load[T](cls: type[T], raw: dict[str, Any]) -> T:
    """Build a dataclass from stored data, ignoring keys a newer or older version wrote."""
    names = {item.name for item in fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in raw.items() if key in names})


class JobStore:
    """Items, jobs and each printer's "bed clear" flag."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store; call async_load before use."""
        # Written whole or not at all (a FactStore): a job's step is stored before it is sent.
        self._store = JobsStorage(
            hass, JOBS_STORAGE_VERSION, f"{DOMAIN}.jobs", minor_version=JOBS_STORAGE_MINOR_VERSION
        )
        self.items: dict[int, PrintItem] = {}
        self.jobs: dict[int, PrintJob] = {}
        self.bed_clear: dict[int, bool] = {}
        # The start of the print whose plate was taken off when a bed was marked clear: a print that
        # ended since (seen or not: Home Assistant down, printer offline) left a plate again.
        self.bed_cleared_after: dict[int, int | None] = {}
        # The print each printer was printing when its job was deleted: it must not come back as an
        # automatic job. One per printer, forgotten once the printer is seen doing something else.
        self.dismissed: dict[int, Dismissed] = {}
        # Ended jobs, ever: processed (ended after they started), completed, failed, and the
        # seconds from start to completion of the completed ones.
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        # The printer errors each printer's print_farm_printer_error event already announced, so that
        # a restart or a reload does not announce a standing error again.
        self.announced_errors: dict[int, frozenset[tuple[str, str]]] = {}
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
        self.bed_cleared_after = {
            int(key): value for key, value in stored.get("bed_cleared_after", {}).items()
        }
        self.dismissed = {
            int(printer): Dismissed(SeenPrint(str(name), None if start is None else int(start)), bool(seen))
            for printer, (name, start, seen) in stored.get("dismissed", {}).items()
        }
        self.stats = {**self.stats, **{key: int(value) for key, value in stored.get("stats", {}).items()}}
        self.announced_errors = {
            int(printer): frozenset((str(kind), str(code)) for kind, code in announced)
            for printer, announced in stored.get("announced_errors", {}).items()
        }
        self._next_item_id = stored["next_item_id"]
        self._next_job_id = stored["next_job_id"]

    def _data(self) -> _StoredJobs:
        return {
            "next_item_id": self._next_item_id,
            "next_job_id": self._next_job_id,
            "items": [asdict(item) for item in self.items.values()],
            "jobs": [asdict(job) for job in self.jobs.values()],
            "bed_clear": {str(key): value for key, value in self.bed_clear.items()},
            "bed_cleared_after": {str(key): value for key, value in self.bed_cleared_after.items()},
            "stats": dict(self.stats),
            "dismissed": {
                str(printer): [mark.print.name, mark.print.start, mark.seen_running]
                for printer, mark in self.dismissed.items()
            },
            "announced_errors": {
                str(printer): sorted([kind, code] for kind, code in announced)
                for printer, announced in self.announced_errors.items()
                if announced
            },
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

    async def async_delete_job(self, job_id: int) -> PrintJob:
        """Forget a job."""
        job = self.jobs.pop(job_id)
        await self.async_save()
        return job

    def active_job(self, printer_id: int) -> PrintJob | None:
        """The job printing on a printer, if any."""
        return next(
            (job for job in self.jobs.values() if job.printer_id == printer_id and job.status == PRINTING),
            None,
        )

    def reserved_shelves(self, rack_id: int, *, except_job: int | None = None) -> set[int]:
        """The shelves of a rack that open jobs, and plates on their way, reserved."""
        return {
            shelf
            for job in self.jobs.values()
            if job.rack_id == rack_id and job.id != except_job and _reserves(job)
            for shelf in (job.store_shelf, job.grab_shelf)
            if shelf is not None
        }

    def reserving_job(self, rack_id: int, shelf_number: int) -> int | None:
        """The job that reserved a shelf for its plate, if one did."""
        return next(
            (
                job.id
                for job in self.jobs.values()
                if job.rack_id == rack_id
                and shelf_number in (job.store_shelf, job.grab_shelf)
                and _reserves(job)
            ),
            None,
        )

    def today(self, key: str, day: int) -> int:
        """A per-day counter ("completed_today", "failed_today") for the day given (YYYYMMDD)."""
        return self.stats[key] if self.stats["day"] == day else 0

    def queued(self) -> list[PrintJob]:
        """Queued jobs in queue order (priority, then the position a person gave, then age)."""
        return sorted((job for job in self.jobs.values() if job.status == QUEUED), key=queue_order)
