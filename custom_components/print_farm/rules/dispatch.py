"""Which queued jobs start now, and why the others wait: the dispatch rule, without Home Assistant.

Jobs with `auto_start` start by themselves, in queue order: priority first (1 is the highest), then
age (id). A printer takes the first job that waits for it; the jobs
behind it wait for that one. A job starts only on a printer that is online, not printing, not
paused, and whose bed is known clear (a failed print leaves its plate: a person clears it first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .jobs import QUEUED, START_SENT, STARTING, PrintJob

PROCESSING_OFF = "job processing is switched off"
NO_PRINTER = "its printer is not part of the farm"
OFFLINE = "the printer is offline"
BUSY = "the printer is busy"
BED_NOT_CLEAR = "the printer's bed is not known to be clear"
MANUAL = "it starts by hand (auto_start is off)"
UNCONFIRMED = "its start was sent without an answer: the printer's reports will show whether it prints"
SENDING = "its file is being sent to the printer"


@dataclass(frozen=True, slots=True)
class PrinterReadiness:
    """What dispatch needs to know of a printer."""

    online: bool
    busy: bool  # printing, paused, starting a job, or a job of ours on it is not over
    bed_clear: bool
    plate_of: int | None = None  # the job whose finished print waits on the bed to be taken off


@dataclass(slots=True)
class Dispatch:
    """The jobs to start now (at most one per printer), and why each other queued job waits."""

    starts: list[PrintJob] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)


def queue_order(job: PrintJob) -> tuple[int, int]:
    """A job's place in the queue: priority (1 first), then age."""
    return job.priority, job.id


def plan(jobs: Iterable[PrintJob], printers: Mapping[int, PrinterReadiness], *, enabled: bool) -> Dispatch:
    """Decide, for every queued job, whether it starts now or why it waits."""
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
        else:
            result.starts.append(job)
    return result
