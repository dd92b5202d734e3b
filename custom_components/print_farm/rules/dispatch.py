"""Which queued jobs start now, and why the others wait: the dispatch rule, without Home Assistant.

Jobs with `auto_start` start by themselves, in queue order: priority first (1 is the highest), then
age (id). A printer takes the first job that waits for it; the jobs
behind it wait for that one. A job starts only on a printer that is online, not printing, not
paused, and whose bed is known clear (a failed print leaves its plate: a person clears it first).
On a printer served by an OttoEject it also needs the ejector online and, on the ejector's rack, a
free shelf for its finished plate and an empty plate to load afterwards: both are taken for it
here, so that the jobs started in one decision never count on the same shelf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .jobs import QUEUED, START_SENT, STARTING, PrintJob
from .workflow import Reservation

PROCESSING_OFF = "job processing is switched off"
NO_PRINTER = "its printer is not part of the farm"
OFFLINE = "the printer is offline"
BUSY = "the printer is busy"
BED_NOT_CLEAR = "the printer's bed is not known to be clear"
MANUAL = "it starts by hand (auto_start is off)"
UNCONFIRMED = "its start was sent without an answer: the printer's reports will show whether it prints"
SENDING = "its file is being sent to the printer"
EJECTOR_OFFLINE = "its printer's OttoEject is offline"
NO_RACK = "its printer's OttoEject has no rack"
RACK_FULL = "the rack is full: no free shelf for the finished plate"
NO_EMPTY_PLATE = "the rack has no empty plate to load after the print"


@dataclass(frozen=True, slots=True)
class PrinterReadiness:
    """What dispatch needs to know of a printer."""

    online: bool
    busy: bool  # printing, paused, starting a job, or a job of ours on it is not over
    bed_clear: bool
    plate_of: int | None = None  # the job whose finished print waits on the bed to be taken off
    ejector: int | None = None  # the OttoEject that takes its plates off, if it has one


@dataclass(slots=True)
class ShelfPool:
    """What an OttoEject can offer a new job: online or not, its rack, and the unreserved shelves."""

    online: bool
    rack_id: int | None
    free: list[int] = field(default_factory=list)  # no plate: room for a finished one, lowest first
    empty: list[int] = field(default_factory=list)  # an empty plate to load, lowest first

    def take(self, ejector_id: int) -> Reservation | str:
        """Reserve a free and an empty-plate shelf, or say why not."""
        if not self.online:
            return EJECTOR_OFFLINE
        if self.rack_id is None:
            return NO_RACK
        if not self.free:
            return RACK_FULL
        if not self.empty:
            return NO_EMPTY_PLATE
        return Reservation(ejector_id, self.rack_id, self.free.pop(0), self.empty.pop(0))


@dataclass(slots=True)
class Dispatch:
    """The jobs to start now (at most one per printer), and why each other queued job waits."""

    starts: list[PrintJob] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)
    reservations: dict[int, Reservation] = field(default_factory=dict)  # job id -> its shelves


def queue_order(job: PrintJob) -> tuple[int, int]:
    """A job's place in the queue: priority (1 first), then age."""
    return job.priority, job.id


def plan(
    jobs: Iterable[PrintJob],
    printers: Mapping[int, PrinterReadiness],
    *,
    enabled: bool,
    pools: Mapping[int, ShelfPool] | None = None,
) -> Dispatch:
    """Decide, for every queued job, whether it starts now or why it waits (`pools`: by ejector id)."""
    result = Dispatch()
    first_for: dict[int, int] = {}  # printer id -> the job first in line for it
    for job in sorted((job for job in jobs if job.status == QUEUED), key=queue_order):
        printer = printers.get(job.printer_id)
        ahead = first_for.get(job.printer_id)
        if job.stage in (STARTING, START_SENT):
            result.waiting[job.id] = SENDING if job.stage == STARTING else UNCONFIRMED
            first_for.setdefault(job.printer_id, job.id)
            continue
        if not job.auto_start:
            result.waiting[job.id] = MANUAL
            continue
        first_for.setdefault(job.printer_id, job.id)
        if not enabled:
            result.waiting[job.id] = PROCESSING_OFF
        elif printer is None:
            result.waiting[job.id] = NO_PRINTER
        elif ahead is not None:
            result.waiting[job.id] = f"job {ahead} comes first on its printer"
        elif not printer.online:
            result.waiting[job.id] = OFFLINE
        elif printer.plate_of is not None:
            result.waiting[job.id] = f"job {printer.plate_of}'s plate waits to be taken off the printer"
        elif printer.busy:
            result.waiting[job.id] = BUSY
        elif not printer.bed_clear:
            result.waiting[job.id] = BED_NOT_CLEAR
        elif printer.ejector is not None:
            pool = (pools or {}).get(printer.ejector)
            taken = pool.take(printer.ejector) if pool is not None else EJECTOR_OFFLINE
            if isinstance(taken, str):
                result.waiting[job.id] = taken
            else:
                result.reservations[job.id] = taken
                result.starts.append(job)
        else:
            result.starts.append(job)
    return result
