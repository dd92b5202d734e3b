"""Which queued jobs start now, and why the others wait: the dispatch rule, without Home Assistant.

Jobs with `auto_start` start by themselves, in queue order: priority first (1 is the highest), then
the position a person gave it among the jobs of its priority, then age (id). A printer takes the first job that waits for it; the jobs
behind it wait for that one. A job starts only on a printer that is online, not printing, not
paused, and whose bed is known clear (a failed print leaves its plate: a person clears it first).
On a printer served by an OttoEject it also needs the ejector online and, on the ejector's rack, a
free shelf for its finished plate and an empty plate to load afterwards: both are taken for it
here, so that the jobs started in one decision never count on the same shelf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .fit import Fit
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
ANY_BUSY = "every printer that can print it is busy"
SIGNING = "the printer only takes signed commands: turn on LAN-only mode with Developer Mode on it"


@dataclass(frozen=True, slots=True)
class PrinterReadiness:
    """What dispatch needs to know of a printer."""

    online: bool
    busy: bool  # printing, paused, starting a job, or a job of ours on it is not over
    bed_clear: bool
    plate_of: int | None = None  # the job whose finished print waits on the bed to be taken off
    ejector: int | None = None  # the OttoEject that takes its plates off, if it has one
    needs_signing: bool = False  # its authorization control refuses our (unsigned) commands


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
    printers: dict[int, int] = field(default_factory=dict)  # job id -> the printer it starts on
    fits: dict[int, Fit] = field(default_factory=dict)  # job id -> how it starts there


type FitCheck = Callable[[PrintJob, int], Fit | str]


def queue_order(job: PrintJob) -> tuple[int, int, int]:
    """A job's place in the queue: priority (1 first), then its position as reordered, then age."""
    return job.priority, job.id if job.queue_position is None else job.queue_position, job.id


def reorder(group: list[PrintJob], job: PrintJob, position: int) -> None:
    """Put a job at a position (from 1) among the queued jobs of its priority, numbering them anew."""
    others = [other for other in sorted(group, key=queue_order) if other.id != job.id]
    index = min(max(position, 1), len(others) + 1) - 1
    for number, member in enumerate([*others[:index], job, *others[index:]], start=1):
        member.queue_position = number


def _blocked(printer: PrinterReadiness) -> str | None:
    """Why a printer cannot take a job now, or None when it can."""
    if not printer.online:
        return OFFLINE
    if printer.needs_signing:
        return SIGNING
    if printer.plate_of is not None:
        return f"job {printer.plate_of}'s plate waits to be taken off the printer"
    if printer.busy:
        return BUSY
    if not printer.bed_clear:
        return BED_NOT_CLEAR
    return None


class _Decision:
    """One dispatch decision: the printers still free, and each file's fit, asked once per printer."""

    def __init__(
        self,
        printers: Mapping[int, PrinterReadiness],
        pools: Mapping[int, ShelfPool],
        fit: FitCheck | None,
    ) -> None:
        self.printers = printers
        self.pools = pools
        self.check = fit
        self.free = sorted(pid for pid, printer in printers.items() if _blocked(printer) is None)
        self.first_for: dict[int, int] = {}  # printer id -> the job first in line for it
        self.result = Dispatch()
        self._fits: dict[tuple[int | None, int], dict[int, Fit | str]] = {}
        self._fitting: dict[tuple[int | None, int], tuple[list[int], str | None]] = {}

    def fit(self, job: PrintJob, printer_id: int) -> Fit | str:
        if self.check is None:
            return Fit(None, False)
        row = self._fits.setdefault((job.print_item_id, job.plate), {})
        if (known := row.get(printer_id)) is None:
            known = row[printer_id] = self.check(job, printer_id)
        return known

    def fitting(self, job: PrintJob) -> tuple[list[int], str | None]:
        """The printers that can print the job (in id order), and why the first other one cannot."""
        key = (job.print_item_id, job.plate)
        if (known := self._fitting.get(key)) is not None:
            return known
        fitting: list[int] = []
        reason = None
        for printer_id in sorted(self.printers):
            found = self.fit(job, printer_id)
            if isinstance(found, str):
                reason = reason or found
            else:
                fitting.append(printer_id)
        self._fitting[key] = fitting, reason
        return fitting, reason

    def start(self, job: PrintJob, printer_id: int, how: Fit) -> str | None:
        """Start the job on a free printer, with shelves from its OttoEject's pool; or say why not."""
        printer = self.printers[printer_id]
        if printer.ejector is not None:
            pool = self.pools.get(printer.ejector)
            taken = pool.take(printer.ejector) if pool is not None else EJECTOR_OFFLINE
            if isinstance(taken, str):
                return taken
            self.result.reservations[job.id] = taken
        self.result.starts.append(job)
        self.result.printers[job.id] = printer_id
        self.result.fits[job.id] = how
        self.first_for.setdefault(printer_id, job.id)
        self.free.remove(printer_id)
        return None

    def pinned(self, job: PrintJob, printer_id: int) -> str | None:
        printer = self.printers.get(printer_id)
        ahead = self.first_for.get(printer_id)
        if printer is None:
            return NO_PRINTER
        if ahead is not None:
            return f"job {ahead} comes first on its printer"
        if (blocked := _blocked(printer)) is not None:
            self.first_for[printer_id] = job.id
            return blocked
        how = self.fit(job, printer_id)
        if isinstance(how, str):
            return f"its printer cannot print it: {how}"
        return self.start(job, printer_id, how)

    def anywhere(self, job: PrintJob) -> str | None:
        if not self.free:
            fitting, reason = self.fitting(job)
            return ANY_BUSY if fitting else f"no printer can print it: {reason}"
        reasons: list[str] = []
        for printer_id in list(self.free):
            how = self.fit(job, printer_id)
            if isinstance(how, str) or (printer_id in self.first_for):
                continue
            refused = self.start(job, printer_id, how)
            if refused is None:
                return None
            reasons.append(refused)
        if reasons:
            return reasons[0]
        fitting, reason = self.fitting(job)
        return ANY_BUSY if fitting else f"no printer can print it: {reason}"


def plan(
    jobs: Iterable[PrintJob],
    printers: Mapping[int, PrinterReadiness],
    *,
    enabled: bool,
    pools: Mapping[int, ShelfPool] | None = None,
    fit: FitCheck | None = None,
) -> Dispatch:
    """Decide, for every queued job, whether it starts now (and where) or why it waits.

    `pools` are the ejectors' shelves by ejector id; `fit` says whether a printer can print a job
    (and how its start is sent), asked once per file and printer.
    """
    decision = _Decision(printers, pools or {}, fit)
    result = decision.result
    for job in sorted((job for job in jobs if job.status == QUEUED), key=queue_order):
        if job.stage in (STARTING, START_SENT):
            result.waiting[job.id] = SENDING if job.stage == STARTING else UNCONFIRMED
            if job.printer_id is not None:
                decision.first_for.setdefault(job.printer_id, job.id)
                if job.printer_id in decision.free:
                    decision.free.remove(job.printer_id)
            continue
        if not job.auto_start:
            result.waiting[job.id] = MANUAL
            continue
        if not enabled:
            result.waiting[job.id] = PROCESSING_OFF
            continue
        reason = decision.anywhere(job) if job.printer_id is None else decision.pinned(job, job.printer_id)
        if reason is not None:
            result.waiting[job.id] = reason
    return result
