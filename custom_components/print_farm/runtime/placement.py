"""Where a job can go: the printers that can print it, and the shelves its plate will take.

A printer can print a job when `rules/fit.py` says so from the job's file (its model, nozzle and
filaments, read at upload) and the printer's reports (model, nozzle, loaded trays).
A printer is served by an OttoEject when it names one and its position there; the OttoEject's rack
is the rack that names it. The shelf rule is `rules/workflow.py`'s (lowest free shelf, lowest empty
plate), over the shelves no other job reserved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..const import CONF_OTTOEJECT, CONF_POSITION
from ..protocols.bambu.models import canonical_model
from ..protocols.moonraker import EjectorState
from ..rules.dispatch import ShelfPool
from ..rules.fit import Fit, Loaded, PrinterFacts, file_facts, fit
from ..rules.jobs import OPEN_STATUSES, JobError, PrintJob
from ..rules.racks import PLATE_WITH_PRINT
from ..rules.workflow import Reservation, choose_shelves
from .ottoeject import EjectorCoordinator
from .printer import PrinterCoordinator
from .rack import RackCoordinator
from .storage import JobStore

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

_OFF: Final = frozenset({EjectorState.OFFLINE, EjectorState.ISSUE})


class Placement:
    """The farm's ejector configuration, read from the subentries, and the shelf reservations."""

    def __init__(self, entry: PrintFarmConfigEntry, store: JobStore) -> None:
        """Read the entry's devices and the jobs' reservations as they are at each call."""
        self.entry = entry
        self.store = store

    def ejector_of(self, printer: PrinterCoordinator) -> EjectorCoordinator | None:
        """The OttoEject a printer is configured with (and its position there), if any."""
        subentry_id = printer.subentry.data.get(CONF_OTTOEJECT)
        if not subentry_id or not str(printer.subentry.data.get(CONF_POSITION) or "").strip():
            return None
        return self.entry.runtime_data.ejectors.get(subentry_id)

    def rack_of(self, ejector: EjectorCoordinator) -> RackCoordinator | None:
        """The rack an OttoEject stores plates on (the first that names it)."""
        return next(
            (
                rack
                for rack in self.entry.runtime_data.racks.values()
                if rack.subentry.data.get(CONF_OTTOEJECT) == ejector.subentry.subentry_id
            ),
            None,
        )

    def pool(self, ejector: EjectorCoordinator) -> ShelfPool:
        """What the ejector can offer a new job now: online or not, the unreserved shelves of its rack."""
        rack = self.rack_of(ejector)
        pool = ShelfPool(online=ejector.state not in _OFF, rack_id=rack.rack_id if rack else None)
        if rack is not None:
            reserved = self.store.reserved_shelves(rack.rack_id)
            for shelf in rack.shelves:
                if shelf.shelf_number in reserved:
                    continue
                if not shelf.has_plate:
                    pool.free.append(shelf.shelf_number)
                elif shelf.plate_state != PLATE_WITH_PRINT:
                    pool.empty.append(shelf.shelf_number)
        return pool

    def pools(self) -> dict[int, ShelfPool]:
        """Every ejector's pool, by its id (for a dispatch decision)."""
        return {
            ejector.ejector_id: self.pool(ejector) for ejector in self.entry.runtime_data.ejectors.values()
        }

    def reserve(self, printer: PrinterCoordinator, job: PrintJob) -> Reservation | None:
        """Take the shelves a job's plate needs, before its start (409 when the rack cannot give them).

        None for a printer without an OttoEject. Taken and recorded with no await in between, so
        that two starts never take the same shelf.
        """
        ejector = self.ejector_of(printer)
        if ejector is None:
            return None
        taken = self.pool(ejector).take(ejector.ejector_id)
        if isinstance(taken, str):
            raise JobError(f"Print job {job.id} cannot start now: {taken}.")
        return taken

    def reservation_of(self, job: PrintJob, ejector: EjectorCoordinator) -> Reservation | None:
        """The shelves a finished job's plate uses: reserved at its start, else free ones taken now.

        A job may have started without a reservation (by hand on the printer, or before its
        printer had an OttoEject); None when the rack cannot give it shelves now.
        """
        rack = self.rack_of(ejector)
        if rack is None:
            return None
        if job.rack_id == rack.rack_id and job.store_shelf is not None and job.grab_shelf is not None:
            return Reservation(ejector.ejector_id, job.rack_id, job.store_shelf, job.grab_shelf)
        store, grab = choose_shelves(
            rack.shelves, self.store.reserved_shelves(rack.rack_id, except_job=job.id)
        )
        if store is None or grab is None:
            return None
        return Reservation(ejector.ejector_id, rack.rack_id, store, grab)

    def fit_of(self, job: PrintJob, printer: PrinterCoordinator) -> Fit | str:
        """How the job starts on the printer (its AMS mapping), or why the printer cannot print it."""
        item = self.store.items.get(job.print_item_id) if job.print_item_id is not None else None
        if item is None:
            return "it has no file to print"
        fields = printer.client.fields
        facts = PrinterFacts(
            model=canonical_model(printer.model) or printer.model,
            nozzle_mm=fields.get("nozzle_diameter"),
            trays=tuple(Loaded(tray.code, tray.material, tray.color) for tray in fields.get("trays") or ()),
        )
        return fit(file_facts(item.info, job.plate, canonical_model), facts)

    def in_use(
        self, *, printer_id: int | None = None, rack_id: int | None = None, ejector_id: int | None = None
    ) -> int | None:
        """A job whose shelves or plate depend on this printer, rack or OttoEject now (None: none)."""
        for job in self.store.jobs.values():
            workflow = job.workflow is not None and not job.workflow.get("done")
            reserved = job.rack_id is not None and job.status in OPEN_STATUSES
            if not (workflow or reserved):
                continue
            if (
                (printer_id is not None and job.printer_id == printer_id)
                or (rack_id is not None and job.rack_id == rack_id)
                or (ejector_id is not None and job.ottoeject_id == ejector_id)
            ):
                return job.id
        return None
