"""The OttoEject's macro steps of an ejection workflow: sent once, followed to their end, resolved after a restart.

A mixin of `Ejection` (runtime/ejection.py), which runs the workflows. Each macro ends with a
unique marker (`; pf-step=<job>-<step>-<attempt>`) that Moonraker's G-code store keeps: a sent
step is resolved by reading the store, never by sending it again (`rules/workflow.resolve`), and
its end is Klipper's idle_timeout leaving "Printing", followed on Moonraker's websocket (asked
over HTTP every second while the websocket is down).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from homeassistant.exceptions import HomeAssistantError

from ..protocols.moonraker import MoonrakerError, MoonrakerNotReadyError
from ..rules.jobs import PrintJob
from ..rules.workflow import (
    FAILED as OUTCOME_FAILED,
    GRAB,
    READY,
    RECEIVED,
    SENT,
    STORE,
    Workflow,
    anchor_of,
    macro_name,
    marker,
    resolve,
)
from .ottoeject import EjectorBusyError, EjectorCommandError, EjectorCoordinator, EjectorUnknownMacroError
from .printer import PrinterCoordinator

if TYPE_CHECKING:
    from .farm import PrintFarmConfigEntry

# A step whose state is RETRY is resolved from the device like SENT, but when the device cannot
# tell, a person's retry sends it again (they looked).
RETRY: Final = "retry"
_IDLE: Final = frozenset({"Ready", "Idle"})


class MacroSteps:
    """Send a step's macro once and follow it to its end (mixed into Ejection)."""

    entry: PrintFarmConfigEntry

    if TYPE_CHECKING:  # the workflow runner's own

        async def _save(self, job: PrintJob, wf: Workflow) -> None: ...
        async def _sleep(self, job: PrintJob, wf: Workflow, timeout: float | None = None) -> None: ...
        def _check(self, job: PrintJob, wf: Workflow) -> None: ...
        async def _pause(self, job: PrintJob, wf: Workflow, fault: str, resume: str = READY) -> None: ...
        async def _step_done(
            self, job: PrintJob, wf: Workflow, printer: PrinterCoordinator, ejector: EjectorCoordinator
        ) -> None: ...

    async def _macro(
        self, job: PrintJob, wf: Workflow, printer: PrinterCoordinator, ejector: EjectorCoordinator
    ) -> None:
        """Run the step's macro once and follow it to its end."""
        shelf = wf.store_shelf if wf.step == STORE else wf.grab_shelf if wf.step == GRAB else None
        try:
            name = macro_name(ejector.templates, wf.step, position=wf.position, shelf=shelf)
        except ValueError as err:
            await self._pause(job, wf, str(err))
            return
        mark = marker(job.id, wf.step_id)
        if wf.state in (SENT, RETRY):
            try:
                store = await ejector.client.gcode_store()
            except MoonrakerError as err:
                # Ask again on retry: nothing is sent before the device answers.
                await self._pause(
                    job, wf, f"cannot ask {ejector.device_name} whether it received {name}: {err}", SENT
                )
                return
            self._check(job, wf)
            outcome = resolve(store, mark, wf.anchor)
            if outcome == RECEIVED:
                await self._until_end(job, wf, ejector, name, seen_running=False)
                return
            if outcome == OUTCOME_FAILED:
                await self._pause(
                    job, wf, f"Klipper answered {name} with an error: retry sends it again", READY
                )
                return
            if outcome is None and wf.state == SENT:
                await self._pause(
                    job,
                    wf,
                    f"{name} was sent, and {ejector.device_name} can no longer tell whether it received it "
                    "(Moonraker restarted): look at the OttoEject, then skip the step if it was done, or retry "
                    "to send it again",
                    RETRY,
                )
                return
        try:
            anchor = anchor_of(await ejector.client.gcode_store())
        except MoonrakerError:
            anchor = None  # then a restart before the answer leaves the step to a person
        self._check(job, wf)  # nothing changed meanwhile (a person's decision): from here no await
        if wf.sent_at is not None:
            wf.attempt += 1  # sent before (never received, failed, or a person said so): a new marker
            mark = marker(job.id, wf.step_id)
        wf.state, wf.sent_at, wf.anchor = SENT, time.time(), anchor
        await self._save(job, wf)
        try:
            answer = await ejector.async_run_macro(name, marker=mark, job_id=job.id)
        except (EjectorBusyError, EjectorUnknownMacroError, EjectorCommandError) as err:
            # Refused before it was sent, or Klipper answered it with an error: sent anew on retry.
            await self._pause(job, wf, str(err), READY)
            return
        except HomeAssistantError as err:  # the connection broke: whether it was received is asked
            await self._pause(job, wf, str(err), SENT)
            return
        self._check(job, wf)
        # Acknowledged: Klipper ran the script (its moves may still end), else follow its end.
        await self._until_end(
            job, wf, ejector, name, seen_running=not answer.acknowledged, answered=answer.acknowledged
        )

    async def _until_end(
        self,
        job: PrintJob,
        wf: Workflow,
        ejector: EjectorCoordinator,
        name: str,
        *,
        seen_running: bool,
        answered: bool = False,
    ) -> None:
        """Follow a received macro to its end, from Moonraker's websocket (over HTTP while it is down).

        The end is Klipper's idle_timeout leaving "Printing". Klipper answers a script when its commands are queued; idle_timeout leaves "Printing" once
        the moves are done, and only then is the step over (and the ejector free for the next).
        """
        watcher = ejector.watcher
        while True:
            if watcher.connected and watcher.klippy_state in ("shutdown", "error", "disconnected"):
                # Klipper aborts a running script when it stops, and its G-code store then still
                # says "received": retry sends it anew. Seen running, it did not end; found after a
                # restart, it may have ended first: the person looks, and skips it if so.
                await self._pause(
                    job,
                    wf,
                    f"Klipper stopped ({watcher.klippy_state}) while {name} ran{_look(seen_running, answered)}",
                )
                return
            if not watcher.connected:
                # The websocket is down or not up yet (it reconnects): ask Moonraker itself, every
                # second meanwhile. Klipper not ready: it stopped (as above). No answer: Moonraker is
                # gone, and the step is asked of it later.
                try:
                    idle = await ejector.client.idle_state()
                except MoonrakerNotReadyError:
                    await self._pause(
                        job, wf, f"Klipper stopped while {name} ran{_look(seen_running, answered)}"
                    )
                    return
                except MoonrakerError:
                    await self._pause(job, wf, f"{ejector.device_name} went offline while {name} ran", SENT)
                    return
                self._check(job, wf)
                if idle in _IDLE:
                    break
                seen_running = seen_running or idle == "Printing"
                await self._sleep(job, wf, 1.0)
                continue
            idle = watcher.idle_state
            if idle == "Printing":
                seen_running = True
            elif idle in _IDLE and await self._ended(ejector):  # asked now: the push may be late
                break
            await self._sleep(job, wf, 1.0 if answered else None)
        ejector.client.forget_macro()
        if not answered:  # its answer was not awaited: did Klipper answer it with an error?
            try:
                if (
                    resolve(await ejector.client.gcode_store(), marker(job.id, wf.step_id), wf.anchor)
                    == OUTCOME_FAILED
                ):
                    await self._pause(
                        job, wf, f"Klipper answered {name} with an error: retry sends it again", READY
                    )
                    return
            except MoonrakerError:
                pass  # its end was seen; the store is only a second opinion
            self._check(job, wf)
        farm = self.entry.runtime_data
        printer = farm.printer_by_id(job.printer_id)
        if printer is None:
            await self._pause(job, wf, "its printer is no longer part of the farm")
            return
        await self._step_done(job, wf, printer, ejector)

    @staticmethod
    async def _ended(ejector: EjectorCoordinator) -> bool:
        """Whether Klipper runs nothing now, read from Moonraker (the websocket may lag a restart)."""
        try:
            return await ejector.client.idle_state() in _IDLE
        except MoonrakerError:
            return False


def _look(seen_running: bool, answered: bool) -> str:
    """What a person should know of a step Klipper's stop cut short, when it may have ended before."""
    if seen_running or answered:
        return ""
    return ": it may have ended before; look at the OttoEject, skip the step if it did, retry sends it again"
