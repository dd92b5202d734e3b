"""What prints take from the books: the plan kept with a job's end, the deduction, placement by RFID.

When a job's print ends (runtime/endings.py) `plan` says what it used: the grams of each filament
of its plate (times its progress when it did not finish), the tray its `ams_mapping` sent the
filament to, the spool placed in that tray then, and the tray's own remaining percent as a check.
The job keeps the plan, saved with its end; `async_deduct` then takes it from the spools under the
job's key in the books (rules/books/usage.py), and `async_replay` does so at setup for a job whose
end was saved but whose deduction was not (Home Assistant stopped, a save failed): the books' key
makes it once.

A tray that reads a Bambu spool's RFID `tray_uuid` a spool records places that spool there, when
what the tray reads changes (each tray's last reading is kept, by printer serial and tray code), or
when a spool is given a tray_uuid a tray already reads. An offline printer's trays (whose fields
keep their last report) place nothing, and a reading that has not changed never moves a spool back:
two trays reading one uuid, or a printer gone offline, cannot move a spool back and forth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from ..protocols.bambu.ams import AmsTray
from ..rules.books.money import limit_places, quantity_out, to_decimal
from ..rules.books.records import HOUR_SECONDS, InventoryError
from ..rules.books.runs import Books
from ..rules.books.usage import FilamentUse, fraction_used, job_grams, job_uses, shortfalls
from ..rules.jobs import AWAITING_REMOVAL, COMPLETED, PRINTING, JobError, PrintJob
from ..rules.settings import JOB_RUN_AUTO_OPEN, MACHINE_COST_PER_HOUR, settings_of

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry
    from .jobs import JobManager
    from .printer import PrinterCoordinator
    from .production import ProductionManager

TRAY_FIELDS: Final = frozenset({"ams_units", "external_trays"})
EVENT_SPOOL_EMPTY_SOON: Final = f"{DOMAIN}_spool_empty_soon"


def printer_trays(printer: PrinterCoordinator) -> list[AmsTray]:
    """Every tray a printer reports: its AMS units' slots and its external holders."""
    fields = printer.client.fields
    units = fields.get("ams_units") or ()
    return [tray for unit in units for tray in unit.trays] + list(fields.get("external_trays") or ())


class Consumption:
    """The books' side of the printers: deductions of ended jobs, spools placed by their RFID."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrintFarmConfigEntry,
        jobs: JobManager,
        production: ProductionManager,
    ) -> None:
        """Nothing followed until `follow`."""
        self.hass = hass
        self.entry = entry
        self.jobs = jobs
        self.production = production
        # The materials the queued jobs need more of than the placed spools hold, as last seen:
        # the event fires when a material joins them, not on every change.
        self._short: set[str] | None = None
        # RFID spools offered as new spools (a repair issue each), with the printer whose tray read them.
        self._offered: dict[str, str] = {}
        self._last_read: dict[tuple[str, int], str | None] = {}  # (serial, tray code): tray_uuid read
        self._spool_uuids: dict[str, str] = {}  # spool id: its tray_uuid, as the books last said

    # the plan and the deduction

    def plan(self, job: PrintJob, *, finished: bool) -> list[dict[str, Any]]:
        """What an ending job used, as plain data kept with the job (`FilamentUse.to_data`)."""
        farm = self.entry.runtime_data
        item = self.jobs.store.items.get(job.print_item_id) if job.print_item_id is not None else None
        if item is None:
            return []  # a print started elsewhere: its file's weights are not known
        grams = job_grams(item.info, job.plate, item.filament_g)
        printer = farm.printer_by_id(job.printer_id)
        trays = printer_trays(printer) if printer is not None else []
        placed = self.production.books.placed_on(printer.serial) if printer is not None else {}
        uses = job_uses(
            grams,
            job.ams_mapping,
            fraction_used(finished, job.progress_percent),
            placed,
            {tray.code: tray.remaining for tray in trays},
            printer.client.fields.get("active_tray") if printer is not None else None,
        )
        if not finished and job.progress_percent <= 0 and uses:
            LOGGER.info(
                "Job %s ended unfinished with no progress reported: counted as 0 %%, nothing deducted", job.id
            )
        for use in uses:
            if use.spool_id is None:
                LOGGER.info(
                    "Job %s used %s g of filament %s from tray %s, where no spool is placed: nothing deducted",
                    job.id,
                    use.grams,
                    use.filament,
                    use.tray,
                )
        return [use.to_data() for use in uses]

    async def async_deduct(self, job: PrintJob) -> None:
        """Take a job's recorded use from the spools, unless the books already did (a failed save is retried at setup)."""
        production = self.production
        if job.filament_use is None or production.books.deducted(job.id) is not None:
            return
        uses = [FilamentUse.from_data(use) for use in job.filament_use]
        seconds = _print_seconds(job)
        rate = to_decimal(settings_of(self.entry.options)[MACHINE_COST_PER_HOUR])
        if job.use_finished is not None:  # whether its print finished, recorded with its end
            succeeded = job.use_finished
        else:
            succeeded = job.status == COMPLETED or job.stage == AWAITING_REMOVAL
        try:
            await production.async_change(
                lambda books: books.deduct_job(
                    job.id,
                    uses,
                    print_seconds=seconds,
                    succeeded=succeeded,
                    run_id=job.production_run_id,
                    machine_cost_per_hour=rate,
                )
            )
        except InventoryError as err:
            LOGGER.warning(
                "The filament of job %s was not deducted yet (%s); it will be at the next start", job.id, err
            )

    async def async_replay(self) -> None:
        """Deduct the jobs whose end was saved but whose deduction was not."""
        for job in list(self.jobs.store.jobs.values()):
            await self.async_deduct(job)

    def cost(self, job: PrintJob) -> Decimal | None:
        """What a job cost, kept when the books took its filament (None before, or with an unpriced spool)."""
        record = self.production.books.deducted(job.id)
        return record.cost if record is not None else None

    def check_run(self, run_id: str | None, job: PrintJob | None = None) -> None:
        """A run a job may join: 404 when it does not exist, 409 when it is no longer open.

        A job whose filament the books already took cannot join a run (409): the run would never
        get its grams.
        """
        if run_id is None:
            return
        if job is not None and run_id != job.production_run_id and self.production.books.deducted(job.id):
            raise JobError(
                f"Print job {job.id} has ended and its filament was deducted: it cannot join a production run now.",
                409,
            )
        try:
            self.production.books.open_run_for(run_id)
        except InventoryError as err:
            raise JobError(str(err), err.status) from None

    async def async_open_run(self, job: PrintJob, printer_name: str | None) -> None:
        """Give an automatic or orchestrated job a production run of its own, when the farm says so."""
        if not settings_of(self.entry.options)[JOB_RUN_AUTO_OPEN] or job.production_run_id is not None:
            return
        name = f"Job {job.id}: {self.jobs.filename_of(job) or 'print'}"
        # Its estimates from the file (the plate's grams, the sliced time): the run's variance works.
        item = self.jobs.store.items.get(job.print_item_id) if job.print_item_id is not None else None
        grams = (
            sum((weight for _, _, weight in job_grams(item.info, job.plate, item.filament_g)), Decimal(0))
            if item
            else None
        )
        seconds = item.estimated_time_s if item else None
        hours = limit_places(Decimal(seconds) / HOUR_SECONDS, 4) if seconds else None
        try:
            run = await self.production.async_change(
                lambda books: books.open_run_for_job(name, printer_name, grams or None, hours)
            )
        except InventoryError as err:
            LOGGER.warning("No production run was opened for job %s: %s", job.id, err)
            return
        job.production_run_id = run.id
        await self.jobs.store.async_save()

    # the forecast

    @callback
    def async_start_forecast(self) -> CALLBACK_TYPE:
        """Check the queue against the placed spools, and the trays' RFID against the spools, after every change."""
        removers = [
            self.jobs.async_add_queue_listener(self.check_forecast),
            self.production.async_add_listener(self.check_forecast),
            # A spool given a tray_uuid a tray already reads is placed there.
            self.production.async_add_listener(self._books_changed),
        ]
        self._spool_uuids = self._uuids_of_spools()
        self._short = None
        self.check_forecast(announce=False)  # what was short before a restart is not news

        @callback
        def stop() -> None:
            for remove in removers:
                remove()

        return stop

    @callback
    def check_forecast(self, *, announce: bool = True) -> None:
        """Fire `print_farm_spool_empty_soon` for each material the queue newly needs more of than is placed.

        A printing job still needs the part of its grams it has not printed ((1 - progress) x its
        grams): the books take them from the spools only at its end.
        """
        store = self.jobs.store
        printing = [job for job in store.jobs.values() if job.status == PRINTING and job.filament_use is None]
        queued = []
        for job in [*printing, *store.queued()]:
            item = store.items.get(job.print_item_id) if job.print_item_id is not None else None
            if item is not None:
                left = (
                    1 - fraction_used(False, job.progress_percent) if job.status == PRINTING else Decimal(1)
                )
                grams = job_grams(item.info, job.plate, item.filament_g)
                needs = [(material, weight * left) for _, material, weight in grams]
                if any(weight > 0 for _, weight in needs):
                    queued.append((job.id, needs))
        books = self.production.books
        placed = [spool for spool in books.spools.values() if spool.tray is not None]
        short = shortfalls(queued, placed)
        before, self._short = self._short, set(short)
        if not announce or before is None:
            return
        for material in sorted(short.keys() - before):
            shortfall = short[material]
            LOGGER.info("Filament runs short: %s", shortfall.message)
            self.hass.bus.async_fire(
                EVENT_SPOOL_EMPTY_SOON,
                {
                    "material": material,
                    "needed_grams": quantity_out(shortfall.needed_grams),
                    "available_grams": quantity_out(shortfall.available_grams),
                    "job_ids": list(shortfall.job_ids),
                    "message": shortfall.message,
                },
            )

    # placement by RFID

    def follow(self, printer: PrinterCoordinator) -> CALLBACK_TYPE:
        """Place the spools a printer's trays read by their RFID tray_uuid."""
        return printer.async_add_listener(lambda: self._trays_changed(printer), TRAY_FIELDS)

    def _uuids_of_spools(self) -> dict[str, str]:
        return {
            spool.id: spool.tray_uuid.upper()
            for spool in self.production.books.spools.values()
            if spool.tray_uuid
        }

    @callback
    def _books_changed(self) -> None:
        """Place the spools whose tray_uuid just changed where an online printer's tray reads it."""
        books = self.production.books
        uuids = self._uuids_of_spools()
        changed = {
            uuid: spool_id for spool_id, uuid in uuids.items() if self._spool_uuids.get(spool_id) != uuid
        }
        self._spool_uuids = uuids
        for printer in self.entry.runtime_data.printers.values():
            if not changed or not printer.client.online:
                continue
            moves = []
            for tray in printer_trays(printer):
                spool_id = changed.pop((tray.tray_uuid or "").upper(), None)
                spool = books.spools.get(spool_id) if spool_id is not None else None
                if spool is not None and (spool.printer_serial, spool.tray) != (printer.serial, tray.code):
                    moves.append((spool.id, tray.code))
            if moves:
                self.hass.async_create_task(self._async_place(printer.serial, moves), eager_start=True)
        self._withdraw_offers()

    @callback
    def _trays_changed(self, printer: PrinterCoordinator) -> None:
        if not printer.client.online:
            return  # its fields are its last report: they place nothing
        books = self.production.books
        moves = []
        read: dict[int, str | None] = {}
        for tray in printer_trays(printer):
            read[tray.code] = tray.tray_uuid
            before = self._last_read.get((printer.serial, tray.code))
            self._last_read[(printer.serial, tray.code)] = tray.tray_uuid
            if tray.tray_uuid is None:
                continue
            spool = books.spool_with_uuid(tray.tray_uuid)
            if spool is None:
                self._offer(printer, tray)
            elif tray.tray_uuid != before and (spool.printer_serial, spool.tray) != (
                printer.serial,
                tray.code,
            ):
                moves.append((spool.id, tray.code))
        for key in [key for key in self._last_read if key[0] == printer.serial and key[1] not in read]:
            del self._last_read[key]  # a tray gone (its unit removed)
        reading = {uuid for uuid in read.values() if uuid is not None}
        for tray_uuid, serial in list(self._offered.items()):
            if serial == printer.serial and tray_uuid not in reading:
                self._withdraw(tray_uuid)  # the tray no longer reads it: accepting it late would misplace it
        self._withdraw_offers()
        if moves:
            self.hass.async_create_task(self._async_place(printer.serial, moves), eager_start=True)

    @callback
    def _withdraw_offers(self) -> None:
        """Withdraw the offers of spools the books now know, or a person declined."""
        books = self.production.books
        for tray_uuid in list(self._offered):
            if books.spool_with_uuid(tray_uuid) is not None or books.is_dismissed(tray_uuid):
                self._withdraw(tray_uuid)

    @callback
    def _withdraw(self, tray_uuid: str) -> None:
        self._offered.pop(tray_uuid, None)
        ir.async_delete_issue(self.hass, DOMAIN, new_spool_issue(tray_uuid))

    @callback
    def _offer(self, printer: PrinterCoordinator, tray: AmsTray) -> None:
        """Offer a Bambu spool the books do not know as a new spool (a repair whose fix adds it), never add it unasked."""
        tray_uuid = tray.tray_uuid
        if tray_uuid is None or tray_uuid in self._offered or self.production.books.is_dismissed(tray_uuid):
            return
        self._offered[tray_uuid] = printer.serial
        if tray.code >= 254:
            where = "the external holder" if tray.code == 254 else "the second external holder"
        elif tray.unit >= 128:
            where = f"AMS HT {tray.unit - 127}"
        else:
            where = f"tray {tray.slot + 1} of AMS {tray.unit + 1}"
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            new_spool_issue(tray_uuid),
            is_fixable=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key="new_spool",
            translation_placeholders={
                "printer": printer.name,
                "where": where,
                "spool": " ".join(part for part in (tray.name, tray.material, tray.color) if part),
            },
            data={
                "entry_id": self.entry.entry_id,
                "tray_uuid": tray_uuid,
                "serial": printer.serial,
                "tray": tray.code,
                "material": tray.material,
                "color": tray.color,
                "name": tray.name,
                "remaining": tray.remaining,
            },
        )

    async def async_add_offered(self, offer: dict[str, Any], spool_data: Mapping[str, Any]) -> None:
        """Add the spool a tray's RFID offered (`spool_data` as a person confirmed it, valid), placed in that tray.

        Placed only when that tray still reads it (the offer may be answered late); else unplaced.
        """
        printer = self.entry.runtime_data.printer_by_serial(str(offer["serial"]))
        still = printer is not None and any(
            tray.code == int(offer["tray"])
            and (tray.tray_uuid or "").upper() == str(offer["tray_uuid"]).upper()
            for tray in printer_trays(printer)
        )

        def add(books: Books) -> None:
            spool = books.add_spool(dict(spool_data))
            if still:
                books.place_spool(spool.id, str(offer["serial"]), int(offer["tray"]))

        await self.production.async_change(add)

    async def async_dismiss_offer(self, tray_uuid: str) -> None:
        """Never offer this RFID spool again."""
        await self.production.async_change(lambda books: books.dismiss_tray_uuid(tray_uuid))

    async def _async_place(self, serial: str, moves: Iterable[tuple[str, int]]) -> None:
        def place(books: Books) -> None:
            for spool_id, code in moves:
                if spool_id in books.spools:
                    books.place_spool(spool_id, serial, code)

        try:
            await self.production.async_change(place)
        except InventoryError as err:
            LOGGER.warning("Spools read by their RFID were not placed: %s", err)


def new_spool_issue(tray_uuid: str) -> str:
    """The repair issue offering an unknown RFID spool as a new spool."""
    return f"new_spool_{tray_uuid}"


def _print_seconds(job: PrintJob) -> int | None:
    """Its print's time: from its start to the end recorded with its use (never a replay's now)."""
    if job.started_at is None:
        return None
    ended = job.use_ended_at or job.completed_at
    end = datetime.fromisoformat(ended) if ended else dt_util.utcnow()
    return max(0, int((end - datetime.fromisoformat(job.started_at)).total_seconds()))
