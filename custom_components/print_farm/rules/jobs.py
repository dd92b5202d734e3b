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
# A job's `failure` when its printer was found printing another print before this one's end was seen.
ENDED_UNSEEN: Final = "ended_unseen"

# A job's stage, the seed's `orchestration_status`: finer than its status (docs/API.md lists them).
WAITING: Final = "waiting"  # QUEUED: waits to be started
# QUEUED: its file is being sent; nothing is started yet (after a restart it waits again).
STARTING: Final = "starting"
# QUEUED: its start command was sent (stored first); if the answer is lost, it stays here until the
# printer's reports show it printing: a start is never sent twice.
START_SENT: Final = "start_sent"
STAGE_PRINTING: Final = "printing"  # PRINTING: the printer prepares or prints it
STAGE_PAUSED: Final = "paused"  # PRINTING: the printer paused it
AWAITING_REMOVAL: Final = "awaiting_removal"  # PRINTING at 100 %: printed, its plate waits for a person
RUNNING_STAGES: Final = frozenset({STAGE_PRINTING, STAGE_PAUSED})
STAGE_OF_STATUS: Final = {
    QUEUED: WAITING,
    PRINTING: STAGE_PRINTING,
    COMPLETED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
}


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
    printer_id: int | None  # None while a job for "any printer" waits; its printer once started
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
    # The start the printer showed before this job was sent there: never this job's own.
    start_time_before: int | None = None
    stage: str = WAITING
    # The shelves reserved for its plate when it was started on a printer with an OttoEject (the
    # seed's assigned_store_slot / assigned_grab_slot), and the plate's way through the ejection
    # workflow once its print finished (rules/workflow.py `Workflow`, as plain data).
    rack_id: int | None = None
    store_shelf: int | None = None
    grab_shelf: int | None = None
    workflow: dict[str, Any] | None = None
    any_printer: bool = False  # queued for any printer that can print it (its printer_id set at start)
    # Its place among the queued jobs of its priority once a person reordered them (else its age).
    queue_position: int | None = None
    # The trays its filaments were sent to print from (rules/fit.py), the production run it
    # belongs to (seed 000), and what it used, recorded with its end (rules/books/usage.py
    # `FilamentUse` as plain data): what the books deduct, once.
    ams_mapping: list[int] | None = None
    production_run_id: str | None = None
    filament_use: list[dict[str, Any]] | None = None
    # When its print ended and whether it finished, recorded with its use: what a deduction
    # replayed after a restart charges, never the time of the replay.
    use_ended_at: str | None = None
    use_finished: bool | None = None

    @property
    def on_printer(self) -> int:
        """The printer of a job that left the queue (it always has one by then)."""
        if self.printer_id is None:
            raise ValueError(f"print job {self.id} has no printer yet")
        return self.printer_id


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


@dataclass(frozen=True, slots=True)
class SeenPrint:
    """A print as a printer reports it: its file's normalised name ("" when unknown) and start (unix s)."""

    name: str
    start: int | None

    @classmethod
    def of_job(cls, job: PrintJob, filename: str | None) -> SeenPrint:
        """The print a job is bound to (its start is known once the printer reported it)."""
        return cls(normalise_filename(filename), job.printer_start_time)

    def is_other_than(self, bound: SeenPrint) -> bool:
        """Whether this is another print than the one a job is bound to.

        Two start times decide alone (a printer starts one print a second, and a report may carry a
        new name before or after its new start); names decide only when a start is unknown, and
        what is unknown decides nothing.
        """
        if bound.start is not None and self.start is not None:
            return bound.start != self.start
        return bool(bound.name and self.name and bound.name != self.name)

    def is_dismissed_by(self, mark: Dismissed) -> bool:
        """Whether a deleted job's mark stands for this print (the same file, the same start if known)."""
        other = mark.print
        return other.name == self.name and (
            other.start is None or self.start is None or other.start == self.start
        )


@dataclass(slots=True)
class Dismissed:
    """The print a job was running when it was deleted: it must not come back as an automatic job."""

    print: SeenPrint
    seen_running: bool

    def outlived(self, printing: bool, seen: SeenPrint) -> bool:
        """Whether the mark's print is over, after a report (and note when it is seen running).

        Over when the printer prints another print, or stops printing after this one was seen
        running: a stale report from before it started does not end it.
        """
        if printing:
            if not seen.is_dismissed_by(self):
                return True
            self.seen_running = True
            return False
        return self.seen_running


def printed_file(gcode_file: str | None, subtask_name: str | None) -> tuple[str | None, str | None]:
    """(job name, file name) of what a printer reports printing; None where it names nothing.

    X1 and H2 printers report the plate inside the project (`Metadata/plate_1.gcode`) with the
    project's name as the subtask: the project's name says more.
    """
    base = (gcode_file or "").replace("\\", "/").rsplit("/", 1)[-1]
    subtask = (subtask_name or "").strip() or None
    if not base or (base.startswith("plate_") and subtask):
        if subtask is None:
            return None, None
        base = subtask if subtask.lower().endswith(".3mf") else f"{subtask}.3mf"
    return subtask or normalise_filename(base) or base, base


def start_to_bind(job: PrintJob, filename: str | None, seen: SeenPrint) -> int | None:
    """The start time a running job learns from a report, if this report can give it.

    Never the start the printer showed before the job was sent (a first report may still carry the
    previous print's), and only from a report of the job's own file.
    """
    if job.printer_start_time is not None or seen.start is None or seen.start == job.start_time_before:
        return None
    own = normalise_filename(filename)
    if own and seen.name and own != seen.name:
        return None
    return seen.start


def stands_for(job: PrintJob, filename: str | None, seen: SeenPrint, now: float, window_s: int) -> bool:
    """Whether a job already stands for the print a printer reports (no second automatic job).

    The same file, and the same start time when the printer gives one (a reprint of the same file
    is another print); only when it gives none, a job started within `window_s` of now.
    """
    if normalise_filename(filename) != seen.name:
        return False
    if seen.start is not None:
        return job.printer_start_time == seen.start
    when = job.printer_start_time
    if when is None and job.started_at is not None:
        when = int(datetime.fromisoformat(job.started_at).timestamp())
    return when is not None and abs(now - when) <= window_s


def unseen_end(job: PrintJob) -> str:
    """How a job ends whose print was replaced before its end was seen: as far as its last report knew."""
    return COMPLETED if job.progress_percent >= 100 else FAILED
