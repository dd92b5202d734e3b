"""Books that follow the prints, against the simulator: spools placed by RFID, grams deducted once, runs, the forecast."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
import io
from typing import Any
from unittest.mock import patch
import zipfile

from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events
import voluptuous as vol

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.runtime.consumption import printer_trays
from custom_components.print_farm.runtime.production import STORAGE_KEY
from simulator.control import SimulatorControl

from .helpers import (
    GREEN,
    UUID,
    V1,
    body_of as _body,
    placed_spool as _placed_spool,
    project,
    queue_file as _queue,
    wait_books,
    wait_until,
)

JOBS = "/api/print_farm/print-jobs"


async def _print(
    hass: HomeAssistant, client: TestClient, farm: Any, simulator: SimulatorControl, serial: str, job_id: int
) -> None:
    """Start a job and let the simulated printer run it to its end."""
    await _body(await client.post(f"{JOBS}/{job_id}/start"), 202)
    await simulator.advance(serial, 4000)
    jobs = farm.runtime_data.jobs
    await wait_until(hass, lambda: jobs.store.jobs[job_id].stage == "awaiting_removal")


async def _print_to(
    hass: HomeAssistant, farm: Any, simulator: SimulatorControl, serial: str, percent: int
) -> None:
    """Advance the printing printer until it reports `percent` progress, and Home Assistant saw it."""
    printer = farm.runtime_data.printer_by_id(1)
    while True:
        state = (await simulator.advance(serial, 9))["state"]
        if state["gcode_state"] == "RUNNING" and state["mc_percent"] >= percent:
            break
    await wait_until(hass, lambda: printer.client.fields["progress"] == state["mc_percent"])
    assert state["mc_percent"] == percent


async def test_a_finished_print_is_deducted_from_the_spool_in_its_tray(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    spool_id = await _placed_spool(hass, client, farm, simulator, serial, price=25)
    spool = await _body(await client.get(f"{V1}/spools/{spool_id}"), 200)
    assert (spool["tray_uuid"], spool["location"]) == (UUID, {"printer_serial": serial, "tray": GREEN})
    job_id = await _queue(client, project())
    await _print(hass, client, farm, simulator, serial, job_id)

    job = await _body(await client.get(f"{JOBS}/{job_id}"), 200)
    assert job["filament_use"] == [
        {
            "filament": 1,
            "material": "PLA",
            "grams": 12.34,
            "tray": GREEN,
            "spool_id": spool_id,
            "tray_remaining_percent": 80,
            "spool_remaining_grams": 987.66,
            "spool_remaining_percent": 98.8,
        }
    ]
    assert job["filament_deducted"] is True
    assert job["cost"] == 0.31  # 12.34 g at 25 per kg; no machine rate set
    assert job["production_run_id"] is None  # job_run_auto_open is off by default: no run
    assert farm.runtime_data.production.books.runs == {}
    # The plate comes off: the job completes, and nothing more leaves the spool.
    finished = async_capture_events(hass, "print_farm_job_finished")
    await _body(await client.post("/api/print_farm/printers/1/bed-clear"), 200)
    assert finished[0].data["job"]["filament_use"][0]["spool_remaining_grams"] == 987.66
    assert (await _body(await client.get(f"{V1}/spools/{spool_id}"), 200))["remaining_grams"] == 987.66
    assert farm.runtime_data.production.books.material_used_grams == Decimal("12.34")
    # The farm's sensors: the last job's cost (in Home Assistant's currency) and today's.
    registry = er.async_get(hass)
    last = registry.async_get_entity_id("sensor", DOMAIN, f"{farm.entry_id}_last_job_cost")
    today = registry.async_get_entity_id("sensor", DOMAIN, f"{farm.entry_id}_cost_today")
    state = hass.states.get(last)
    assert (state.state, state.attributes["job_id"]) == ("0.31", job_id)
    assert state.attributes["unit_of_measurement"] == hass.config.currency
    assert hass.states.get(today).state == "0.31"


async def test_a_print_failed_at_45_percent_deducts_45_percent(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    spool_id = await _placed_spool(hass, client, farm, simulator, serial)
    job_id = await _queue(client, project("50"))
    await _body(await client.post(f"{JOBS}/{job_id}/start"), 202)
    await _print_to(hass, farm, simulator, serial, 40)
    # The FAILED report itself says 45 %: the print got that far, beyond the last report's 40 %.
    await simulator.fail(serial, 117473282, progress=45)
    await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[job_id].status == "FAILED")
    job = await _body(await client.get(f"{JOBS}/{job_id}"), 200)
    assert [use["grams"] for use in job["filament_use"]] == [22.5]
    assert (await _body(await client.get(f"{V1}/spools/{spool_id}"), 200))["remaining_grams"] == 977.5


async def test_a_job_with_no_spool_in_its_tray_says_so_and_deducts_nothing(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    other = await _body(await client.post(f"{V1}/spools", json={"name": "PLA", "material": "PLA"}), 201)
    job_id = await _queue(client, project())
    await _print(hass, client, farm, simulator, serial, job_id)
    job = await _body(await client.get(f"{JOBS}/{job_id}"), 200)
    assert [(use["tray"], use["spool_id"], use["grams"]) for use in job["filament_use"]] == [
        (GREEN, None, 12.34)
    ]
    assert job["cost"] is None  # its filament's price is not known: no cost of machine time only
    assert (await _body(await client.get(f"{V1}/spools/{other['id']}"), 200))["remaining_grams"] == 1000.0


def _books_disk_full_once(failed: list[bool]) -> Callable[..., Any]:
    """A Store writer under which the books' file cannot be written, once (a full disk)."""
    original = Store._async_write_data

    async def write(store: Store[Any], path: str, data: dict[str, Any]) -> None:
        if not failed and store.key == STORAGE_KEY:
            failed.append(True)
            raise OSError(28, "No space left on device")
        await original(store, path, data)

    return write


async def test_a_restart_between_the_end_and_the_deduction_deducts_once(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    spool_id = await _placed_spool(hass, client, farm, simulator, serial)
    job_id = await _queue(client, project("100"))
    failed: list[bool] = []
    with patch.object(Store, "_async_write_data", _books_disk_full_once(failed)):
        await _print(hass, client, farm, simulator, serial, job_id)
    # The job's end (and what it used) is saved; the books' deduction was not.
    assert failed
    books = farm.runtime_data.production.books
    assert farm.runtime_data.jobs.store.jobs[job_id].filament_use is not None
    assert books.deducted(job_id) is None
    assert books.spools[spool_id].remaining_grams == 1000

    for _ in range(2):  # once the deduction is replayed, once after it was
        assert await hass.config_entries.async_unload(farm.entry_id)
        await hass.async_block_till_done()
        assert await hass.config_entries.async_setup(farm.entry_id)
        await hass.async_block_till_done()
        books = farm.runtime_data.production.books
        assert books.deducted(job_id) is not None
        assert books.spools[spool_id].remaining_grams == 900
        assert books.material_used_grams == 100
    # The plate comes off after the restarts: still once.
    await wait_until(
        hass, lambda: farm.runtime_data.printer_by_id(1).client.fields["gcode_state"] == "FINISH"
    )
    await _body(await client.post("/api/print_farm/printers/1/bed-clear"), 200)
    assert farm.runtime_data.jobs.store.jobs[job_id].status == "COMPLETED"
    assert farm.runtime_data.production.books.spools[spool_id].remaining_grams == 900


async def test_a_run_is_filled_from_two_jobs_and_completes_with_the_rest_only(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    spool_id = await _placed_spool(hass, client, farm, simulator, serial, cost_per_gram=0.02)
    run = await _body(
        await client.post(
            f"{V1}/production-runs",
            json={
                "status": "pending",
                "estimated_total_filament_grams": 100,
                "estimated_print_time_hours": 1,
            },
        ),
        201,
    )
    missing = await _body(await client.post(JOBS, json={"print_item_id": 1, "printer_id": 1}), 404)
    assert "Print item" in missing["message"]
    first = await _queue(client, project("40"), production_run_id=run["id"])
    second = await _queue(client, project("20"))
    assert (await client.put(f"{JOBS}/{second}", json={"production_run_id": "nope"})).status == 404
    await _body(await client.put(f"{JOBS}/{second}", json={"production_run_id": run["id"]}), 200)

    await _print(hass, client, farm, simulator, serial, first)
    await _body(await client.post("/api/print_farm/printers/1/bed-clear"), 200)
    await _print(hass, client, farm, simulator, serial, second)
    # Its grams were deducted (into this run): another run can no longer get them.
    other = await _body(await client.post(f"{V1}/production-runs", json={"status": "pending"}), 201)
    late = await _body(await client.put(f"{JOBS}/{second}", json={"production_run_id": other["id"]}), 409)
    assert "deducted" in late["message"]
    await _body(await client.post("/api/print_farm/printers/1/bed-clear"), 200)

    body = await _body(await client.get(f"{V1}/production-runs/{run['id']}"), 200)
    assert body["status"] == "in_progress"
    assert [(m["spool_id"], m["actual_weight_grams"], m["deducted_grams"]) for m in body["materials"]] == [
        (spool_id, 60.0, 60.0)
    ]
    # Nobody typed a total: the run's grams are its materials' (the variance reads them).
    assert body["actual_total_filament_grams"] is None
    assert body["actual_print_time_hours"] is not None
    assert (body["jobs_succeeded"], body["jobs_failed"]) == (2, 0)
    assert body["variance_analysis"]["material_variance_grams"] == -40.0
    assert (await _body(await client.get(f"{JOBS}/{first}"), 200))["production_run_id"] == run["id"]
    listed = {job["id"]: job for job in await _body(await client.get(JOBS), 200)}
    assert (listed[first]["production_run_id"], listed[first]["cost"]) == (run["id"], 0.8)  # 40 g at 0.02
    assert (await _body(await client.get(f"{V1}/spools/{spool_id}"), 200))["remaining_grams"] == 940.0

    # A person weighs 5 g of purge more on the run's material: completion deducts those 5 g only.
    material_id = body["materials"][0]["id"]
    await _body(
        await client.patch(
            f"{V1}/production-runs/{run['id']}/materials/{material_id}", json={"actual_weight_grams": 65}
        ),
        200,
    )
    weighed = await _body(await client.get(f"{V1}/production-runs/{run['id']}"), 200)
    assert weighed["variance_analysis"]["material_variance_grams"] == -35.0  # the person's 5 g count
    done = await _body(await client.post(f"{V1}/production-runs/{run['id']}/complete"), 200)
    assert [(row["spool_id"], row["deducted"]) for row in done["spools_updated"]] == [(spool_id, 5.0)]
    completed = await _body(await client.get(f"{V1}/production-runs/{run['id']}"), 200)
    assert completed["actual_total_filament_grams"] == 65.0
    assert (await _body(await client.get(f"{V1}/spools/{spool_id}"), 200))["remaining_grams"] == 935.0
    # A completed run takes no more jobs.
    third = await _queue(client, project("20"))
    assert (await client.put(f"{JOBS}/{third}", json={"production_run_id": run["id"]})).status == 409
    # Nor does a cancelled one (the seed's finished runs: completed, failed, cancelled).
    await _body(await client.patch(f"{V1}/production-runs/{other['id']}", json={"status": "cancelled"}), 200)
    assert (await client.put(f"{JOBS}/{third}", json={"production_run_id": other["id"]})).status == 409


async def test_the_queue_needing_more_than_the_trays_hold_fires_once(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    await _placed_spool(hass, client, farm, simulator, serial, remaining_grams=180)
    events = async_capture_events(hass, "print_farm_spool_empty_soon")
    first = await _queue(client, project("150"))
    assert events == []  # 150 g of the 180 g placed
    second = await _queue(client, project("160"))
    third = await _queue(client, project("100"))  # still short: no second event
    await hass.async_block_till_done()
    assert [event.data for event in events] == [
        {
            "material": "PLA",
            "needed_grams": 310.0,
            "available_grams": 180.0,
            "job_ids": [first, second],
            "message": "the next 2 jobs need 310 g of PLA, 180 g left",
        }
    ]
    # Enough placed again, then short again: a new crossing, a new event.
    await _body(await client.delete(f"{JOBS}/{second}"), 200)
    await _body(await client.delete(f"{JOBS}/{third}"), 200)
    await _queue(client, project("100"))
    await hass.async_block_till_done()
    assert len(events) == 2
    assert events[1].data["needed_grams"] == 250.0


async def test_a_tray_select_places_a_spool_of_its_material(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    green = await _body(await client.post(f"{V1}/spools", json={"name": "Green", "material": "PLA"}), 201)
    await _body(await client.post(f"{V1}/spools", json={"name": "Red", "material": "PETG"}), 201)
    registry = er.async_get(hass)
    entity_id = registry.async_get_entity_id("select", DOMAIN, f"{serial}_ams_0_{GREEN}_spool")
    assert entity_id == "select.printer_1_ams_1_tray_4_spool"
    state = hass.states.get(entity_id)
    assert (state.state, state.attributes["options"]) == ("none", ["none", "Green"])  # PLA only
    await hass.services.async_call(
        "select", "select_option", {"entity_id": entity_id, "option": "Green"}, blocking=True
    )
    production = farm.runtime_data.production  # its books are replaced by every change
    assert production.books.placed_on(serial) == {GREEN: green["id"]}
    assert hass.states.get(entity_id).state == "Green"
    # The same spool chosen for another PLA tray leaves the first.
    white = registry.async_get_entity_id("select", DOMAIN, f"{serial}_ams_0_0_spool")
    await hass.services.async_call(
        "select", "select_option", {"entity_id": white, "option": "Green"}, blocking=True
    )
    assert production.books.placed_on(serial) == {0: green["id"]}
    assert hass.states.get(entity_id).state == "none"
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "select", "select_option", {"entity_id": entity_id, "option": "Red"}, blocking=True
        )
    assert err.value.translation_key == "not_valid_option"  # a PETG spool is no choice for a PLA tray
    # An emptied tray lists only what is placed there.
    await simulator.set_tray(serial, 0, 0, None)
    await wait_until(hass, lambda: hass.states.get(white).attributes["options"] == ["none", "Green"])


OTHER_UUID = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


async def _fix(client: TestClient, issue_id: str, *answers: dict[str, Any]) -> Any:
    flow = await _body(
        await client.post("/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}), 200
    )
    for answer in answers:
        flow = await _body(await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json=answer), 200)
    return flow


async def test_an_unknown_rfid_spool_is_offered_never_added_unasked(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    serial = sim_printer["serial"]
    issues = ir.async_get(hass)
    await simulator.set_tray(serial, 0, GREEN, {"tray_uuid": UUID, "remain": 80})
    await wait_until(hass, lambda: issues.async_get_issue(DOMAIN, f"new_spool_{UUID}") is not None)
    assert farm.runtime_data.production.books.spools == {}  # offered, not created
    issue = issues.async_get_issue(DOMAIN, f"new_spool_{UUID}")
    assert issue.translation_placeholders == {
        "printer": "Printer 1",
        "where": "tray 4 of AMS 1",
        "spool": "PLA Basic PLA #00AE42",
    }
    form = await _fix(client, f"new_spool_{UUID}", {"next_step_id": "add_spool"})
    assert form["step_id"] == "add_spool"
    refused = await _fix(
        client,
        f"new_spool_{UUID}",
        {"next_step_id": "add_spool"},
        {"name": "Green", "net_weight_grams": 1000, "remaining_grams": 1200},
    )
    assert refused["errors"] == {"remaining_grams": "more_than_net"}
    done = await _body(
        await client.post(
            f"/api/repairs/issues/fix/{refused['flow_id']}",
            json={"name": "Green", "net_weight_grams": 1000, "remaining_grams": 800},
        ),
        200,
    )
    assert done["type"] == "create_entry"
    (spool,) = farm.runtime_data.production.books.spools.values()
    assert (spool.name, spool.material, spool.color, spool.tray_uuid, spool.remaining_grams) == (
        "Green",
        "PLA",
        "#00AE42",
        UUID,
        800,
    )
    assert farm.runtime_data.production.books.placed_on(serial) == {GREEN: spool.id}
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, f"new_spool_{UUID}") is None

    # Offered, then added through REST instead: the offer goes, and the spool is placed.
    third = "00112233445566778899AABBCCDDEEFF"
    await simulator.set_tray(serial, 0, 1, {"tray_uuid": third})
    await wait_until(hass, lambda: issues.async_get_issue(DOMAIN, f"new_spool_{third}") is not None)
    added = await _body(
        await client.post(f"{V1}/spools", json={"name": "Black", "material": "PLA", "tray_uuid": third}), 201
    )
    await wait_books(hass, farm, lambda: farm.runtime_data.production.books.spools[added["id"]].tray == 1)
    assert issues.async_get_issue(DOMAIN, f"new_spool_{third}") is None

    # Not the farm's: never offered again for that uuid, even after a restart.
    await simulator.set_tray(serial, 0, 0, {"tray_uuid": OTHER_UUID})
    await wait_until(hass, lambda: issues.async_get_issue(DOMAIN, f"new_spool_{OTHER_UUID}") is not None)
    await _fix(client, f"new_spool_{OTHER_UUID}", {"next_step_id": "not_mine"})
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, f"new_spool_{OTHER_UUID}") is None
    assert await hass.config_entries.async_unload(farm.entry_id)
    assert await hass.config_entries.async_setup(farm.entry_id)
    await hass.async_block_till_done()
    printer = farm.runtime_data.printer_by_id(1)
    await wait_until(hass, lambda: bool(printer.client.fields["ams_units"]))
    await simulator.set_tray(serial, 0, 0, {"remain": 50})
    await wait_until(hass, lambda: printer_trays(printer)[0].remaining == 50)
    assert issues.async_get_issue(DOMAIN, f"new_spool_{OTHER_UUID}") is None
    assert len(farm.runtime_data.production.books.spools) == 2


async def test_machine_time_at_the_farms_rate_is_in_the_cost(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
    freezer: Any,
) -> None:
    serial = sim_printer["serial"]
    await _placed_spool(hass, client, farm, simulator, serial, price=25)
    assert (await _body(await client.put(f"{V1}/settings", json={"machine_cost_per_hour": 5}), 200))[
        "machine_cost_per_hour"
    ] == 5
    job_id = await _queue(client, project())
    await _body(await client.post(f"{JOBS}/{job_id}/start"), 202)
    freezer.tick(timedelta(minutes=24))  # 0.4 h at 5 an hour: 2.00 (within the client's token's life)
    await simulator.advance(serial, 4000)
    await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[job_id].stage == "awaiting_removal")
    job = await _body(await client.get(f"{JOBS}/{job_id}"), 200)
    assert job["cost"] == 2.31  # 12.34 g at 25 per kg (0.3085) + 2.00
    assert (await client.put(f"{V1}/settings", json={"machine_cost_per_hour": -1})).status == 400


async def test_each_orchestrated_job_opens_a_run_when_the_farm_says_so(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    spool_id = await _placed_spool(hass, client, farm, simulator, serial)
    switch = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{farm.entry_id}_job_run_auto_open")
    assert hass.states.get(switch).state == "off"
    # Off: an orchestrated job opens no run.
    jobs = farm.runtime_data.jobs
    first = await _queue(client, project("10"), auto_start=True)
    await wait_until(hass, lambda: jobs.store.jobs[first].status == "PRINTING")
    await simulator.advance(serial, 4000)
    await wait_until(hass, lambda: jobs.store.jobs[first].stage == "awaiting_removal")
    assert jobs.store.jobs[first].production_run_id is None
    assert farm.runtime_data.production.books.runs == {}
    await _body(await client.post("/api/print_farm/printers/1/bed-clear"), 200)
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    assert (await _body(await client.get(f"{V1}/settings"), 200))["job_run_auto_open"] is True
    job_id = await _queue(client, project("30"), auto_start=True)
    await wait_until(hass, lambda: jobs.store.jobs[job_id].production_run_id is not None)
    run_id = jobs.store.jobs[job_id].production_run_id
    await simulator.advance(serial, 4000)
    await wait_until(hass, lambda: jobs.store.jobs[job_id].stage == "awaiting_removal")
    run = await _body(await client.get(f"{V1}/production-runs/{run_id}"), 200)
    assert (run["status"], run["printer_name"], run["jobs_succeeded"]) == ("in_progress", "Printer 1", 1)
    # Its estimates come from the file: the variance analysis works.
    assert (run["estimated_total_filament_grams"], run["estimated_print_time_hours"]) == (30.0, 0.5)
    assert run["variance_analysis"]["material_variance_grams"] == 0.0
    assert [(m["spool_id"], m["actual_weight_grams"]) for m in run["materials"]] == [(spool_id, 30.0)]


async def test_the_actions_set_a_jobs_run_and_a_spools_rfid(
    hass: HomeAssistant, client: TestClient, farm: Any
) -> None:
    run = await _body(await client.post(f"{V1}/production-runs", json={"status": "pending"}), 201)
    job_id = await _queue(client, project())
    answer = await hass.services.async_call(
        DOMAIN,
        "set_job_run",
        {"job_id": job_id, "production_run_id": run["id"]},
        blocking=True,
        return_response=True,
    )
    assert (answer["id"], answer["production_run_id"]) == (job_id, run["id"])
    assert farm.runtime_data.jobs.store.jobs[job_id].production_run_id == run["id"]
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "set_job_run", {"job_id": job_id, "production_run_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "job_refused"
    await hass.services.async_call(DOMAIN, "set_job_run", {"job_id": job_id}, blocking=True)
    assert farm.runtime_data.jobs.store.jobs[job_id].production_run_id is None
    spool = await _body(await client.post(f"{V1}/spools", json={"name": "PLA", "material": "PLA"}), 201)
    body = await hass.services.async_call(
        DOMAIN,
        "adjust_spool",
        {"spool_id": spool["id"], "tray_uuid": UUID.lower()},
        blocking=True,
        return_response=True,
    )
    assert (body["tray_uuid"], body["remaining_grams"]) == (UUID, 1000.0)
    await hass.services.async_call(
        DOMAIN, "adjust_spool", {"spool_id": spool["id"], "tray_uuid": ""}, blocking=True
    )
    assert farm.runtime_data.production.books.spools[spool["id"]].tray_uuid is None
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN, "adjust_spool", {"spool_id": spool["id"], "tray_uuid": "xyz"}, blocking=True
        )
    # REST: a tray_uuid names one spool.
    await _body(await client.patch(f"{V1}/spools/{spool['id']}", json={"tray_uuid": UUID}), 200)
    other = await _body(await client.post(f"{V1}/spools", json={"name": "B", "material": "PLA"}), 201)
    assert (await client.patch(f"{V1}/spools/{other['id']}", json={"tray_uuid": UUID})).status == 409


def two_filaments() -> bytes:
    """A plate of green PLA (filament 1) and red PETG (filament 2), 30 minutes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "Metadata/slice_info.config",
            '<?xml version="1.0" encoding="UTF-8"?>\n<config>\n  <plate>\n'
            '    <metadata key="index" value="1"/>\n    <metadata key="prediction" value="1800"/>\n'
            '    <filament id="1" type="PLA" color="#00AE42" used_m="4.10" used_g="12"/>\n'
            '    <filament id="2" type="PETG" color="#F95959" used_m="2.00" used_g="5"/>\n'
            "  </plate>\n</config>\n",
        )
        archive.writestr(
            "Metadata/plate_1.gcode",
            "; HEADER_BLOCK_START\n; BambuStudio 02.00.00.00\n; total estimated time: 30m 0s\n"
            "; total layer number: 60\n; HEADER_BLOCK_END\nG28\n",
        )
    return buffer.getvalue()


async def test_each_filament_is_deducted_from_the_tray_its_ams_mapping_named(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    pla = await _placed_spool(hass, client, farm, simulator, serial)
    petg = await _body(await client.post(f"{V1}/spools", json={"name": "Red PETG", "material": "PETG"}), 201)
    select = er.async_get(hass).async_get_entity_id("select", DOMAIN, f"{serial}_ams_0_2_spool")
    await hass.services.async_call(
        "select", "select_option", {"entity_id": select, "option": "Red PETG"}, blocking=True
    )
    job_id = await _queue(client, two_filaments())
    await _print(hass, client, farm, simulator, serial, job_id)
    assert farm.runtime_data.jobs.store.jobs[job_id].ams_mapping == [GREEN, 2]
    job = await _body(await client.get(f"{JOBS}/{job_id}"), 200)
    assert [(use["filament"], use["tray"], use["spool_id"], use["grams"]) for use in job["filament_use"]] == [
        (1, GREEN, pla, 12.0),
        (2, 2, petg["id"], 5.0),
    ]
    spools = farm.runtime_data.production.books.spools
    assert (spools[pla].remaining_grams, spools[petg["id"]].remaining_grams) == (988, 995)


async def test_a_job_created_for_a_print_started_elsewhere_opens_a_run_when_the_farm_says_so(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    await _body(await client.put(f"{V1}/settings", json={"job_run_auto_open": True}), 200)
    await simulator.put_file(serial, "outside.gcode.3mf", project("25"))
    await simulator.start_print(serial, "outside.gcode.3mf")
    jobs = farm.runtime_data.jobs
    await wait_until(hass, lambda: any(job.production_run_id for job in jobs.store.jobs.values()))
    (job,) = jobs.store.jobs.values()
    run = farm.runtime_data.production.books.runs[job.production_run_id]
    assert (run.status, run.printer_name) == ("in_progress", "Printer 1")
    # Its file's weights are not known to the farm: the run gets its time and result, no grams.
    await simulator.advance(serial, 4000)
    await wait_until(hass, lambda: job.stage == "awaiting_removal")
    body = await _body(await client.get(f"{V1}/production-runs/{run.id}"), 200)
    assert (body["jobs_succeeded"], body["materials"]) == (1, [])
    job_body = await _body(await client.get(f"{JOBS}/{job.id}"), 200)
    # Nothing known of its filament: no use, nothing deducted, no cost (never machine time only).
    assert (job_body["filament_use"], job_body["filament_deducted"], job_body["cost"]) == (None, False, None)
    assert body["actual_print_time_hours"] is not None
