"""A printer's device triggers: listed for the printer, each run once per print started, finished, failed, error."""

from __future__ import annotations

from typing import Any

from homeassistant.components import automation
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_capture_events, async_mock_service

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl

from .helpers import (
    EJECTION_GCODE,
    GCODE,
    drive,
    ejection_entry,
    finish_and_cool,
    paused,
    queue_job,
    set_templates,
    setup_ejection,
    setup_farm,
    start_one,
    wait_until,
)

API = "/api/print_farm"
JOBS = f"{API}/print-jobs"
TYPES = ["print_started", "print_finished", "print_failed", "printer_error"]


def _automation(device_id: str, trigger_type: str) -> dict[str, Any]:
    return {
        "alias": f"{trigger_type} {device_id}",
        "triggers": [{"trigger": "device", "domain": DOMAIN, "device_id": device_id, "type": trigger_type}],
        "actions": [
            {
                "action": "test.automation",
                "data": {"type": trigger_type, "device": device_id, "what": "{{ trigger.event.event_type }}"},
            }
        ],
    }


async def test_printer_triggers(
    hass: HomeAssistant,
    hass_client: Any,
    hass_ws_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """Start, finish, clear, start, fail, an HMS error on one printer; the other printer's automations stay still."""
    other = await simulator.add_printer(model="P1S")
    try:
        farm = await setup_farm(hass, sim_printer, other, names=["Bench", "Corner"])
        registry = dr.async_get(hass)
        bench = registry.async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
        corner = registry.async_get_device(identifiers={(DOMAIN, other["serial"])})
        assert bench is not None
        assert corner is not None
        farm_device = next(
            device
            for device in dr.async_entries_for_config_entry(registry, farm.entry_id)
            if device.id not in (bench.id, corner.id) and device.via_device_id is None
        )

        assert await async_setup_component(hass, "device_automation", {})
        ws = await hass_ws_client()
        await ws.send_json({"id": 1, "type": "device_automation/trigger/list", "device_id": bench.id})
        answer = await ws.receive_json()
        assert answer["success"], answer
        assert sorted(
            (trigger["type"], trigger["device_id"], trigger["domain"], trigger["platform"])
            for trigger in answer["result"]
            if trigger["domain"] == DOMAIN  # the entities' own triggers (state changes) come too
        ) == sorted((trigger_type, bench.id, DOMAIN, "device") for trigger_type in TYPES)
        await ws.send_json({"id": 2, "type": "device_automation/trigger/list", "device_id": farm_device.id})
        answer = await ws.receive_json()
        assert [trigger for trigger in answer["result"] if trigger["domain"] == DOMAIN] == []

        calls = async_mock_service(hass, "test", "automation")
        assert await async_setup_component(
            hass,
            automation.DOMAIN,
            {
                automation.DOMAIN: [
                    _automation(device.id, trigger_type)
                    for device in (bench, corner)
                    for trigger_type in TYPES
                ]
            },
        )
        client = await hass_client()
        printer = farm.runtime_data.printer_by_serial(sim_printer["serial"])
        assert printer is not None
        assert printer.printer_id == 1
        serial = sim_printer["serial"]

        def seen() -> list[tuple[str, str, str]]:
            return [(call.data["type"], call.data["device"], call.data["what"]) for call in calls]

        first = await queue_job(client, "cube.gcode", GCODE)
        assert (await client.post(f"{API}/print-jobs/{first}/start")).status == 202
        await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
        await simulator.advance(serial, 3600)
        await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[first].stage == "awaiting_removal")
        await simulator.advance(serial, 60)  # more reports of the finished print: nothing more
        await hass.async_block_till_done()
        assert seen() == [
            ("print_started", bench.id, "print_farm_job_started"),
            ("print_finished", bench.id, "print_farm_workflow_awaiting_removal"),
        ]
        assert (await client.post(f"{API}/printers/1/bed-clear")).status == 200  # the job completes
        await hass.async_block_till_done()
        assert len(calls) == 2

        second = await queue_job(client, "cube.gcode", GCODE)
        assert (await client.post(f"{API}/print-jobs/{second}/start")).status == 202
        await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
        await simulator.fail(serial, 117473282)
        await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[second].status == "FAILED")
        await hass.async_block_till_done()
        # The failure's own print error is an error the printer reported.
        assert sorted(seen()[2:]) == [
            ("print_failed", bench.id, "print_farm_job_failed"),
            ("print_started", bench.id, "print_farm_job_started"),
            ("printer_error", bench.id, "print_farm_printer_error"),
        ]
        await simulator.set_hms(serial, [{"attr": 0x03000100, "code": 0x00010007}])
        await wait_until(hass, lambda: len(printer.client.fields["errors"] or ()) == 2)
        await simulator.advance(serial, 30)  # the error stays: no second run
        await hass.async_block_till_done()
        assert seen()[5:] == [("printer_error", bench.id, "print_farm_printer_error")]
    finally:
        await simulator.remove_printer(other["serial"])


async def test_finished_once_when_an_aborted_ejection_brings_the_job_back(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """A plate's ejection stopped and aborted by a person: the job awaits removal again, the print finished once."""
    ejector = await simulator.add_ottoeject(printers=["P1"], slots=4, macro_seconds=20)
    try:
        entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
        await setup_ejection(hass, entry, empty_plates=[2, 3])
        # A macro the OttoEject does not have: the workflow stops at eject for a person.
        await set_templates(hass, entry, ejector, eject="EJECT_TO_{position}")
        device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
        assert device is not None
        calls = async_mock_service(hass, "test", "automation")
        assert await async_setup_component(
            hass, automation.DOMAIN, {automation.DOMAIN: [_automation(device.id, "print_finished")]}
        )
        stages = async_capture_events(hass, "print_farm_workflow_awaiting_removal")
        job = await start_one(hass, hass_client, entry)
        await finish_and_cool(hass, simulator, sim_printer["serial"], job)
        assert [call.data["type"] for call in calls] == ["print_finished"]
        # The automation turned off and on again (as a reload or a restart does): nothing in memory.
        for service in ("turn_off", "turn_on"):
            await hass.services.async_call(
                automation.DOMAIN,
                service,
                {"entity_id": "automation.print_finished_" + device.id},
                blocking=True,
            )
        await drive(hass, simulator, ejector["id"], lambda: paused(job))
        client = await hass_client()
        assert (await client.post(f"{JOBS}/{job.id}/workflow/abort")).status == 200
        await wait_until(hass, lambda: job.stage == "awaiting_removal")
        assert (job.status, [event.data["job_id"] for event in stages]) == ("PRINTING", [job.id, job.id])
        assert [call.data["type"] for call in calls] == ["print_finished"]
    finally:
        await simulator.remove_ottoeject(ejector["id"])


async def test_started_fires_for_a_job_for_any_printer(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """A job for any printer names no device while queued; when it starts on the printer, that printer's trigger fires."""
    farm = await setup_farm(hass, sim_printer, names=["Bench"])
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
    assert device is not None
    calls = async_mock_service(hass, "test", "automation")
    assert await async_setup_component(
        hass, automation.DOMAIN, {automation.DOMAIN: [_automation(device.id, "print_started")]}
    )
    client = await hass_client()
    jobs = farm.runtime_data.jobs
    assert (await client.post(f"{API}/printers/1/bed-clear")).status == 200
    anywhere = await queue_job(client, "cube.gcode", EJECTION_GCODE, printer_id=None, auto_start=True)
    await wait_until(hass, lambda: jobs.store.jobs[anywhere].status == "PRINTING")
    await hass.async_block_till_done()
    assert [(call.data["type"], call.data["device"]) for call in calls] == [("print_started", device.id)]


async def test_started_never_fires_for_a_print_that_ended_unseen(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """A print found already ended gets a job (awaiting removal): no job_started event, no "print started"."""
    ejector = await simulator.add_ottoeject(printers=["P1"], slots=4, macro_seconds=20)
    try:
        entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
        # Every shelf holds an empty plate: the plate found stays on the printer.
        farm = await setup_ejection(hass, entry, empty_plates=[1, 2, 3, 4])
        device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
        assert device is not None
        calls = async_mock_service(hass, "test", "automation")
        assert await async_setup_component(
            hass,
            automation.DOMAIN,
            {
                automation.DOMAIN: [
                    _automation(device.id, "print_started"),
                    _automation(device.id, "print_finished"),
                ]
            },
        )
        started = async_capture_events(hass, "print_farm_job_started")
        created = async_capture_events(hass, "print_farm_job_auto_created")
        printer = farm.printer_by_id(1)
        serial = sim_printer["serial"]
        # A person prints at the printer while Home Assistant cannot see it; the print ends unseen.
        await simulator.offline(serial)
        await wait_until(hass, lambda: not printer.client.online)
        await simulator.put_file(serial, "bracket.gcode", EJECTION_GCODE)
        await simulator.start_print(serial, "bracket.gcode")
        await simulator.advance(serial, 1500)
        await simulator.online(serial)
        await wait_until(hass, lambda: len(farm.jobs.store.jobs) == 1, timeout=20)
        (found,) = farm.jobs.store.jobs.values()
        await hass.async_block_till_done()
        assert (found.customer_info or {}).get("ended_unseen") is True
        assert (found.status, found.stage) == ("PRINTING", "awaiting_removal")
        assert [(event.data["id"], event.data["device_id"]) for event in created] == [(found.id, device.id)]
        assert started == []
        # The print is done and its plate waits: that much did happen.
        assert [call.data["type"] for call in calls] == ["print_finished"]
        # Even a start event for a job that is not printing (as an older version fired) runs nothing.
        hass.bus.async_fire(
            "print_farm_job_started",
            {"job": {"id": found.id, "orchestration_status": "awaiting_removal"}, "device_id": device.id},
        )
        await hass.async_block_till_done()
        assert [call.data["type"] for call in calls] == ["print_finished"]
    finally:
        await simulator.remove_ottoeject(ejector["id"])


async def test_a_trigger_on_a_device_that_is_no_printer_is_refused(
    hass: HomeAssistant, sim_printer: dict[str, Any]
) -> None:
    """The farm's own device has no print to start: an automation with its trigger is invalid, not silent."""
    farm = await setup_farm(hass, sim_printer)
    registry = dr.async_get(hass)
    printer = registry.async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
    assert printer is not None
    farm_device = next(
        device
        for device in dr.async_entries_for_config_entry(registry, farm.entry_id)
        if device.id != printer.id and device.via_device_id is None
    )
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: [
                {**_automation(farm_device.id, "print_started"), "id": "farm"},
                {**_automation(printer.id, "print_started"), "id": "printer"},
            ]
        },
    )
    await hass.async_block_till_done()
    states = {state.attributes.get("id"): state.state for state in hass.states.async_all(automation.DOMAIN)}
    assert states == {"farm": "unavailable", "printer": "on"}
