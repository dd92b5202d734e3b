"""Voice and assistants: the farm's questions and commands as intents (Home Assistant loads this by name).

Every handler has a description and a slot schema, and no `platforms`, so the Assist API offers it to
LLM-backed agents as a tool; the sentences of `sentences/en/print_farm.yaml` reach them from the
built-in agent once installed (`runtime/voice.py`). Questions are open to anyone. Commands follow Home
Assistant's rule for voice: the printer (or, for the queue, the farm) must have an entity exposed to
the assistant that asks, and a user who is known (a satellite has none) must be an administrator, as
for the REST API and the actions. A refusal is an error response with its reason spoken.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta
from decimal import Decimal
import re
from typing import Any

from homeassistant.components.homeassistant.exposed_entities import async_should_expose
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er, intent
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import DOMAIN
from .printer_parts import color_name
from .protocols.bambu.state import PRINTING_STATES
from .rules.jobs import AWAITING_REMOVAL, PRINTING, JobError, PrintJob
from .rules.settings import JOB_PROCESSING
from .runtime.farm import PrintFarm
from .runtime.printer import PrinterCoordinator

STATUS = "PrintFarmStatus"
NEXT_JOB = "PrintFarmNextJob"
PROBLEMS = "PrintFarmProblems"
FILAMENT = "PrintFarmFilament"
PAUSE = "PrintFarmPausePrinter"
RESUME = "PrintFarmResumePrinter"
START_QUEUE = "PrintFarmStartQueue"
QUEUE_COPIES = "PrintFarmQueueCopies"
MAX_COPIES = 20
_EXTENSIONS = (".gcode.3mf", ".3mf", ".bgcode", ".gcode")


class Refused(Exception):
    """What the farm cannot or may not do; its text is spoken as the answer."""


def _words(text: str) -> str:
    """A name as a person says it: lower case, no punctuation, single spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def _slot(intent_obj: intent.Intent, name: str) -> Any:
    slot = intent_obj.slots.get(name)
    return slot.get("value") if slot else None


def _farms(hass: HomeAssistant) -> list[PrintFarm]:
    farms: list[PrintFarm] = [
        entry.runtime_data
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]
    if not farms:
        raise Refused("The print farm is not loaded.")
    return farms


def _printers(hass: HomeAssistant) -> list[tuple[PrintFarm, PrinterCoordinator]]:
    return [(farm, printer) for farm in _farms(hass) for printer in farm.printers.values()]


def _find_printer(hass: HomeAssistant, name: str) -> tuple[PrintFarm, PrinterCoordinator]:
    """The printer a person named: its name, or the name a user gave its device; else a unique part of it."""
    wanted = _words(name)
    devices = dr.async_get(hass)
    candidates = []
    for farm, printer in _printers(hass):
        device = devices.async_get_device(identifiers={(DOMAIN, printer.serial)})
        names = {_words(printer.name)} | (
            {_words(device.name_by_user)} if device and device.name_by_user else set()
        )
        if wanted in names:
            return farm, printer
        if any(wanted and wanted in known for known in names):
            candidates.append((farm, printer))
    if len(candidates) == 1:
        return candidates[0]
    raise Refused(f"There is no printer called {name}.")


def _job_name(farm: PrintFarm, job: PrintJob) -> str:
    name = job.job_name or farm.jobs.filename_of(job) or f"job {job.id}"
    for extension in _EXTENSIONS:
        if name.lower().endswith(extension):
            return name[: -len(extension)]
    return name


def _finish(minutes: int | None) -> str:
    if minutes is None:
        return "its finish time is not known yet"
    finish = dt_util.now() + timedelta(minutes=minutes)
    return f"it will finish at {finish.strftime('%H:%M')}, in {minutes} minutes"


def _printing(farm: PrintFarm, printer: PrinterCoordinator) -> str | None:
    """What a printer prints and when it finishes, in words; None when it prints nothing."""
    fields = printer.client.fields
    if fields["gcode_state"] not in PRINTING_STATES:
        return None
    job = farm.jobs.store.active_job(printer.printer_id)
    what = _job_name(farm, job) if job is not None else fields["subtask_name"] or "a print"
    paused = " (paused)" if fields["gcode_state"] == "PAUSE" else ""
    progress = fields["progress"]
    done = f", {progress}% done" if progress is not None else ""
    return f"{printer.name} is printing {what}{paused}{done}; {_finish(fields['remaining_time'])}"


def _answer(intent_obj: intent.Intent, speech: str) -> intent.IntentResponse:
    response = intent_obj.create_response()
    response.async_set_speech(speech)
    return response


def _refusal(intent_obj: intent.Intent, speech: str) -> intent.IntentResponse:
    response = intent_obj.create_response()
    response.async_set_error(intent.IntentResponseErrorCode.FAILED_TO_HANDLE, speech)
    return response


class FarmIntent(intent.IntentHandler, ABC):
    """A farm intent: `answer` speaks, a `Refused` is spoken as an error; no platform, so every agent sees it."""

    platforms = None
    schema: dict[Any, Any] = {}  # the slots; each handler its own
    command = False  # changes something: exposure and, for a known user, an administrator

    @property
    def slot_schema(self) -> dict[Any, Any] | None:
        """The slots, for the built-in agent and the LLM tool's parameters."""
        return self.schema

    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        """Answer, or say why not."""
        try:
            if self.command:
                await _check_user(intent_obj)
            return _answer(intent_obj, await self.answer(intent_obj))
        except Refused as err:
            return _refusal(intent_obj, str(err))
        except (HomeAssistantError, JobError) as err:
            return _refusal(intent_obj, f"That did not work: {err}")

    @abstractmethod
    async def answer(self, intent_obj: intent.Intent) -> str:
        """What to say (each intent's own)."""


async def _check_user(intent_obj: intent.Intent) -> None:
    """A known user must be an administrator (as for REST); a satellite's request has no user."""
    if (user_id := intent_obj.context.user_id) is None:
        return
    user = await intent_obj.hass.auth.async_get_user(user_id)
    if user is None or not user.is_admin:
        raise Refused("Only an administrator may control the print farm.")


def _check_exposed(intent_obj: intent.Intent, device_identifier: str, what: str) -> None:
    """The device must have an entity exposed to the assistant that asks (Home Assistant's rule for voice)."""
    hass = intent_obj.hass
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, device_identifier)})
    assistant = intent_obj.assistant or "conversation"
    if device is None or not any(
        async_should_expose(hass, assistant, entry.entity_id)
        for entry in er.async_entries_for_device(er.async_get(hass), device.id)
    ):
        raise Refused(f"{what} is not exposed to the assistant.")


class StatusIntent(FarmIntent):
    """What is printing and when it finishes."""

    intent_type = STATUS
    description = (
        "Tells what the 3D print farm's printers are printing, how far along and when each print will "
        "finish. Give a printer's name for one printer, or none for the whole farm."
    )
    schema = {vol.Optional("printer"): intent.non_empty_string}

    async def answer(self, intent_obj: intent.Intent) -> str:
        """One printer's print, or every printing printer's."""
        if (name := _slot(intent_obj, "printer")) is not None:
            farm, printer = _find_printer(intent_obj.hass, name)
            if not printer.client.online:
                return f"{printer.name} is offline."
            return _printing(farm, printer) or f"{printer.name} is not printing."
        printers = _printers(intent_obj.hass)
        lines = [line for farm, printer in printers if (line := _printing(farm, printer)) is not None]
        if not lines:
            return "Nothing is printing."
        idle = len(printers) - len(lines)
        return ". ".join(lines) + (f". {idle} other printer(s) are not printing." if idle else ".")


class NextJobIntent(FarmIntent):
    """The next job of the queue."""

    intent_type = NEXT_JOB
    description = "Tells which print job of the 3D print farm's queue comes next, and why it waits."

    async def answer(self, intent_obj: intent.Intent) -> str:
        """The first queued job, its printer, and why it waits."""
        for farm in _farms(intent_obj.hass):
            queued = farm.jobs.store.queued()
            if not queued:
                continue
            job = queued[0]
            printer = farm.printer_by_id(job.printer_id)
            where = (
                f" on {printer.name}" if printer is not None and not job.any_printer else " on any printer"
            )
            reason = farm.orchestrator.waiting.get(job.id)
            why = f"; it waits because {reason}" if reason else ""
            more = f" {len(queued) - 1} more after it." if len(queued) > 1 else ""
            return f"Next is {_job_name(farm, job)}{where}{why}.{more}"
        return "The queue is empty."


class ProblemsIntent(FarmIntent):
    """Whether anything is wrong: printer errors, paused workflows, plates waiting for a person."""

    intent_type = PROBLEMS
    description = (
        "Tells whether anything is wrong in the 3D print farm: printer errors, offline printers, paused "
        "ejection workflows, and finished prints waiting for a person to clear the bed."
    )

    async def answer(self, intent_obj: intent.Intent) -> str:
        """Every problem in a sentence each."""
        problems: list[str] = []
        for farm in _farms(intent_obj.hass):
            for printer in farm.printers.values():
                if not printer.client.online:
                    problems.append(f"{printer.name} is offline")
                for error in printer.client.fields["errors"] or ():
                    problems.append(
                        f"{printer.name} reports error {error.code}: {error.text or error.module}"
                    )
            problems += farm.orchestrator.health().issues
            problems += [
                f"{_job_name(farm, job)} on {holder.name} is done and waits for its plate to be removed"
                for job in farm.jobs.store.jobs.values()
                if job.status == PRINTING
                and job.stage == AWAITING_REMOVAL
                and (holder := farm.printer_by_id(job.printer_id)) is not None
            ]
        return ". ".join(problems) + "." if problems else "Nothing is wrong."


def _grams(value: Decimal) -> str:
    return f"{value.quantize(Decimal(1))} grams"


class FilamentIntent(FarmIntent):
    """How much filament of a material or colour is left."""

    intent_type = FILAMENT
    description = (
        "Tells how much filament is left: in grams from the farm's spools, and in percent in the "
        "printers' AMS trays where they know it. Filter by material (PLA, PETG...) and/or colour."
    )
    schema = {
        vol.Optional("material"): intent.non_empty_string,
        vol.Optional("color"): intent.non_empty_string,
    }

    async def answer(self, intent_obj: intent.Intent) -> str:
        """The spools' grams, then the trays' percent."""
        material = _words(_slot(intent_obj, "material") or "")
        color = _words(_slot(intent_obj, "color") or "")

        def matches(kind: str | None, shade: str | None) -> bool:
            shades = {_words(shade or ""), _words(color_name(shade) or "")} if shade else set()
            return (not material or _words(kind or "") == material) and (
                not color or any(color in known for known in shades if known)
            )

        what = " ".join(part for part in (color, material.upper()) if part) or "filament"
        parts: list[str] = []
        total = Decimal(0)
        count = 0
        trays: list[str] = []
        for farm in _farms(intent_obj.hass):
            for spool in farm.production.books.spools.values():
                if matches(spool.material, spool.color):
                    total += spool.remaining_grams
                    count += 1
            for printer in farm.printers.values():
                fields = printer.client.fields
                every = [tray for unit in fields["ams_units"] or () for tray in unit.trays]
                every += list(fields["external_trays"] or ())
                trays += [
                    f"{printer.name} tray {tray.code + 1} has {tray.remaining}%"
                    for tray in every
                    if tray.material and tray.remaining is not None and matches(tray.material, tray.color)
                ]
        if count:
            parts.append(f"{_grams(total)} of {what} left on {count} spool(s)")
        if trays:
            parts.append("; ".join(trays))
        return ". ".join(parts) + "." if parts else f"I know of no {what}."


class PrinterCommand(FarmIntent):
    """Pause or resume a printer by name."""

    command = True
    schema = {vol.Required("printer"): intent.non_empty_string}

    async def answer(self, intent_obj: intent.Intent) -> str:
        """Find the printer, check it may be commanded, send the command."""
        _farm, printer = _find_printer(intent_obj.hass, _slot(intent_obj, "printer"))
        _check_exposed(intent_obj, printer.serial, printer.name)
        return await self.run(printer)

    @abstractmethod
    async def run(self, printer: PrinterCoordinator) -> str:
        """Send the command; what to say (each command's own)."""


class PauseIntent(PrinterCommand):
    """Pause a printer's print."""

    intent_type = PAUSE
    description = "Pauses the print on a 3D printer of the print farm, by the printer's name."

    async def run(self, printer: PrinterCoordinator) -> str:
        """Pause it when it prints."""
        if printer.client.fields["gcode_state"] not in {"RUNNING", "PREPARE"}:
            raise Refused(f"{printer.name} is not printing.")
        await printer.async_pause()
        return f"Paused {printer.name}."


class ResumeIntent(PrinterCommand):
    """Resume a printer's paused print."""

    intent_type = RESUME
    description = "Resumes the paused print on a 3D printer of the print farm, by the printer's name."

    async def run(self, printer: PrinterCoordinator) -> str:
        """Resume it when it is paused."""
        if printer.client.fields["gcode_state"] != "PAUSE":
            raise Refused(f"{printer.name} is not paused.")
        await printer.async_resume()
        return f"Resumed {printer.name}."


class StartQueueIntent(FarmIntent):
    """Switch job processing on and dispatch the queue."""

    intent_type = START_QUEUE
    command = True
    description = (
        "Starts the print farm's queue: switches job processing on, so queued jobs set to start "
        "automatically start on their ready printers."
    )

    async def answer(self, intent_obj: intent.Intent) -> str:
        """Job processing on, one dispatch now."""
        farms = _farms(intent_obj.hass)
        for farm in farms:
            _check_exposed(intent_obj, farm.entry.entry_id, "The print farm")
        for farm in farms:
            if not farm.settings[JOB_PROCESSING]:
                await farm.async_update_settings({JOB_PROCESSING: True})
            farm.orchestrator.schedule()
        queued = sum(len(farm.jobs.store.queued()) for farm in farms)
        return f"The queue is running; {queued} job(s) queued."


class QueueCopiesIntent(FarmIntent):
    """Queue more copies of a job (by its name), on its printer or any."""

    intent_type = QUEUE_COPIES
    command = True
    description = (
        "Queues more copies of a print job of the print farm, found by its name (the file's name), on "
        "the same printer (or any printer) with the same settings."
    )
    schema = {
        vol.Required("job"): intent.non_empty_string,
        vol.Optional("count"): vol.All(vol.Coerce(int), vol.Range(min=1, max=MAX_COPIES)),
    }

    async def answer(self, intent_obj: intent.Intent) -> str:
        """The newest job of that name is the model; `count` new jobs like it."""
        wanted = _words(_slot(intent_obj, "job"))
        count = int(_slot(intent_obj, "count") or 1)
        found = [
            (farm, job)
            for farm in _farms(intent_obj.hass)
            for job in farm.jobs.store.jobs.values()
            if job.print_item_id is not None
            and job.print_item_id in farm.jobs.store.items
            and wanted in _words(_job_name(farm, job))
        ]
        if not found:
            raise Refused(f"There is no print job called {_slot(intent_obj, 'job')}.")
        farm, model = max(found, key=lambda pair: pair[1].id)
        _check_exposed(intent_obj, farm.entry.entry_id, "The print farm")
        assert model.print_item_id is not None
        for _ in range(count):
            await farm.jobs.async_create_job(
                print_item_id=model.print_item_id,
                printer_id=None if model.any_printer else model.printer_id,
                auto_start=model.auto_start,
                priority=model.priority,
                plate=model.plate,
                context=intent_obj.context,
            )
        printer = farm.printer_by_id(model.printer_id)
        where = printer.name if printer is not None and not model.any_printer else "any printer"
        return f"Queued {count} more of {_job_name(farm, model)} on {where}."


HANDLERS: tuple[type[FarmIntent], ...] = (
    StatusIntent,
    NextJobIntent,
    ProblemsIntent,
    FilamentIntent,
    PauseIntent,
    ResumeIntent,
    StartQueueIntent,
    QueueCopiesIntent,
)


async def async_setup_intents(hass: HomeAssistant) -> None:
    """Register the farm's intents (the intent integration calls this once it is set up)."""
    for handler in HANDLERS:
        intent.async_register(hass, handler())
