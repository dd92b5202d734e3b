"""The ejection workflow's faults against the simulator: what pauses it, and what a person's retry does then."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from simulator.control import SimulatorControl

from .helpers import (
    EJECTOR,
    drive,
    ejection_entry,
    finish_and_cool,
    paused,
    set_templates,
    setup_ejection,
    start_one,
    wait_until,
)
from .test_ejection import FULL_RUN, assert_eject_sent_twice, ejecting, scripts

DOMAIN = "print_farm"


@pytest.fixture
async def ejector(simulator: SimulatorControl) -> Any:
    """An OttoEject whose macros run 20 simulated seconds: they end when the test moves its clock."""
    ottoeject = await simulator.add_ottoeject(printers=["P1", "P2", "P3"], slots=4, macro_seconds=20)
    yield ottoeject
    await simulator.remove_ottoeject(ottoeject["id"])


async def sent(simulator: SimulatorControl, ejector: dict[str, Any]) -> list[str]:
    """The macros the OttoEject received, by name."""
    return [script.split(" ;")[0] for script in await scripts(simulator, ejector["id"])]


async def test_a_macro_the_ottoeject_does_not_have_pauses_and_retry_sends_the_corrected_one(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
) -> None:
    """A template naming a macro the device lacks is refused by Moonraker before anything is sent."""
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    assert (await set_templates(hass, entry, ejector, eject="EJECT_TO_{position}"))["reason"] == (
        "reconfigure_successful"
    )
    job = await start_one(hass, hass_client, entry)
    await finish_and_cool(hass, simulator, sim_printer["serial"], job)
    await drive(hass, simulator, ejector["id"], lambda: paused(job))
    assert job.workflow["step"] == "eject"
    assert job.workflow["fault"] == "OttoEject has no macro EJECT_TO_P1"
    assert await sent(simulator, ejector) == ["OTTOEJECT_HOME"]  # nothing else reached Klipper
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"workflow_paused_{job.id}")
    assert issue is not None
    assert issue.translation_placeholders["fault"] == "OttoEject has no macro EJECT_TO_P1"
    # The person corrects the template and retries: the step is sent anew, with a marker of its own.
    assert (await set_templates(hass, entry, ejector, eject="EJECT_FROM_{position}"))["reason"] == (
        "reconfigure_successful"
    )
    await hass.services.async_call(DOMAIN, "retry_workflow", {"job_id": job.id}, blocking=True)
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    assert await sent(simulator, ejector) == FULL_RUN
    assert (await scripts(simulator, ejector["id"]))[1].endswith(f"; pf-step={job.id}-eject-2")
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"workflow_paused_{job.id}") is None


async def test_a_macro_template_that_cannot_be_filled_is_refused_by_the_form(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any], ejector: Any
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    for template in ("EJECT_FROM_{position", "EJECT_FROM_{position:d}", "STORE_{shelf[0]}", "GRAB_{shelf.x}"):
        result = await set_templates(hass, entry, ejector, eject=template)
        assert result["errors"] == {"base": "invalid_macro_template"}, template
    assert entry.subentries[EJECTOR].data.get("macros") is None  # nothing stored


async def test_a_stored_template_that_cannot_be_filled_pauses_before_anything_is_sent(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
) -> None:
    """A template stored before the form checked it this way: the step pauses; nothing odd is sent."""
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    subentry = entry.subentries[EJECTOR]
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "macros": {"eject": "EJECT_FROM_{position"}}
    )
    await hass.async_block_till_done()
    job = await start_one(hass, hass_client, entry)
    await finish_and_cool(hass, simulator, sim_printer["serial"], job)
    await drive(hass, simulator, ejector["id"], lambda: paused(job))
    assert job.workflow["step"] == "home"  # the templates are read before the first macro
    assert job.workflow["fault"] == (
        "a macro template that cannot be filled: 'EJECT_FROM_{position' (expected '}' before end of string)"
    )
    assert await sent(simulator, ejector) == []
    assert (await set_templates(hass, entry, ejector, eject="EJECT_FROM_{position}"))["reason"] == (
        "reconfigure_successful"
    )
    client = await hass_client()
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/retry")).status == 200
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    assert await sent(simulator, ejector) == FULL_RUN


async def test_an_ottoeject_offline_when_a_step_is_due_pauses_and_is_asked_before_it_is_sent_again(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
) -> None:
    """Moonraker is down when HOME is due: the workflow pauses; back, it cannot vouch, so a person decides."""
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    job = await start_one(hass, hass_client, entry)
    await simulator.stop_moonraker(ejector["id"])
    await finish_and_cool(hass, simulator, sim_printer["serial"], job)
    await wait_until(hass, lambda: paused(job))
    assert (job.workflow["step"], job.workflow["fault"]) == ("home", "OttoEject cannot be reached")
    await simulator.start_moonraker(ejector["id"])
    client = await hass_client()
    # Whether HOME arrived is asked first: Moonraker restarted, so it cannot tell, and nothing is sent.
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/retry")).status == 200
    await wait_until(hass, lambda: paused(job) and "can no longer tell" in job.workflow["fault"])
    assert job.workflow["step"] == "home"
    assert await sent(simulator, ejector) == []
    # The person saw the OttoEject did not move: retry now sends it.
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/retry")).status == 200
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    assert await sent(simulator, ejector) == FULL_RUN
    assert (await scripts(simulator, ejector["id"]))[0].endswith(f"; pf-step={job.id}-home-2")


async def test_moonraker_unreachable_after_a_restart_pauses_and_asks_again_on_retry(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
) -> None:
    """Home Assistant restarts while EJECT runs and Moonraker is down: it never sends EJECT blind."""
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, ejector, "EJECT_FROM_P1")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await simulator.stop_moonraker(ejector["id"])
    assert await hass.config_entries.async_setup(entry.entry_id)
    job = entry.runtime_data.jobs.store.jobs[job.id]
    await wait_until(hass, lambda: paused(job))
    assert job.workflow["step"] == "eject"
    assert job.workflow["fault"].startswith("cannot ask OttoEject whether it received EJECT_FROM_P1")
    await simulator.advance_ottoeject(ejector["id"], 21)  # EJECT ends meanwhile
    await simulator.start_moonraker(ejector["id"])  # with its G-code store empty
    client = await hass_client()
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/retry")).status == 200
    await wait_until(hass, lambda: paused(job) and "can no longer tell" in job.workflow["fault"])
    assert await sent(simulator, ejector) == ["OTTOEJECT_HOME", "EJECT_FROM_P1"]  # asked, not sent again
    # The person sees the plate was ejected.
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/skip")).status == 200
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    assert await sent(simulator, ejector) == FULL_RUN


async def test_an_error_answer_found_after_a_restart_pauses_and_retry_sends_the_step_anew(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
) -> None:
    """Klipper shut down (aborting EJECT) while Home Assistant was down: the store shows the error."""
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, ejector, "EJECT_FROM_P1")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await simulator.set_klippy(ejector["id"], "shutdown")
    await simulator.set_klippy(ejector["id"], "ready")
    assert await hass.config_entries.async_setup(entry.entry_id)
    job = entry.runtime_data.jobs.store.jobs[job.id]
    await wait_until(hass, lambda: paused(job))
    assert (job.workflow["step"], job.workflow["fault"]) == (
        "eject",
        "Klipper answered EJECT_FROM_P1 with an error: retry sends it again",
    )
    assert await sent(simulator, ejector) == ["OTTOEJECT_HOME", "EJECT_FROM_P1"]
    await hass.services.async_call(DOMAIN, "retry_workflow", {"job_id": job.id}, blocking=True)
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    await assert_eject_sent_twice(simulator, ejector["id"], job.id)


async def test_a_printer_removed_while_its_plate_is_ejected_stops_the_ottoeject_after_the_step(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
) -> None:
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, ejector, "EJECT_FROM_P1")
    farm = entry.runtime_data
    hass.config_entries.async_remove_subentry(entry, "printer-1")
    await hass.async_block_till_done()
    assert farm.printer_by_id(1) is None
    await simulator.advance_ottoeject(ejector["id"], 21)  # EJECT ends, and its moves
    await wait_until(hass, lambda: paused(job))
    assert (job.workflow["step"], job.workflow["fault"]) == (
        "eject",
        "its printer is no longer part of the farm",
    )
    assert await sent(simulator, ejector) == ["OTTOEJECT_HOME", "EJECT_FROM_P1"]  # nothing more
    assert farm.ejectors[EJECTOR].held_by == job.id
    client = await hass_client()
    response = await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/abort")
    assert response.status == 200, await response.text()
    assert farm.ejectors[EJECTOR].held_by is None  # the OttoEject is free for the other printers
    assert job.workflow["done"]


@pytest.mark.parametrize("decision", ["skip", "retry"])
async def test_klipper_gone_when_home_assistant_comes_back_pauses_for_a_person(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
    decision: str,
) -> None:
    """EJECT was received, then Klipper left while Home Assistant was down: nobody knows whether it ended.

    Nothing is sent until a person decides: the plate was ejected (skip: EJECT is not sent again), or
    it was not (retry: Moonraker's store still says "received", yet EJECT is sent anew).
    """
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, ejector, "EJECT_FROM_P1")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await simulator.set_klippy(ejector["id"], "disconnected")
    assert await hass.config_entries.async_setup(entry.entry_id)
    job = entry.runtime_data.jobs.store.jobs[job.id]
    await wait_until(hass, lambda: paused(job))
    assert job.workflow["step"] == "eject"
    # Seen on the websocket ("Klipper stopped (disconnected) while ...") or over HTTP, whichever comes first.
    assert job.workflow["fault"].startswith("Klipper stopped")
    assert "while EJECT_FROM_P1 ran: it may have ended before; look at the OttoEject" in job.workflow["fault"]
    await simulator.set_klippy(ejector["id"], "ready")
    assert await sent(simulator, ejector) == ["OTTOEJECT_HOME", "EJECT_FROM_P1"]
    client = await hass_client()
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/{decision}")).status == 200
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    if decision == "skip":
        assert await sent(simulator, ejector) == FULL_RUN
        return
    await assert_eject_sent_twice(simulator, ejector["id"], job.id)


async def test_klipper_stopping_while_an_answered_macro_still_moves_pauses_and_retry_sends_it_anew(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: Any,
) -> None:
    """Klipper answers a script when its moves are queued; it shuts down before they ended."""
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, ejector, "EJECT_FROM_P1")
    await simulator.advance_ottoeject(ejector["id"], 20)  # answered; its last move still runs
    assert (await simulator.ottoeject(ejector["id"]))["idle_timeout"] == "Printing"
    await simulator.set_klippy(ejector["id"], "shutdown")
    await wait_until(hass, lambda: paused(job))
    assert (job.workflow["step"], job.workflow["fault"]) == (
        "eject",
        "Klipper stopped (shutdown) while EJECT_FROM_P1 ran",
    )
    await simulator.set_klippy(ejector["id"], "ready")
    client = await hass_client()
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/retry")).status == 200
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    await assert_eject_sent_twice(simulator, ejector["id"], job.id)
