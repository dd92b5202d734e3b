"""A person's decisions on an ejection workflow (retry, skip, abort): refused when they do not apply.

The same rule answers the REST route, the actions and the repair flow.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from simulator.control import SimulatorControl

from .helpers import EJECTOR, RACK, ejection_entry, queue_job, setup_ejection, wait_until
from .test_ejection import FULL_RUN, drive, finish_and_cool, scripts, start_one, until_running
from .test_ejection_printer import PETG

DOMAIN = "print_farm"
JOBS = "/api/print_farm/print-jobs"


@pytest.fixture
async def ejector(simulator: SimulatorControl) -> Any:
    """An OttoEject whose macros run 20 simulated seconds: they end when the test moves its clock."""
    ottoeject = await simulator.add_ottoeject(printers=["P1", "P2", "P3"], slots=4, macro_seconds=20)
    yield ottoeject
    await simulator.remove_ottoeject(ottoeject["id"])


async def decide(client: Any, job_id: int, decision: str) -> tuple[int, str]:
    """POST a decision; the status and the message (or the job's stage)."""
    response = await client.post(f"{JOBS}/{job_id}/workflow/{decision}")
    body = await response.json()
    return response.status, body.get("message") or body.get("orchestration_status")


async def refused_action(hass: HomeAssistant, service: str, job_id: int) -> ServiceValidationError:
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, service, {"job_id": job_id}, blocking=True, return_response=True
        )
    assert refused.value.translation_key == "job_refused"
    return refused.value


async def test_decisions_are_refused_while_nothing_is_paused(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    farm = await setup_ejection(hass, entry, empty_plates=[2, 3])
    client = await hass_client()
    for decision in ("retry", "skip", "abort"):
        assert await decide(client, 99, decision) == (404, "Print job 99 not found")
    for service in ("retry_workflow", "skip_workflow_step", "abort_workflow"):
        error = await refused_action(hass, service, 99)
        assert error.translation_placeholders == {"error": "Print job 99 not found"}

    job = await start_one(hass, hass_client, entry)  # printing: its plate has no workflow yet
    none_yet = f"Print job {job.id} has no ejection workflow under way."
    for decision in ("retry", "skip", "abort"):
        assert await decide(client, job.id, decision) == (409, none_yet)

    await finish_and_cool(hass, simulator, sim_printer["serial"], job)
    await until_running(simulator, ejector["id"], "EJECT_FROM_P1")
    not_paused = f"The ejection workflow of print job {job.id} is not paused (it is at eject)."
    assert await decide(client, job.id, "retry") == (409, not_paused)
    assert await decide(client, job.id, "skip") == (409, not_paused)
    error = await refused_action(hass, "skip_workflow_step", job.id)
    assert error.translation_placeholders == {"error": not_paused}
    # The robot is moving: nobody may take the plate's workflow from under it.
    assert await decide(client, job.id, "abort") == (
        409,
        f"The OttoEject is running eject for print job {job.id}: abort once it paused, or when the step ended.",
    )
    assert farm.ejectors[EJECTOR].held_by == job.id
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    assert [script.split(" ;")[0] for script in await scripts(simulator, ejector["id"])] == FULL_RUN
    assert await decide(client, job.id, "abort") == (409, none_yet)  # its workflow ended


async def test_a_plate_waiting_to_cool_cannot_be_skipped_and_a_repair_decides_what_applies(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    """Someone started another print on the printer while the finished plate cooled: the workflow pauses."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    farm = await setup_ejection(hass, entry, empty_plates=[2, 3])
    await farm.async_update_settings({"eject_release_temperatures": {"PETG": 10}})  # it never cools enough
    client = await hass_client()
    job_id = await queue_job(client, "petg.gcode", PETG, auto_start=True)
    await wait_until(hass, lambda: farm.jobs.store.jobs[job_id].status == "PRINTING")
    job = farm.jobs.store.jobs[job_id]
    serial = sim_printer["serial"]
    await simulator.advance(serial, 900)
    await wait_until(hass, lambda: job.workflow is not None)
    await simulator.put_file(serial, "other.gcode", PETG)
    await simulator.start_print(serial, "other.gcode")
    await wait_until(hass, lambda: job.workflow["state"] == "paused")
    assert job.workflow["step"] == "cool"
    assert "reports another print" in job.workflow["fault"]
    nothing = f"The workflow of print job {job_id} waits at cool: there is nothing to skip."
    assert await decide(client, job_id, "skip") == (409, nothing)
    error = await refused_action(hass, "skip_workflow_step", job_id)
    assert error.translation_placeholders == {"error": nothing}

    issue_id = f"workflow_paused_{job_id}"

    async def repair(choice: str) -> dict[str, Any]:
        flow = await (
            await client.post("/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id})
        ).json()
        assert flow["description_placeholders"]["step"] == "cool"
        return await (
            await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={"next_step_id": choice})
        ).json()

    result = await repair("skip")
    assert (result["type"], result["reason"]) == ("abort", "workflow_failed")
    assert result["description_placeholders"] == {"error": nothing}
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None  # still waiting for a person
    # Retry looks again: the printer still prints another job's plate, so it pauses again.
    assert (await repair("retry"))["type"] == "create_entry"
    await wait_until(hass, lambda: job.workflow["state"] == "paused")
    assert "reports another print" in job.workflow["fault"]
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    # Abort: the plate is a person's, the shelves reserved for it are free again, nothing was sent.
    assert (await repair("abort"))["type"] == "create_entry"
    await hass.async_block_till_done()
    assert (job.workflow["done"], job.workflow["fault"]) == (True, "aborted at cool")
    assert (job.rack_id, job.store_shelf, job.grab_shelf) == (None, None, None)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    shelf = {"has_plate": True, "plate_state": "empty"}
    assert (await client.put("/api/print_farm/ottoracks/1/shelves/1", json=shelf)).status == 200
    assert farm.racks[RACK].shelves[0].has_plate
    assert (await simulator.ottoeject(ejector["id"]))["scripts"] == []


async def test_a_repair_opened_while_the_farm_is_not_loaded_leaves_the_workflow_as_it_is(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    """The issue outlives the entry's unload (it is persistent); its decisions wait for the farm."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    job = await start_one(hass, hass_client, entry)
    await finish_and_cool(hass, simulator, sim_printer["serial"], job)
    await until_running(simulator, ejector["id"], "OTTOEJECT_HOME")
    await simulator.set_klippy(ejector["id"], "shutdown")
    await wait_until(hass, lambda: job.workflow["state"] == "paused")
    assert await hass.config_entries.async_unload(entry.entry_id)
    issue_id = f"workflow_paused_{job.id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    client = await hass_client()
    flow = await (
        await client.post("/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id})
    ).json()
    assert flow["menu_options"] == ["retry", "skip", "abort"]
    result = await (
        await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={"next_step_id": "abort"})
    ).json()
    assert (result["type"], result["reason"]) == ("abort", "workflow_gone")
    # Loaded again, the workflow is still paused where it was, and the repair still offered.
    await simulator.set_klippy(ejector["id"], "ready")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    job = entry.runtime_data.jobs.store.jobs[job.id]
    assert (job.workflow["state"], job.workflow["step"], job.workflow["done"]) == ("paused", "home", False)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
