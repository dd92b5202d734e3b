"""What prints take from the books: spools placed in trays, each job's grams deducted once, its cost.

A spool is placed in one tray of one printer (its serial and the tray's slot code, the code
`ams_mapping` uses) or nowhere; a tray holds at most one spool. When a job's print ends, its plan
(`job_uses`: each filament's grams, the tray it was mapped to, the spool placed there, the tray's
own remaining percent as a check) is recorded with the job, and `deduct_job` takes the grams from
the spools under the job's key in the books' ledger, saved with the spools in one write: a replay
(after a restart, a failed save) finds the key and deducts nothing, the same rule as a run's
completion. A job that belongs to a production run also fills the run's materials (marked as
deducted: the run's completion deducts only the rest), its actual grams and hours, and its result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from .catalogue import Catalogue
from .money import limit_places, to_decimal
from .records import (
    COMPLETABLE,
    HOUR_SECONDS,
    IN_PROGRESS,
    PENDING,
    InventoryError,
    ProductionRun,
    RunMaterial,
    Spool,
    new_id,
)

GRAM_PLACES: Final = 3


@dataclass(frozen=True, slots=True)
class FilamentUse:
    """One filament of an ended job: its grams, the tray it printed from, the spool placed there."""

    filament: int  # the project's filament slot, from 1
    material: str | None
    grams: Decimal
    tray: int | None  # the slot code it was mapped to; None when the job has no mapping for it
    spool_id: str | None  # the spool placed in that tray at the job's end; None: nothing is deducted
    tray_percent: int | None = None  # what the tray itself reported left, shown beside the books' grams

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-safe data (grams as text), as the job keeps it."""
        return {
            "filament": self.filament,
            "material": self.material,
            "grams": str(self.grams),
            "tray": self.tray,
            "spool_id": self.spool_id,
            "tray_percent": self.tray_percent,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> FilamentUse:
        """Back from `to_data`."""
        return cls(
            filament=int(data["filament"]),
            material=data.get("material"),
            grams=to_decimal(data["grams"]),
            tray=data.get("tray"),
            spool_id=data.get("spool_id"),
            tray_percent=data.get("tray_percent"),
        )


@dataclass(slots=True)
class JobDeduction:
    """What one job took from the spools (the ledger's entry, under the job's key)."""

    job_id: int
    at: datetime
    spools: dict[str, Decimal] = field(default_factory=dict)  # spool id: grams taken
    material_cost: Decimal | None = None  # None when a used spool has no price
    run_id: str | None = None
    machine_cost: Decimal = Decimal(0)  # its print time at the farm's hourly rate then
    # Grams the job used beyond what the books said a spool held (taken: what the spool had).
    short: dict[str, Decimal] = field(default_factory=dict)

    @property
    def cost(self) -> Decimal | None:
        """What the job cost: filament and machine time (None when a spool it used has no price)."""
        return None if self.material_cost is None else self.material_cost + self.machine_cost


def job_grams(
    info: Mapping[str, Any], plate: int, total_grams: float | None
) -> list[tuple[int, str | None, Decimal]]:
    """Each filament's grams of one plate, from the file's facts: (slot from 1, material, grams).

    The plate's per-filament weights, else the plate's own weight as filament 1; for a file of one
    plate the file's per-tool weights, else its total as filament 1. A plate of a multi-plate file
    without figures of its own has no known weight (never plate 1's).
    """
    plates = info.get("plates") or []
    entry = next((item for item in plates if item.get("index") == plate), None)
    tools = entry.get("filaments") if entry is not None else None
    if not tools and entry is not None and entry.get("weight_g"):
        materials = [material for material in info.get("materials") or [] if material]
        material = info.get("filament_type") or (materials[0] if len(set(materials)) == 1 else None)
        return [(1, material, _grams(entry["weight_g"]))]
    if not tools and len(plates) > 1:
        return []
    if not tools:
        tools = info.get("filament_per_tool") or []
    found = [
        (int(tool.get("tool", 0)) + 1, tool.get("material"), _grams(tool["grams"]))
        for tool in tools
        if tool.get("grams")
    ]
    if not found and total_grams:
        found = [(1, info.get("filament_type"), _grams(total_grams))]
    return found


def job_uses(
    grams: Sequence[tuple[int, str | None, Decimal]],
    ams_mapping: Sequence[int] | None,
    fraction: Decimal,
    placed: Mapping[int, str],
    tray_percent: Mapping[int, int | None],
    loaded_tray: int | None = None,
) -> list[FilamentUse]:
    """The plan of an ended job: each filament's grams (times `fraction`) and the spool of its tray.

    A filament maps to the tray its `ams_mapping` entry names; without a mapping (plain G-code) the
    one filament prints from the tray loaded at the end (`loaded_tray`). `placed` is the spool in
    each tray of the job's printer; a tray with none deducts nothing (its `spool_id` is None).
    """
    uses = []
    for slot, material, weight in grams:
        if ams_mapping is not None:
            code = ams_mapping[slot - 1] if slot <= len(ams_mapping) else -1
            tray = code if code >= 0 else None
        else:
            tray = loaded_tray if len(grams) == 1 else None
        uses.append(
            FilamentUse(
                filament=slot,
                material=material,
                grams=limit_places(weight * fraction, GRAM_PLACES),
                tray=tray,
                spool_id=placed.get(tray) if tray is not None else None,
                tray_percent=tray_percent.get(tray) if tray is not None else None,
            )
        )
    return uses


def fraction_used(finished: bool, progress_percent: int) -> Decimal:
    """How much of the file's filament a print used: all when it finished, else its progress.

    A print that ended unfinished with no progress ever reported counts as 0 (nothing deducted;
    the job's plan logs it).
    """
    if finished:
        return Decimal(1)
    return Decimal(max(0, min(100, progress_percent))) / 100


class PrintBooks(Catalogue):
    """The catalogue's side of printing (`Books` adds the runs): placements, the job ledger, runs fed by jobs."""

    runs: dict[str, ProductionRun]
    material_used_grams: Decimal
    job_deductions: dict[str, JobDeduction]
    dismissed_tray_uuids: set[str]

    # placements

    def spool_in(self, serial: str, tray: int) -> Spool | None:
        """The spool placed in a printer's tray, if any."""
        return next(
            (s for s in self.spools.values() if s.printer_serial == serial and s.tray == tray),
            None,
        )

    def placed_on(self, serial: str) -> dict[int, str]:
        """Spool ids by tray code, for one printer."""
        return {
            s.tray: s.id for s in self.spools.values() if s.printer_serial == serial and s.tray is not None
        }

    def place_spool(self, spool_id: str | None, serial: str, tray: int) -> Spool | None:
        """Put a spool in a tray (taking it from wherever it was), or empty the tray (None).

        The spool that was in the tray is taken out: a tray holds one spool.
        """
        spool = self.spool(spool_id) if spool_id is not None else None
        if (current := self.spool_in(serial, tray)) is not None and current is not spool:
            current.printer_serial = current.tray = None
            current.updated_at = self.now()
        if spool is not None and (spool.printer_serial, spool.tray) != (serial, tray):
            spool.printer_serial, spool.tray = serial, tray
            spool.updated_at = self.now()
        return spool

    def spool_with_uuid(self, tray_uuid: str) -> Spool | None:
        """The spool that records a Bambu RFID tray_uuid."""
        wanted = tray_uuid.upper()
        return next((s for s in self.spools.values() if (s.tray_uuid or "").upper() == wanted), None)

    def dismiss_tray_uuid(self, tray_uuid: str) -> None:
        """Remember that a person declined to add the spool of this RFID tray_uuid."""
        self.dismissed_tray_uuids.add(tray_uuid.upper())

    def is_dismissed(self, tray_uuid: str) -> bool:
        """Whether a person declined to add the spool of this RFID tray_uuid."""
        return tray_uuid.upper() in self.dismissed_tray_uuids

    # the job ledger

    def deducted(self, job_id: int) -> JobDeduction | None:
        """What a job took from the spools, once it did."""
        return self.job_deductions.get(str(job_id))

    def deduct_job(
        self,
        job_id: int,
        uses: Sequence[FilamentUse],
        *,
        print_seconds: int | None = None,
        succeeded: bool = True,
        run_id: str | None = None,
        machine_cost_per_hour: Decimal = Decimal(0),
    ) -> JobDeduction | None:
        """Take an ended job's grams from the spools placed in its trays, once: None when already taken.

        A spool holds no less than 0 g (the books may have said less than was on it): the ledger
        records what left the spool, and the rest as its shortfall (`short`); a spool deleted since
        is skipped. The job's cost is kept with it: filament at the spools' prices, print time at
        the hourly rate of the day. With a run still open (pending, in progress, paused), its
        materials, time and result are filled, the materials marked as deducted.
        """
        key = str(job_id)
        if key in self.job_deductions:
            return None
        now = self.now()
        taken: dict[str, Decimal] = {}
        short: dict[str, Decimal] = {}
        cost: Decimal | None = Decimal(0)
        for use in uses:
            if use.spool_id is None or (spool := self.spools.get(use.spool_id)) is None:
                cost = None  # filament from no known spool: its price is not known
                continue
            grams = max(Decimal(0), min(use.grams, spool.remaining_grams))
            spool.remaining_grams -= grams
            spool.updated_at = now
            self.material_used_grams += grams
            taken[spool.id] = taken.get(spool.id, Decimal(0)) + grams
            if use.grams > grams:
                short[spool.id] = short.get(spool.id, Decimal(0)) + use.grams - grams
            if cost is not None:
                cost = None if spool.cost_per_gram is None else cost + use.grams * spool.cost_per_gram
        run = self.runs.get(run_id) if run_id is not None else None
        if run is not None and run.status in COMPLETABLE:
            self._feed_run(run, taken, print_seconds, succeeded)
        machine = limit_places(machine_cost_per_hour * Decimal(print_seconds or 0) / HOUR_SECONDS, 6)
        record = JobDeduction(
            job_id=job_id,
            at=now,
            spools=taken,
            material_cost=cost if uses else None,  # no weights known: its filament's cost is not
            run_id=run.id if run else None,
            machine_cost=machine,
            short=short,
        )
        self.job_deductions[key] = record
        return record

    def _feed_run(
        self, run: ProductionRun, taken: Mapping[str, Decimal], print_seconds: int | None, succeeded: bool
    ) -> None:
        """A job's actuals added to its run: grams per spool (already deducted), time, result.

        The run's actual total is left to its materials (`used_grams` sums them), so what a
        person weighs on a material later counts too.
        """
        for spool_id, grams in taken.items():
            material = next((m for m in run.materials if m.spool_id == spool_id), None)
            if material is None:
                spool = self.spools[spool_id]
                material = RunMaterial(
                    id=new_id(), spool_id=spool_id, spool_name=spool.name, cost_per_gram=spool.cost_per_gram
                )
                run.materials.append(material)
            material.actual_weight_grams = (material.actual_weight_grams or Decimal(0)) + grams
            material.deducted_grams = (material.deducted_grams or Decimal(0)) + grams
        if print_seconds is not None:
            hours = limit_places(Decimal(print_seconds) / HOUR_SECONDS, 4)
            run.actual_print_time_hours = (run.actual_print_time_hours or Decimal(0)) + hours
        run.jobs_succeeded += 1 if succeeded else 0
        run.jobs_failed += 0 if succeeded else 1
        if run.status == PENDING:
            run.status = IN_PROGRESS
            run.started_at = run.started_at or self.now()
        run.updated_at = self.now()

    def open_run_for(self, run_id: str) -> ProductionRun:
        """A run a job may join: it exists (404) and is still open: pending, in progress or paused (409)."""
        if (run := self.runs.get(run_id)) is None:
            raise InventoryError(f"Production run {run_id} not found", 404)
        if run.status not in COMPLETABLE:
            raise InventoryError(f"Production run {run_id} is {run.status}: no job can join it.", 409)
        return run

    def open_run_for_job(
        self,
        name: str,
        printer_name: str | None,
        estimated_grams: Decimal | None = None,
        estimated_hours: Decimal | None = None,
    ) -> ProductionRun:
        """A new run in progress for one job (the farm setting that gives every such job a run), with its file's estimates."""
        now = self.now()
        run = ProductionRun(
            id=new_id(),
            status=IN_PROGRESS,
            created_at=now,
            updated_at=now,
            started_at=now,
            printer_name=printer_name,
            name=name,
            estimated_total_filament_grams=estimated_grams,
            estimated_print_time_hours=estimated_hours,
        )
        self.runs[run.id] = run
        return run


def _grams(value: Any) -> Decimal:
    return limit_places(to_decimal(value), GRAM_PLACES) if value is not None else Decimal(0)


def material_cost(uses: Sequence[FilamentUse], spools: Mapping[str, Spool]) -> Decimal | None:
    """What the filament of a plan costs, from the spools' prices (None when one has no price)."""
    total = Decimal(0)
    for use in uses:
        if use.spool_id is None:
            continue
        spool = spools.get(use.spool_id)
        if spool is None or spool.cost_per_gram is None:
            return None
        total += use.grams * spool.cost_per_gram
    return total


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The queued jobs need more of a material than the spools placed in trays hold."""

    material: str
    needed_grams: Decimal
    available_grams: Decimal
    job_ids: tuple[int, ...]

    @property
    def message(self) -> str:
        """What a person reads: the next 3 jobs need 410 g of PETG, 180 g left."""
        jobs = "the next job needs" if len(self.job_ids) == 1 else f"the next {len(self.job_ids)} jobs need"
        return f"{jobs} {_text(self.needed_grams)} g of {self.material}, {_text(self.available_grams)} g left"


def shortfalls(
    queued: Sequence[tuple[int, Sequence[tuple[str | None, Decimal]]]], placed: Sequence[Spool]
) -> dict[str, Shortfall]:
    """The materials the queued jobs (id, their materials' grams) need more of than the placed spools hold."""
    needed: dict[str, Decimal] = {}
    jobs: dict[str, list[int]] = {}
    for job_id, grams in queued:
        for material, weight in grams:
            if not material:
                continue
            key = material.strip().upper()
            needed[key] = needed.get(key, Decimal(0)) + weight
            if job_id not in jobs.setdefault(key, []):
                jobs[key].append(job_id)
    available: dict[str, Decimal] = {}
    for spool in placed:
        key = spool.material.strip().upper()
        available[key] = available.get(key, Decimal(0)) + spool.remaining_grams
    return {
        material: Shortfall(material, grams, available.get(material, Decimal(0)), tuple(jobs[material]))
        for material, grams in needed.items()
        if grams > available.get(material, Decimal(0))
    }


def last_deduction(books: PrintBooks) -> JobDeduction | None:
    """The print job the books took filament from last."""
    records = books.job_deductions.values()
    return max(records, key=lambda record: (record.at, record.job_id)) if records else None


def cost_of_day(books: PrintBooks, day: date, local: Callable[[datetime], datetime]) -> Decimal:
    """What the print jobs whose filament was taken on a (local) day cost, those with a known cost."""
    return sum(
        (
            record.cost
            for record in books.job_deductions.values()
            if record.cost is not None and local(record.at).date() == day
        ),
        Decimal(0),
    )


def _text(grams: Decimal) -> str:
    """Grams as a person writes them: 410, 12.5 (no trailing zeros, no exponent)."""
    return format(grams.normalize(), "f")
