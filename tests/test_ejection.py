"""The ejection workflow against the simulator: a finished plate goes to the rack, a fresh one comes on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from simulator.control import SimulatorControl

from .helpers import (
    EJECTION_GCODE as GCODE,
    EJECTOR,
    RACK,
    drive,
    ejection_entry,
    finish_and_cool,
    queue_job,
    setup_ejection,
    start_one,
    wait_until,
)


@pytest.fixture
async def ejector(simulator: SimulatorControl) -> Any:
    ottoeject = await simulator.add_ottoeject(printers=["P1", "P2", "P3"], slots=4, macro_seconds=0)
    yield ottoeject
    await simulator.remove_ottoeject(ottoeject["id"])


async def test_a_finished_plate_goes_to_the_rack_and_a_fresh_one_comes_on(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    farm = await setup_ejection(hass, entry, empty_plates=[2, 3])
    stages = async_capture_events(hass, "print_farm_workflow_storing")
    loading = async_capture_events(hass, "print_farm_workflow_loading")
    client: TestClient = await hass_client()
    job_id = await queue_job(client, "cube.gcode", GCODE, auto_start=True)
    jobs = farm.jobs
    await wait_until(hass, lambda: jobs.store.jobs[job_id].status == "PRINTING")
    job = jobs.store.jobs[job_id]
    assert (job.rack_id, job.store_shelf, job.grab_shelf) == (1, 1, 2)
    serial = sim_printer["serial"]
    await simulator.advance(serial, 900)
    await wait_until(hass, lambda: job.workflow is not None)
    await simulator.advance(serial, 300)  # the bed cools
    await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
    scripts = [entry["script"] for entry in (await simulator.ottoeject(ejector["id"]))["scripts"]]
    assert [script.split(" ;")[0] for script in scripts] == [
        "OTTOEJECT_HOME", "EJECT_FROM_P1", "STORE_TO_SLOT_1", "GRAB_FROM_SLOT_2", "LOAD_ONTO_P1", "PARK_OTTOEJECT",
    ]  # fmt: skip
    assert all(f"; pf-step={job_id}-" in script for script in scripts)
    shelves = {shelf.shelf_number: shelf for shelf in farm.racks[RACK].shelves}
    assert (shelves[1].plate_state, shelves[1].print_job_id) == ("with_print", job_id)
    assert not shelves[2].has_plate
    assert "G1 Z200 F3000" in (await simulator.printer(serial))["gcode_lines"]
    assert jobs.bed_is_clear(farm.printer_by_id(1))
    assert [(event.data["job_id"], event.data["shelf"]) for event in stages] == [(job_id, 1)]
    assert [event.data["shelf"] for event in loading] == [2]
    body = await (await client.get(f"/api/print_farm/print-jobs/{job_id}")).json()
    assert (body["assigned_store_slot"], body["assigned_grab_slot"], body["ottorack_id"]) == (1, 2, 1)
    # The job deleted: its plate's shelf still says what is on it.
    completed_at = body["completed_at"]
    assert (await client.delete(f"/api/print_farm/print-jobs/{job_id}")).status == 200
    rack = await (await client.get("/api/print_farm/ottoracks/1")).json()
    assert rack["shelves"][0]["print_job"] == {
        "id": job_id,
        "filename": "cube.gcode",
        "completed_at": completed_at,
    }
    await farm.racks[RACK].async_set_shelf_content(1, "no_plate")  # a person took it: nothing kept
    rack = await (await client.get("/api/print_farm/ottoracks/1")).json()
    assert rack["shelves"][0]["print_job"] is None
    assert farm.racks[RACK].kept(1) is None
    assert body["workflow"]["history"] == [
        "cool",
        "position",
        "settle",
        "home",
        "eject",
        "store",
        "grab",
        "load",
        "park",
    ]


@pytest.fixture
async def slow_ejector(simulator: SimulatorControl) -> Any:
    """An OttoEject whose macros run 20 simulated seconds: they end when the test moves its clock."""
    ottoeject = await simulator.add_ottoeject(printers=["P1", "P2", "P3"], slots=4, macro_seconds=20)
    yield ottoeject
    await simulator.remove_ottoeject(ottoeject["id"])


async def until_running(simulator: SimulatorControl, ejector_id: int, macro: str) -> None:
    """Let the macros before it end, until the simulated Klipper runs a macro (sent by Home Assistant)."""
    async with asyncio.timeout(15):
        while (details := await simulator.ottoeject(ejector_id))["running"] != macro:
            if details["running"] or details["idle_timeout"] == "Printing":
                await simulator.advance_ottoeject(ejector_id, 20)
            await asyncio.sleep(0.05)


async def scripts(simulator: SimulatorControl, ejector_id: int) -> list[str]:
    return [entry["script"] for entry in (await simulator.ottoeject(ejector_id))["scripts"]]


async def assert_eject_sent_twice(simulator: SimulatorControl, ejector_id: int, job_id: int) -> None:
    """The full run, with EJECT sent a second time under a marker of its own (`-eject-2`), nothing else twice."""
    sent = await scripts(simulator, ejector_id)
    assert [script.split(" ;")[0] for script in sent] == [FULL_RUN[0], FULL_RUN[1], *FULL_RUN[1:]]
    assert sent[1].endswith(f"; pf-step={job_id}-eject-1")
    assert sent[2].endswith(f"; pf-step={job_id}-eject-2")


FULL_RUN = [
    "OTTOEJECT_HOME",
    "EJECT_FROM_P1",
    "STORE_TO_SLOT_1",
    "GRAB_FROM_SLOT_2",
    "LOAD_ONTO_P1",
    "PARK_OTTOEJECT",
]


async def ejecting(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    printer: dict[str, Any],
    ejector: dict[str, Any],
    macro: str,
) -> tuple[MockConfigEntry, Any]:
    """A farm of one printer whose one job printed, cooled, and whose OttoEject now runs `macro`."""
    entry = ejection_entry([(printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    job = await start_one(hass, hass_client, entry)
    await finish_and_cool(hass, simulator, printer["serial"], job)
    await until_running(simulator, ejector["id"], macro)
    return entry, job


@pytest.mark.parametrize("ends_while_down", [True, False], ids=["ends-while-down", "ends-after-restart"])
async def test_a_restart_while_a_macro_runs_is_resolved_from_the_device(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    slow_ejector: dict[str, Any],
    ends_while_down: bool,
) -> None:
    """Home Assistant stops while a macro's acknowledgement is pending: never sent twice, never lost."""
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, slow_ejector, "EJECT_FROM_P1")
    assert (job.workflow["step"], job.workflow["state"]) == ("eject", "sent")
    assert await hass.config_entries.async_unload(entry.entry_id)
    if ends_while_down:
        await simulator.advance_ottoeject(slow_ejector["id"], 20)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    jobs = entry.runtime_data.jobs
    job = jobs.store.jobs[job.id]
    await drive(hass, simulator, slow_ejector["id"], lambda: job.status == "COMPLETED")
    assert [script.split(" ;")[0] for script in await scripts(simulator, slow_ejector["id"])] == FULL_RUN
    assert job.workflow["history"] == [
        "cool",
        "position",
        "settle",
        *(step for step in ("home", "eject", "store", "grab", "load", "park")),
    ]
    shelf = entry.runtime_data.racks[RACK].shelves[0]
    assert (shelf.plate_state, shelf.print_job_id) == ("with_print", job.id)


async def test_a_step_stored_as_sent_but_never_received_is_sent_once_after_a_restart(
    hass: HomeAssistant,
    hass_client: Any,
    hass_storage: dict[str, Any],
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    slow_ejector: dict[str, Any],
) -> None:
    """Home Assistant stopped between storing STORE as sent and sending it: Moonraker's store shows it
    never arrived (its newest entry before the send is there, the marker is not), so it is sent, once.
    """
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, slow_ejector, "EJECT_FROM_P1")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await simulator.advance_ottoeject(slow_ejector["id"], 20)  # EJECT ends while Home Assistant is down
    # What Home Assistant leaves when it dies right after storing the next step as sent: the store's
    # newest entry as the anchor, the step `sent`, nothing on the wire.
    async with aiohttp.ClientSession() as session:
        url = f"http://{slow_ejector['host']}:{slow_ejector['port']}/server/gcode_store"
        async with session.get(url, headers={"X-Api-Key": slow_ejector["api_key"]}) as response:
            newest = (await response.json())["result"]["gcode_store"][-1]
    stored = next(item for item in hass_storage["print_farm.jobs"]["data"]["jobs"] if item["id"] == job.id)
    assert (stored["workflow"]["step"], stored["workflow"]["state"]) == ("eject", "sent")
    stored["stage"] = "storing"
    stored["workflow"].update(
        step="store",
        state="sent",
        attempt=1,
        sent_at=time.time(),
        anchor={"time": newest["time"], "message": newest["message"]},
        history=[*stored["workflow"]["history"], "eject"],
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    job = entry.runtime_data.jobs.store.jobs[job.id]
    await drive(hass, simulator, slow_ejector["id"], lambda: job.status == "COMPLETED")
    sent = await scripts(simulator, slow_ejector["id"])
    assert [script.split(" ;")[0] for script in sent] == FULL_RUN  # each once: STORE sent after the restart
    assert sent[2].endswith(f"; pf-step={job.id}-store-2")  # with a marker of its own
    shelf = entry.runtime_data.racks[RACK].shelves[0]
    assert (shelf.plate_state, shelf.print_job_id) == ("with_print", job.id)


async def test_a_step_the_device_cannot_vouch_for_waits_for_a_person(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    slow_ejector: dict[str, Any],
) -> None:
    """Moonraker restarted while Home Assistant was down: its G-code store is empty, so nobody knows."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, slow_ejector, "EJECT_FROM_P1")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await simulator.advance_ottoeject(slow_ejector["id"], 20)
    await simulator.stop_moonraker(slow_ejector["id"])
    await simulator.start_moonraker(slow_ejector["id"])
    assert await hass.config_entries.async_setup(entry.entry_id)
    jobs = entry.runtime_data.jobs
    job = jobs.store.jobs[job.id]
    await wait_until(hass, lambda: job.workflow["state"] == "paused")
    assert job.workflow["step"] == "eject"
    issue_id = f"workflow_paused_{job.id}"
    assert ir.async_get(hass).async_get_issue("print_farm", issue_id) is not None
    # A person looked: the plate was ejected. Skip the step through the repair.
    client = await hass_client()
    flow = await (
        await client.post("/api/repairs/issues/fix", json={"handler": "print_farm", "issue_id": issue_id})
    ).json()
    assert (flow["type"], flow["menu_options"]) == ("menu", ["retry", "skip", "abort"])
    result = await (
        await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={"next_step_id": "skip"})
    ).json()
    assert result["type"] == "create_entry"
    await drive(hass, simulator, slow_ejector["id"], lambda: job.status == "COMPLETED")
    names = [script.split(" ;")[0] for script in await scripts(simulator, slow_ejector["id"])]
    assert names == FULL_RUN  # EJECT_FROM_P1 once: skipped, not sent again
    assert ir.async_get(hass).async_get_issue("print_farm", issue_id) is None


async def test_klipper_stopping_mid_macro_pauses_and_retry_sends_it_anew(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    slow_ejector: dict[str, Any],
) -> None:
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, slow_ejector, "EJECT_FROM_P1")
    client = await hass_client()
    # While the workflow holds the ejector, a person's macro and a reserved shelf's change are refused.
    response = await client.post("/api/print_farm/ottoeject/1/macros", json={"macro": "OTTOEJECT_HOME"})
    assert response.status == 409, await response.text()
    assert f"print job {job.id}" in (await response.json())["message"]
    response = await client.put("/api/print_farm/ottoracks/1/shelves/1", json={"has_plate": False})
    assert response.status == 409
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/complete")).status == 409
    await simulator.set_klippy(slow_ejector["id"], "shutdown")
    await wait_until(hass, lambda: job.workflow["state"] == "paused")
    assert job.stage == "ejecting"
    assert "shutdown" in job.workflow["fault"].lower()
    assert ir.async_get(hass).async_get_issue("print_farm", f"workflow_paused_{job.id}") is not None
    # A stuck workflow is an orchestration problem: the health route and binary sensor say which.
    await hass.async_block_till_done()
    problem = hass.states.get("binary_sensor.print_farm_orchestration")
    assert problem.state == "on"
    assert problem.attributes["issues"][0].startswith(
        f"The ejection workflow of print job {job.id} is paused at eject"
    )
    health = await client.get("/api/print_farm/orchestration/health")
    assert health.status == 503
    assert (await health.json())["data"]["issues"] == problem.attributes["issues"]
    await simulator.set_klippy(slow_ejector["id"], "ready")
    response = await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/retry")
    assert response.status == 200, await response.text()
    await drive(hass, simulator, slow_ejector["id"], lambda: job.status == "COMPLETED")
    await assert_eject_sent_twice(simulator, slow_ejector["id"], job.id)
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/retry")).status == 409
    assert hass.states.get("binary_sensor.print_farm_orchestration").state == "off"


async def test_abort_leaves_the_plate_to_a_person(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    slow_ejector: dict[str, Any],
) -> None:
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, slow_ejector, "OTTOEJECT_HOME")
    farm = entry.runtime_data
    client = await hass_client()
    await simulator.set_klippy(slow_ejector["id"], "shutdown")
    await wait_until(hass, lambda: job.workflow["state"] == "paused")
    response = await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/abort")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["status"], body["orchestration_status"]) == ("PRINTING", "awaiting_removal")
    assert farm.ejectors[EJECTOR].held_by is None
    # The shelves are free again for people; the bed waits to be marked clear.
    assert (
        await client.put("/api/print_farm/ottoracks/1/shelves/1", json={"has_plate": False})
    ).status == 200
    assert (await client.post("/api/print_farm/printers/1/bed-clear")).status == 200
    await wait_until(hass, lambda: job.status == "COMPLETED")
    assert [script.split(" ;")[0] for script in await scripts(simulator, slow_ejector["id"])] == [
        "OTTOEJECT_HOME"
    ]


async def test_a_full_rack_holds_the_queue_until_a_shelf_is_freed(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=2)
    farm = await setup_ejection(hass, entry, empty_plates=[1, 2])  # no free shelf for a finished plate
    client: TestClient = await hass_client()
    job_id = await queue_job(client, "cube.gcode", GCODE, auto_start=True)
    await hass.async_block_till_done()
    body = await (await client.get(f"/api/print_farm/print-jobs/{job_id}")).json()
    assert (body["status"], body["wait_reason"]) == (
        "QUEUED",
        "the rack is full: no free shelf for the finished plate",
    )
    await farm.racks[RACK].async_set_shelf_content(2, "no_plate")
    await wait_until(hass, lambda: farm.jobs.store.jobs[job_id].status == "PRINTING")
    job = farm.jobs.store.jobs[job_id]
    assert (job.store_shelf, job.grab_shelf) == (2, 1)


async def test_the_forms_name_a_printers_ottoeject_and_a_racks(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any], ejector: dict[str, Any]
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    farm = await setup_ejection(hass, entry, empty_plates=[])
    printer = farm.printer_by_id(1)
    connection = {
        "host": sim_printer["host"],
        "serial": sim_printer["serial"],
        "advanced": {"mqtt_port": sim_printer["mqtt_port"], "ftps_port": sim_printer["ftps_port"]},
    }

    async def reconfigure(ejection: dict[str, Any]) -> Any:
        flow = await entry.start_subentry_reconfigure_flow(hass, "printer", "printer-1")
        return await hass.config_entries.subentries.async_configure(
            flow["flow_id"], {**connection, "ejection": ejection}
        )

    result = await reconfigure({"ottoeject": EJECTOR, "ottoeject_position": ""})
    assert result["errors"] == {"base": "invalid_position"}
    result = await reconfigure(
        {"ottoeject": EJECTOR, "ottoeject_position": "p2", "settle_s": 5, "eject_gcode": "G1 Z180"}
    )
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries["printer-1"].data
    assert (data["ottoeject"], data["ottoeject_position"], data["settle_s"], data["eject_gcode"]) == (
        EJECTOR,
        "P2",
        5.0,
        "G1 Z180",
    )
    assert data["fingerprint"] == sim_printer["fingerprint"]  # the connection kept as it was
    await hass.async_block_till_done()
    assert farm.ejection.placement.ejector_of(farm.printer_by_id(1)) is farm.ejectors[EJECTOR]
    result = await reconfigure({"ottoeject": "none"})
    assert result["reason"] == "reconfigure_successful"
    assert "ottoeject" not in entry.subentries["printer-1"].data
    assert farm.ejection.placement.ejector_of(printer) is None

    flow = await entry.start_subentry_reconfigure_flow(hass, "rack", RACK)
    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        {"number_of_shelves": 4, "shelf_spacing_mm": 80, "bed_size": "256x256", "ottoeject": "none"},
    )
    assert result["reason"] == "reconfigure_successful"
    assert "ottoeject" not in entry.subentries[RACK].data
    assert farm.ejection.placement.rack_of(farm.ejectors[EJECTOR]) is None


async def test_a_failed_plate_is_held_for_a_person_by_default(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    job = await start_one(hass, hass_client, entry)
    await simulator.advance(sim_printer["serial"], 300)
    await wait_until(hass, lambda: job.seen_active)
    await simulator.fail(sim_printer["serial"])
    await wait_until(hass, lambda: job.status == "FAILED")
    issues = ir.async_get(hass)
    assert issues.async_get_issue("print_farm", "failed_plate_1") is not None
    assert job.workflow is None
    assert (await simulator.ottoeject(ejector["id"]))["scripts"] == []
    client = await hass_client()
    assert (await client.post("/api/print_farm/printers/1/bed-clear")).status == 200
    await hass.async_block_till_done()
    assert issues.async_get_issue("print_farm", "failed_plate_1") is None


async def test_a_failed_plate_is_ejected_and_stored_when_the_farm_says_so(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    farm = await setup_ejection(hass, entry, empty_plates=[2, 3])
    await farm.async_update_settings({"failed_plate": "eject"})
    job = await start_one(hass, hass_client, entry)
    await simulator.advance(sim_printer["serial"], 300)
    await wait_until(hass, lambda: job.seen_active)
    await simulator.fail(sim_printer["serial"])
    await wait_until(hass, lambda: job.workflow is not None)
    await simulator.advance(sim_printer["serial"], 300)  # the bed cools
    await drive(hass, simulator, ejector["id"], lambda: job.workflow["done"])
    assert (job.status, job.stage) == ("FAILED", "failed")
    shelf = farm.racks[RACK].shelves[0]
    assert (shelf.plate_state, shelf.print_job_id) == ("with_print", job.id)
    assert farm.jobs.bed_is_clear(farm.printer_by_id(1))
    assert ir.async_get(hass).async_get_issue("print_farm", "failed_plate_1") is None


async def test_an_ottoeject_that_goes_offline_mid_macro_pauses_its_workflow(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    slow_ejector: dict[str, Any],
) -> None:
    entry, job = await ejecting(hass, hass_client, simulator, sim_printer, slow_ejector, "EJECT_FROM_P1")
    await wait_until(hass, lambda: job.workflow["state"] == "sent")
    await asyncio.sleep(1.5)  # past the acknowledgement wait: the websocket follows the macro
    await simulator.stop_moonraker(slow_ejector["id"])
    await wait_until(hass, lambda: job.workflow["state"] == "paused", timeout=20)
    assert "offline" in job.workflow["fault"]
    assert ir.async_get(hass).async_get_issue("print_farm", f"workflow_paused_{job.id}") is not None
    # Moonraker comes back (its G-code store empty: it cannot vouch for the macro). The macro ended
    # meanwhile; the person sees the plate off the printer and skips the step.
    await simulator.advance_ottoeject(slow_ejector["id"], 20)
    await simulator.start_moonraker(slow_ejector["id"])
    client = await hass_client()
    assert (await client.post(f"/api/print_farm/print-jobs/{job.id}/workflow/skip")).status == 200
    await drive(hass, simulator, slow_ejector["id"], lambda: job.status == "COMPLETED")
    names = [script.split(" ;")[0] for script in await scripts(simulator, slow_ejector["id"])]
    assert names == FULL_RUN


async def test_rest_names_a_printers_ottoeject_and_a_racks(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    farm = await setup_ejection(hass, entry, empty_plates=[])
    client = await hass_client()
    body = await (await client.get("/api/print_farm/printers/1")).json()
    assert (body["ottoeject_id"], body["ottoeject_position"]) == (1, "P1")
    assert (await client.put("/api/print_farm/printers/1", json={"ottoeject_id": 9})).status == 400
    assert (await client.put("/api/print_farm/printers/1", json={"ottoeject_position": "P 2"})).status == 400
    response = await client.put("/api/print_farm/printers/1", json={"ottoeject_id": None})
    assert response.status == 200
    assert ((body := await response.json())["ottoeject_id"], body["ottoeject_position"]) == (None, None)
    assert "ottoeject_position" not in entry.subentries["printer-1"].data
    response = await client.put("/api/print_farm/printers/1", json={"ottoeject_id": 1})
    assert response.status == 400  # a position is needed
    response = await client.put(
        "/api/print_farm/printers/1", json={"ottoeject_id": 1, "ottoeject_position": "p2", "settle_s": 3}
    )
    assert ((body := await response.json())["ottoeject_id"], body["ottoeject_position"]) == (1, "P2")
    assert entry.subentries["printer-1"].data["settle_s"] == 3.0
    assert entry.subentries["printer-1"].data["fingerprint"] == sim_printer["fingerprint"]

    rack = await (await client.get("/api/print_farm/ottoracks/1")).json()
    assert rack["ottoeject_id"] == 1
    response = await client.put("/api/print_farm/ottoracks/1", json={"ottoeject_id": None})
    assert (response.status, (await response.json())["ottoeject_id"]) == (200, None)
    assert farm.ejection.placement.rack_of(farm.ejectors[EJECTOR]) is None
    created = await client.post(
        "/api/print_farm/ottoracks",
        json={
            "name": "B",
            "number_of_shelves": 2,
            "shelf_spacing_mm": 80,
            "bed_size": "256x256",
            "ottoeject_id": 1,
        },
    )
    assert (created.status, (await created.json())["ottoeject_id"]) == (201, 1)
    bad = await client.post(
        "/api/print_farm/ottoracks",
        json={
            "name": "C",
            "number_of_shelves": 2,
            "shelf_spacing_mm": 80,
            "bed_size": "256x256",
            "ottoeject_id": 5,
        },
    )
    assert bad.status == 400
    assert len(farm.racks) == 2  # nothing added for the refused one


async def test_an_ottoeject_a_job_depends_on_does_not_change_under_it(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    ejector: dict[str, Any],
) -> None:
    entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
    await setup_ejection(hass, entry, empty_plates=[2, 3])
    job = await start_one(hass, hass_client, entry)
    assert job.store_shelf == 1  # reserved: the printer's, the rack's and the ejector's settings hold
    client = await hass_client()
    assert (await client.put("/api/print_farm/printers/1", json={"ottoeject_id": None})).status == 409
    assert (await client.put("/api/print_farm/ottoracks/1", json={"ottoeject_id": None})).status == 409
    assert (await client.delete("/api/print_farm/ottoeject/1")).status == 409
    flow = await entry.start_subentry_reconfigure_flow(hass, "printer", "printer-1")
    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        {
            "host": sim_printer["host"],
            "serial": sim_printer["serial"],
            "advanced": {"mqtt_port": sim_printer["mqtt_port"], "ftps_port": sim_printer["ftps_port"]},
            "ejection": {"ottoeject": "none"},
        },
    )
    assert result["errors"] == {"base": "ottoeject_in_use"}
    flow = await entry.start_subentry_reconfigure_flow(hass, "rack", RACK)
    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        {"number_of_shelves": 4, "shelf_spacing_mm": 80, "bed_size": "256x256", "ottoeject": "none"},
    )
    assert result["errors"] == {"base": "ottoeject_in_use"}
    # Renaming is not a change of OttoEject.
    assert (await client.put("/api/print_farm/printers/1", json={"name": "Renamed"})).status == 200
    assert entry.subentries["printer-1"].data["ottoeject"] == EJECTOR
