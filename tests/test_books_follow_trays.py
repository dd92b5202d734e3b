"""Books that follow the prints, the edges: spools that could move back and forth, offers answered late, replays."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest.mock import patch

from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_capture_events, async_fire_time_changed

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl

from .helpers import setup_farm, wait_until
from .test_print_books import (
    GREEN,
    JOBS,
    UUID,
    V1,
    _body,
    _books_disk_full_once,
    _fix,
    _placed_spool,
    _print,
    _print_to,
    _queue,
    project,
    wait_books,
)


def _moves(farm: Any, spool_id: str) -> tuple[list[tuple[str | None, int | None]], Any]:
    """Every place the books give a spool, one entry per change of the books."""
    production = farm.runtime_data.production
    seen: list[tuple[str | None, int | None]] = []

    def changed() -> None:
        spool = production.books.spools[spool_id]
        seen.append((spool.printer_serial, spool.tray))

    return seen, production.async_add_listener(changed)


async def test_two_trays_reading_one_spool_never_move_it_back_and_forth(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    spool_id = await _placed_spool(hass, client, farm, simulator, serial)
    seen, remove = _moves(farm, spool_id)
    # Tray 1 now reads the same uuid, the green tray still does: the tray whose reading changed wins, once.
    await simulator.set_tray(serial, 0, 0, {"tray_uuid": UUID})
    await wait_books(hass, farm, lambda: farm.runtime_data.production.books.spools[spool_id].tray == 0)
    await asyncio.sleep(0.5)  # time enough for a loop to show
    await simulator.set_tray(serial, 0, 1, {"remain": 40})  # another report: nothing read changed
    await asyncio.sleep(0.3)
    remove()
    assert seen == [(serial, 0)]


async def test_a_spool_read_by_an_offline_printer_is_placed_where_it_is_now(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    second = await simulator.add_printer(model="P1S")
    try:
        farm = await setup_farm(hass, sim_printer, second)
        client = await hass_client()
        first_serial, second_serial = sim_printer["serial"], second["serial"]
        first = farm.runtime_data.printer_by_serial(first_serial)
        # The spool was in printer 1's green tray; printer 1 went offline (its fields keep that
        # reading), and the spool went to printer 2's first tray.
        await simulator.set_tray(first_serial, 0, GREEN, {"tray_uuid": UUID})
        await wait_until(hass, lambda: first.client.fields["ams_units"][0].trays[GREEN].tray_uuid == UUID)
        await simulator.offline(first_serial)
        await wait_until(hass, lambda: not first.client.online)
        second_printer = farm.runtime_data.printer_by_serial(second_serial)
        await simulator.set_tray(second_serial, 0, 0, {"tray_uuid": UUID})
        await wait_until(
            hass, lambda: second_printer.client.fields["ams_units"][0].trays[0].tray_uuid == UUID
        )
        # The farm learns the spool's uuid: it is placed where an online printer reads it.
        body = await _body(
            await client.post(f"{V1}/spools", json={"name": "Green", "material": "PLA", "tray_uuid": UUID}),
            201,
        )
        production = farm.runtime_data.production
        await wait_books(hass, farm, lambda: production.books.spools[body["id"]].tray is not None)
        seen, remove = _moves(farm, body["id"])
        await asyncio.sleep(0.5)
        await simulator.set_tray(second_serial, 0, 1, {"remain": 40})
        await asyncio.sleep(0.3)
        remove()
        spool = production.books.spools[body["id"]]
        assert (spool.printer_serial, spool.tray) == (second_serial, 0)
        assert seen == []  # and it stays there
    finally:
        await simulator.remove_printer(second["serial"])


async def test_an_offer_whose_tray_changed_is_withdrawn_and_adds_no_placement(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    serial = sim_printer["serial"]
    issues = ir.async_get(hass)
    issue_id = f"new_spool_{UUID}"
    await simulator.set_tray(serial, 0, GREEN, {"tray_uuid": UUID})
    await wait_until(hass, lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    # A person opens the offer's form; meanwhile the spool leaves the tray, another one is put there.
    form = await _fix(client, issue_id, {"next_step_id": "add_spool"})
    other = await _body(await client.post(f"{V1}/spools", json={"name": "White", "material": "PLA"}), 201)
    production = farm.runtime_data.production
    select = er.async_get(hass).async_get_entity_id("select", DOMAIN, f"{serial}_ams_0_{GREEN}_spool")
    await hass.services.async_call(
        "select", "select_option", {"entity_id": select, "option": "White"}, blocking=True
    )
    await simulator.set_tray(serial, 0, GREEN, {"tray_uuid": "0" * 32})
    await wait_until(hass, lambda: issues.async_get_issue(DOMAIN, issue_id) is None)
    # Answered late: the spool is added, unplaced; the tray keeps the spool that is in it.
    done = await _body(
        await client.post(
            f"/api/repairs/issues/fix/{form['flow_id']}",
            json={"name": "Green", "net_weight_grams": 1000, "remaining_grams": 800},
        ),
        200,
    )
    assert done["type"] == "create_entry", done
    added = next(spool for spool in production.books.spools.values() if spool.tray_uuid == UUID)
    assert (added.printer_serial, added.tray) == (None, None)
    assert production.books.placed_on(serial) == {GREEN: other["id"]}


async def test_a_replayed_deduction_charges_the_prints_time_not_the_downtime(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
    freezer: Any,
) -> None:
    serial = sim_printer["serial"]
    spool_id = await _placed_spool(hass, client, farm, simulator, serial, price=25)
    await _body(await client.put(f"{V1}/settings", json={"machine_cost_per_hour": 5}), 200)
    job_id = await _queue(client, project())
    await _body(await client.post(f"{JOBS}/{job_id}/start"), 202)
    freezer.tick(timedelta(minutes=12))  # 0.2 h at 5 an hour: 1.00
    failed: list[bool] = []
    with patch.object(Store, "_async_write_data", _books_disk_full_once(failed)):
        await simulator.advance(serial, 4000)
        jobs = farm.runtime_data.jobs
        await wait_until(hass, lambda: jobs.store.jobs[job_id].stage == "awaiting_removal")
    assert failed
    assert farm.runtime_data.production.books.deducted(job_id) is None
    freezer.tick(timedelta(minutes=12))  # Home Assistant is down 12 minutes
    assert await hass.config_entries.async_unload(farm.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(farm.entry_id)
    await hass.async_block_till_done()
    record = farm.runtime_data.production.books.deducted(job_id)
    assert record is not None
    assert record.machine_cost == Decimal(1)
    assert record.cost is not None
    assert round(record.cost, 2) == Decimal("1.31")  # 12.34 g at 25 per kg + 1.00
    assert farm.runtime_data.production.books.spools[spool_id].remaining_grams == Decimal("987.66")


async def test_the_cost_of_today_starts_again_at_local_midnight(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
    freezer: Any,
) -> None:
    serial = sim_printer["serial"]
    await _placed_spool(hass, client, farm, simulator, serial, price=25)
    job_id = await _queue(client, project())
    await _body(await client.post(f"{JOBS}/{job_id}/start"), 202)
    await simulator.advance(serial, 4000)
    await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[job_id].stage == "awaiting_removal")
    today = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{farm.entry_id}_cost_today")
    assert hass.states.get(today).state == "0.31"
    # Nothing changes in the books overnight: the sensor starts the new day at 0 all the same.
    midnight = dt_util.start_of_local_day() + timedelta(days=1)
    freezer.move_to(midnight)
    async_fire_time_changed(hass, midnight)
    await hass.async_block_till_done()
    assert float(hass.states.get(today).state) == 0


async def test_a_printing_jobs_unprinted_grams_count_in_the_forecast(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    await _placed_spool(hass, client, farm, simulator, serial, remaining_grams=180)
    events = async_capture_events(hass, "print_farm_spool_empty_soon")
    printing = await _queue(client, project("150"))
    await _body(await client.post(f"{JOBS}/{printing}/start"), 202)
    await _print_to(hass, farm, simulator, serial, 50)  # 75 g of its 150 g still to print
    queued = await _queue(client, project("120"))
    await hass.async_block_till_done()
    assert [event.data for event in events] == [
        {
            "material": "PLA",
            "needed_grams": 195.0,
            "available_grams": 180.0,
            "job_ids": [printing, queued],
            "message": "the next 2 jobs need 195 g of PLA, 180 g left",
        }
    ]


async def test_the_offered_spool_is_checked_like_any_other(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    serial = sim_printer["serial"]
    issues = ir.async_get(hass)
    issue_id = f"new_spool_{UUID}"
    await simulator.set_tray(serial, 0, 1, {"tray_uuid": UUID})
    await wait_until(hass, lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    form = await _fix(client, issue_id, {"next_step_id": "add_spool"})
    # The tray reported its material: nobody is asked for it.
    assert [field["name"] for field in form["data_schema"]] == ["name", "net_weight_grams", "remaining_grams"]
    answer = {"net_weight_grams": 1000, "remaining_grams": 800}
    for name in ("", "x" * 201):
        refused = await _body(
            await client.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={"name": name, **answer}),
            200,
        )
        assert refused["errors"] == {"name": "invalid_value"}
        form = refused
    assert farm.runtime_data.production.books.spools == {}
    done = await _body(
        await client.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={**answer, "name": " Black "}),
        200,
    )
    assert done["type"] == "create_entry"
    (spool,) = farm.runtime_data.production.books.spools.values()
    assert (spool.name, spool.material, spool.tray) == ("Black", "PLA", 1)


async def test_prints_from_an_ams_ht_and_the_external_holder_are_deducted_there(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    serial = sim_printer["serial"]
    production = farm.runtime_data.production
    jobs = farm.runtime_data.jobs
    green = {"tray_type": "PLA", "tray_color": "00AE42FF", "remain": 80}
    # Only an AMS HT (unit 128, one slot: code 128), its spool known by its RFID.
    await simulator.set_ams_units(
        serial, [{"id": 128, "kind": "ams_ht", "trays": [{**green, "tray_uuid": UUID}]}]
    )
    ht = await _body(
        await client.post(f"{V1}/spools", json={"name": "HT", "material": "PLA", "tray_uuid": UUID}), 201
    )
    await wait_books(hass, farm, lambda: production.books.spools[ht["id"]].tray == 128)
    first = await _queue(client, project("10"))
    await _print(hass, client, farm, simulator, serial, first)
    assert jobs.store.jobs[first].ams_mapping == [128]
    await _body(await client.post("/api/print_farm/printers/1/bed-clear"), 200)
    # No AMS at all: the external holder (code 254) with its own spool.
    other = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
    await simulator.set_ams_units(serial, [])
    await simulator.set_tray(serial, 254, 0, {**green, "tray_uuid": other})
    external = await _body(
        await client.post(f"{V1}/spools", json={"name": "External", "material": "PLA", "tray_uuid": other}),
        201,
    )
    await wait_books(hass, farm, lambda: production.books.spools[external["id"]].tray == 254)
    second = await _queue(client, project("20"))
    await _print(hass, client, farm, simulator, serial, second)
    assert jobs.store.jobs[second].ams_mapping == [254]
    spools = production.books.spools
    assert [(use["tray"], use["spool_id"]) for use in jobs.store.jobs[second].filament_use or []] == [
        (254, external["id"])
    ]
    assert (spools[ht["id"]].remaining_grams, spools[external["id"]].remaining_grams) == (990, 980)
