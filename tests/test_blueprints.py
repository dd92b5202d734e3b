"""The blueprints in blueprints/automation/print_farm/, each loaded as a user would and run by the real events."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
import re
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import automation
from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import CoreState, HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events, async_fire_time_changed

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.rules.settings import JOB_PROCESSING
from simulator.control import SimulatorControl

from .helpers import (
    GCODE,
    drive,
    ejection_entry,
    finish_and_cool,
    placed_spool,
    project,
    queue_file,
    queue_job,
    setup_ejection,
    setup_farm,
    start_one,
    wait_until,
)

BLUEPRINTS = Path(__file__).resolve().parents[1] / "blueprints" / "automation" / "print_farm"
API = "/api/print_farm"


async def use_blueprint(hass: HomeAssistant, name: str, inputs: dict[str, Any]) -> None:
    """Copy the blueprint where Home Assistant looks for it, and create an automation from it."""
    target = Path(hass.config.path("blueprints", "automation", "print_farm"))

    def copy() -> None:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(BLUEPRINTS / name, target / name)

    await hass.async_add_executor_job(copy)
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: {
                "alias": name.removesuffix(".yaml"),
                "use_blueprint": {"path": f"print_farm/{name}", "input": inputs},
            }
        },
    )
    await hass.async_block_till_done()
    state = hass.states.get(f"automation.{name.removesuffix('.yaml')}")
    assert state is not None  # the blueprint and its inputs are valid
    assert state.state == "on"


class NotifySink:
    """A notify action (`notify.phone`) that keeps what it was called with, and wakes who waits for it."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.calls: list[ServiceCall] = []
        self._called = asyncio.Event()
        hass.services.async_register("notify", "phone", self._handle)

    async def _handle(self, call: ServiceCall) -> None:
        self.calls.append(call)
        self._called.set()

    async def wait_for(self, count: int) -> list[tuple[str, str, dict[str, Any]]]:
        """Wait until the action was called `count` times; what it was sent."""
        async with asyncio.timeout(10):
            while len(self.calls) < count:
                await self._called.wait()
                self._called.clear()
        return _sent(self.calls)


def _sent(calls: list[Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(call.data["title"], call.data["message"], call.data.get("data", {})) for call in calls]


async def test_notify_when_a_plate_waits_a_job_completes_and_one_fails(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """A printer without an OttoEject: the plate waits (with the camera's still), the job completes, one fails."""
    farm = await setup_farm(hass, sim_printer, names=["Bench"])
    hass.config.allowlist_external_dirs = {hass.config.path("www")}  # Home Assistant's default
    # The user renamed the camera's entity: the blueprint finds it on the printer's device all the same.
    er.async_get(hass).async_update_entity("camera.bench_camera", new_entity_id="camera.workshop_webcam")
    await hass.async_block_till_done()
    assert hass.states.get("camera.workshop_webcam") is not None
    notify = NotifySink(hass)
    stills = Path(hass.config.path("www", "print_farm"))
    await use_blueprint(
        hass,
        "notify_job_ended.yaml",
        {"notify_action": "notify.phone", "plate_waits": True, "snapshot_folder": str(stills)},
    )
    client = await hass_client()
    serial = sim_printer["serial"]
    printer = farm.runtime_data.printer_by_id(1)
    first = await queue_job(client, "cube.gcode", GCODE)
    assert (await client.post(f"{API}/print-jobs/{first}/start")).status == 202
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    await simulator.advance(serial, 3600)
    await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[first].stage == "awaiting_removal")
    ((title, message, data),) = await notify.wait_for(1)
    assert (title, message) == ("Bench", "cube.gcode is printed: its plate waits on the bed.")
    # Served without a login under /local: its name ends in a random token nobody can guess.
    waits = _still(data, f"job_{first}_plate_waits_")
    still = stills / waits
    assert (await hass.async_add_executor_job(still.read_bytes))[:2] == b"\xff\xd8"  # the printer's JPEG

    assert (await client.post(f"{API}/printers/1/bed-clear")).status == 200
    title, message, data = (await notify.wait_for(2))[1]
    assert (title, message) == ("Bench", "cube.gcode is done.")
    assert _still(data, f"job_{first}_finished_") != waits.replace("plate_waits", "finished")

    second = await queue_job(client, "cube.gcode", GCODE)
    assert (await client.post(f"{API}/print-jobs/{second}/start")).status == 202
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    await simulator.fail(serial, 117473282)
    title, message, data = (await notify.wait_for(3))[2]
    assert (title, message) == ("Bench", "cube.gcode failed (error 07008002).")
    assert await hass.async_add_executor_job((stills / _still(data, f"job_{second}_failed_")).exists)


def _still(data: dict[str, Any], prefix: str) -> str:
    """The still's file name the notification links to: the prefix, 24 random digits."""
    assert set(data) == {"image"}
    match = re.fullmatch(rf"/local/print_farm/({prefix}\d{{24}}\.jpg)", data["image"])
    assert match is not None, data
    return match[1]


async def test_notify_names_the_shelf_an_ottoeject_stored_the_plate_on(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    ejector = await simulator.add_ottoeject(printers=["P1"], slots=4, macro_seconds=20)
    try:
        entry = ejection_entry([(sim_printer, "P1")], ejector, shelves=4)
        await setup_ejection(hass, entry, empty_plates=[2, 3])
        # A printer without a camera (its entity removed): the still is asked for, but nothing is attached.
        registry = er.async_get(hass)
        camera = registry.async_get_entity_id("camera", DOMAIN, f"{sim_printer['serial']}_camera")
        assert camera is not None
        registry.async_remove(camera)
        await hass.async_block_till_done()
        notify = NotifySink(hass)
        await use_blueprint(hass, "notify_job_ended.yaml", {"notify_action": "notify.phone"})
        job = await start_one(hass, hass_client, entry)
        await finish_and_cool(hass, simulator, sim_printer["serial"], job)
        await drive(hass, simulator, ejector["id"], lambda: job.status == "COMPLETED")
        # The rack is named as the user named it ("Rack" in this entry).
        assert await notify.wait_for(1) == [
            ("Printer 1", "cube.gcode is done, stored on shelf 1 of Rack.", {})
        ]
    finally:
        await simulator.remove_ottoeject(ejector["id"])


async def test_hold_the_queue_in_quiet_hours_and_while_the_door_is_open(
    hass: HomeAssistant, socket_enabled: None, freezer: FrozenDateTimeFactory
) -> None:
    noon = dt_util.as_local(datetime(2026, 12, 3, 12, 0, tzinfo=dt_util.get_default_time_zone()))
    freezer.move_to(noon)
    farm = await setup_farm(hass)
    switch = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{farm.entry_id}_{JOB_PROCESSING}")
    assert switch is not None
    hass.states.async_set("binary_sensor.enclosure_door", "off")
    await use_blueprint(
        hass,
        "hold_queue.yaml",
        {
            "job_processing": switch,
            "quiet_start": "22:00:00",
            "quiet_end": "07:00:00",
            "doors": ["binary_sensor.enclosure_door"],
        },
    )

    def processing() -> bool:
        return bool(farm.runtime_data.settings[JOB_PROCESSING])

    async def at(moment: datetime) -> None:
        freezer.move_to(moment)
        async_fire_time_changed(hass, moment)
        await hass.async_block_till_done()

    async def door(state: str) -> None:
        hass.states.async_set("binary_sensor.enclosure_door", state)
        await hass.async_block_till_done()

    assert processing()
    await door("on")
    assert not processing()
    assert hass.states.get(switch).state == "off"
    await door("off")
    assert processing()
    await at(noon.replace(hour=22))
    assert not processing()
    await door("on")
    await door("off")  # closed again, but still quiet
    assert not processing()
    await at(noon.replace(hour=7) + timedelta(days=1))
    assert processing()
    assert hass.states.get(switch).state == "on"
    # Its time triggers go with it.
    await hass.services.async_call(
        automation.DOMAIN, "turn_off", {"entity_id": "automation.hold_queue"}, blocking=True
    )


async def test_warn_when_the_queue_needs_more_filament_than_is_loaded(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    farm = await setup_farm(hass, sim_printer)
    client = await hass_client()
    await placed_spool(hass, client, farm, simulator, sim_printer["serial"], remaining_grams=180)
    notify = NotifySink(hass)
    await use_blueprint(hass, "filament_short.yaml", {"notify_action": "notify.phone"})
    first = await queue_file(client, project("150"))
    await hass.async_block_till_done()
    assert notify.calls == []  # 150 g of the 180 g placed
    second = await queue_file(client, project("160"))
    assert await notify.wait_for(1) == [
        (
            "Print Farm: PLA runs short",
            f"The queued jobs {first}, {second} need 310.0 g of PLA; the placed spools hold 180.0 g. "
            "Load more before they start.",
            {},
        )
    ]


async def test_hold_the_queue_in_quiet_hours_only(
    hass: HomeAssistant, socket_enabled: None, freezer: FrozenDateTimeFactory
) -> None:
    """No door chosen (the input's default): the quiet hours alone hold the queue."""
    evening = dt_util.as_local(datetime(2026, 12, 3, 20, 0, tzinfo=dt_util.get_default_time_zone()))
    freezer.move_to(evening)
    farm = await setup_farm(hass)
    switch = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{farm.entry_id}_{JOB_PROCESSING}")
    await use_blueprint(
        hass,
        "hold_queue.yaml",
        {"job_processing": switch, "quiet_start": "21:30:00", "quiet_end": "06:00:00"},
    )
    moment = evening.replace(hour=21, minute=30)
    freezer.move_to(moment)
    async_fire_time_changed(hass, moment)
    await hass.async_block_till_done()
    assert not farm.runtime_data.settings[JOB_PROCESSING]
    await hass.services.async_call(
        automation.DOMAIN, "turn_off", {"entity_id": "automation.hold_queue"}, blocking=True
    )


async def test_hold_the_queue_ignores_attribute_updates_and_a_door_gone_unavailable(
    hass: HomeAssistant, socket_enabled: None, freezer: FrozenDateTimeFactory
) -> None:
    """Only a door's opening or closing counts: not its attributes changing, not its sensor dropping out."""
    noon = dt_util.as_local(datetime(2026, 12, 3, 12, 0, tzinfo=dt_util.get_default_time_zone()))
    freezer.move_to(noon)
    farm = await setup_farm(hass)
    switch = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{farm.entry_id}_{JOB_PROCESSING}")
    assert switch is not None
    door = "binary_sensor.enclosure_door"
    hass.states.async_set(door, "off", {"battery": 90})
    await use_blueprint(
        hass,
        "hold_queue.yaml",
        {"job_processing": switch, "quiet_start": "22:00:00", "quiet_end": "07:00:00", "doors": [door]},
    )

    def processing() -> bool:
        return bool(farm.runtime_data.settings[JOB_PROCESSING])

    # A person turns job processing off; the closed door's battery level changes: it stays off.
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    hass.states.async_set(door, "off", {"battery": 89})
    await hass.async_block_till_done()
    assert not processing()
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    # The door opens, then its sensor drops out: not "closed", the queue stays held.
    hass.states.async_set(door, "on", {"battery": 89})
    await hass.async_block_till_done()
    assert not processing()
    hass.states.async_set(door, "unavailable")
    await hass.async_block_till_done()
    assert not processing()
    # The quiet hours end while the door's state is not known: still held.
    moment = noon.replace(hour=7) + timedelta(days=1)
    freezer.move_to(moment)
    async_fire_time_changed(hass, moment)
    await hass.async_block_till_done()
    assert not processing()
    # The sensor is back and says closed: the queue goes on.
    hass.states.async_set(door, "off", {"battery": 88})
    await hass.async_block_till_done()
    assert processing()
    await hass.services.async_call(
        automation.DOMAIN, "turn_off", {"entity_id": "automation.hold_queue"}, blocking=True
    )


@pytest.mark.parametrize(("hour", "held"), [(12, False), (23, True)])
async def test_hold_the_queue_on_start_only_turns_it_off(
    hass: HomeAssistant, socket_enabled: None, freezer: FrozenDateTimeFactory, hour: int, held: bool
) -> None:
    """Home Assistant starts: in quiet hours the switch goes off; outside them a switch a person turned off stays off."""
    moment = dt_util.as_local(datetime(2026, 12, 3, hour, 0, tzinfo=dt_util.get_default_time_zone()))
    freezer.move_to(moment)
    farm = await setup_farm(hass)
    switch = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{farm.entry_id}_{JOB_PROCESSING}")
    assert switch is not None
    turned = async_capture_events(hass, "call_service")
    if not held:
        await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    # The automation is set up while Home Assistant starts, and its start trigger fires once it has.
    hass.set_state(CoreState.not_running)
    await use_blueprint(
        hass,
        "hold_queue.yaml",
        {"job_processing": switch, "quiet_start": "22:00:00", "quiet_end": "07:00:00"},
    )
    hass.set_state(CoreState.running)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
    await hass.async_block_till_done()
    assert not farm.runtime_data.settings[JOB_PROCESSING]
    # It ran: off in quiet hours; outside them it called nothing.
    assert [(event.data["domain"], event.data["service"]) for event in turned] == [("switch", "turn_off")]
    await hass.services.async_call(
        automation.DOMAIN, "turn_off", {"entity_id": "automation.hold_queue"}, blocking=True
    )
