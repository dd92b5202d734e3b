"""Voice: the farm's sentences through Home Assistant's default agent, and its intents as LLM tools.

The sentence file is installed by the farm's option (the options flow), the way a user would; every
question and command goes in as text through `conversation.async_converse` and comes out as the
spoken answer, with its effect seen on the simulated printer.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.components.conversation import async_converse
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    intent,
    issue_registry as ir,
    llm,
)
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.runtime.voice import MARKER, SOURCE
from simulator.control import SimulatorControl

from .helpers import V1, body_of, queue_job, setup_farm, start_one, wait_until

SENTENCES = Path("custom_sentences", "en", "print_farm.yaml")


async def _voice(hass: HomeAssistant, entry: MockConfigEntry, *, install: bool = True) -> None:
    """Assist's parts, then the farm's option "Install the voice sentences" set in its options flow."""
    for component in ("homeassistant", "intent", "conversation"):
        assert await async_setup_component(hass, component, {})
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], {**entry.options, "install_voice_sentences": install}
    )
    assert result["type"] == "create_entry", result
    await hass.async_block_till_done()


async def _say(hass: HomeAssistant, text: str, user: MockUser | None = None) -> tuple[str, str]:
    """What the default agent answers, and whether as an error; `user` None is a satellite (no user)."""
    result = await async_converse(hass, text, None, Context(user_id=user.id if user else None), language="en")
    response = result.response
    return response.response_type.value, response.speech["plain"]["speech"]


async def test_what_is_printing_and_pause(
    hass: HomeAssistant,
    hass_client: Any,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """A queued job prints; asked, the agent names printer, job and finish; admin and satellite command it, a user may not."""
    entry = await setup_farm(hass, sim_printer, names=["Bench"])
    await _voice(hass, entry)
    assert Path(hass.config.path(str(SENTENCES))).read_text(encoding="utf-8") == SOURCE.read_text(
        encoding="utf-8"
    )
    assert await _say(hass, "what is printing") == ("action_done", "Nothing is printing.")

    await start_one(hass, hass_client, entry)
    printer = next(iter(entry.runtime_data.printers.values()))
    await simulator.advance(sim_printer["serial"], 300)  # past the preparation
    reported = (await simulator.printer(sim_printer["serial"]))["state"]
    await wait_until(
        hass,
        lambda: (printer.client.fields["gcode_state"], printer.client.fields["remaining_time"])
        == ("RUNNING", reported["mc_remaining_time"]),
    )
    remaining = printer.client.fields["remaining_time"]
    assert remaining is not None
    before = dt_util.now()
    kind, answer = await _say(hass, "what is printing")
    finishes = {
        (moment + timedelta(minutes=remaining)).strftime("%H:%M") for moment in (before, dt_util.now())
    }
    assert kind == "action_done"
    assert answer.startswith("Bench is printing cube, ")
    assert answer.endswith(f"in {remaining} minutes.")
    assert answer.split("it will finish at ")[1][:5] in finishes
    assert (await _say(hass, "when will bench finish"))[1] == answer.removesuffix(".")

    # A user who is no administrator may ask, not command.
    refused = await _say(hass, "pause Bench", hass_read_only_user)
    assert refused == ("error", "Only an administrator may control the print farm.")
    assert (await simulator.printer(sim_printer["serial"]))["state"]["gcode_state"] == "RUNNING"

    assert await _say(hass, "pause Bench", hass_admin_user) == ("action_done", "Paused Bench.")
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] == "PAUSE")
    assert (await simulator.printer(sim_printer["serial"]))["state"]["gcode_state"] == "PAUSE"
    # A satellite has no user: the printer's exposure decides.
    assert await _say(hass, "resume the print on bench") == ("action_done", "Resumed Bench.")
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] == "RUNNING")


async def test_unexposed_printer_refused(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    """A printer none of whose entities is exposed to Assist cannot be paused by voice; questions still answer."""
    entry = await setup_farm(hass, sim_printer, names=["Bench"])
    await _voice(hass, entry)
    await start_one(hass, hass_client, entry)
    printer = next(iter(entry.runtime_data.printers.values()))
    await simulator.advance(sim_printer["serial"], 300)  # past the preparation
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] == "RUNNING")
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, sim_printer["serial"])})
    assert device is not None
    for entity in er.async_entries_for_device(er.async_get(hass), device.id):
        async_expose_entity(hass, "conversation", entity.entity_id, False)

    assert await _say(hass, "pause Bench") == ("error", "Bench is not exposed to the assistant.")
    assert (await simulator.printer(sim_printer["serial"]))["state"]["gcode_state"] == "RUNNING"
    assert (await _say(hass, "what is bench printing"))[1].startswith("Bench is printing cube, ")


async def test_filament_left(hass: HomeAssistant, hass_client: Any, sim_printer: dict[str, Any]) -> None:
    """The books' spools in grams, and the simulated AMS trays' percent, by material and by colour."""
    entry = await setup_farm(hass, sim_printer, names=["Bench"])
    await _voice(hass, entry)
    client = await hass_client()
    for spool in (
        {"name": "Green PLA", "material": "PLA", "color": "#00AE42", "remaining_grams": 400},
        {"name": "Black PLA", "material": "PLA", "color": "black", "remaining_grams": 350.5},
        {"name": "Red PETG", "material": "PETG", "color": "red", "remaining_grams": 900},
    ):
        await body_of(await client.post(f"{V1}/spools", json={"net_weight_grams": 1000, **spool}), 201)
    printer = next(iter(entry.runtime_data.printers.values()))
    await wait_until(hass, lambda: printer.client.fields["ams_units"] is not None)

    # The simulated AMS: white PLA, black PLA, PETG, green PLA, all full.
    assert await _say(hass, "how much PLA is left") == (
        "action_done",
        "750 grams of PLA left on 2 spool(s). Bench tray 1 has 100%; Bench tray 2 has 100%; Bench tray 4 has 100%.",
    )
    assert await _say(hass, "how much green PLA is left") == (
        "action_done",
        "400 grams of green PLA left on 1 spool(s). Bench tray 4 has 100%.",
    )
    assert (await _say(hass, "how much PETG do we have"))[1].startswith(
        "900 grams of PETG left on 1 spool(s)."
    )
    assert await _say(hass, "how much TPU is left") == ("action_done", "I know of no TPU.")


async def test_queue_questions_and_copies(
    hass: HomeAssistant,
    hass_client: Any,
    hass_admin_user: MockUser,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """What is next, start the queue (job processing back on), queue two more copies; anything wrong."""
    entry = await setup_farm(hass, sim_printer, names=["Bench"])
    await _voice(hass, entry)
    farm = entry.runtime_data
    await farm.async_update_settings({"job_processing_enabled": False})
    client = await hass_client()
    job_id = await queue_job(client, "bracket.gcode", b"G28\n", auto_start=True)
    await hass.async_block_till_done()

    kind, answer = await _say(hass, "what is next in the queue")
    assert kind == "action_done"
    assert answer.startswith("Next is bracket on Bench")
    assert await _say(hass, "queue 2 more copies of bracket", hass_admin_user) == (
        "action_done",
        "Queued 2 more of bracket on Bench.",
    )
    copies = [job for job in farm.jobs.store.queued() if job.id != job_id]
    assert [(job.print_item_id, job.printer_id, job.auto_start) for job in copies] == [
        (farm.jobs.store.jobs[job_id].print_item_id, 1, True)
    ] * 2

    assert await _say(hass, "start the queue", hass_admin_user) == (
        "action_done",
        "The queue is running; 3 job(s) queued.",
    )
    assert farm.settings["job_processing_enabled"] is True
    await wait_until(hass, lambda: farm.jobs.store.jobs[job_id].status == "PRINTING")
    assert await _say(hass, "is anything wrong") == ("action_done", "Nothing is wrong.")
    await simulator.set_hms(sim_printer["serial"], [{"attr": 0x03000100, "code": 0x00010007}])
    await wait_until(
        hass, lambda: bool(farm.printers and next(iter(farm.printers.values())).client.fields["errors"])
    )
    kind, answer = await _say(hass, "are there any problems")
    assert kind == "action_done"
    assert answer.startswith("Bench reports error 0300_0100_0001_0007: ")


async def test_intents_are_llm_tools(hass: HomeAssistant, sim_printer: dict[str, Any]) -> None:
    """The Assist API offers each farm intent as a tool with its description, and calling one answers."""
    entry = await setup_farm(hass, sim_printer, names=["Bench"])
    await _voice(hass, entry, install=False)
    context = llm.LLMContext(
        platform="test",
        context=Context(),
        user_prompt=None,
        language="en",
        assistant="conversation",
        device_id=None,
    )
    api = await llm.async_get_api(hass, "assist", context)
    tools = {tool.name: tool for tool in api.tools}
    for handler in intent.async_get(hass):
        if handler.intent_type.startswith("PrintFarm"):
            assert tools[handler.intent_type].description == handler.description
    assert {
        "PrintFarmStatus",
        "PrintFarmNextJob",
        "PrintFarmProblems",
        "PrintFarmFilament",
        "PrintFarmPausePrinter",
        "PrintFarmResumePrinter",
        "PrintFarmStartQueue",
        "PrintFarmQueueCopies",
    } <= set(tools)
    answer = await api.async_call_tool(
        llm.ToolInput(tool_name="PrintFarmStatus", tool_args={"printer": "bench"})
    )
    assert answer["speech"]["plain"]["speech"] == "Bench is not printing."  # type: ignore[index]
    refused = await api.async_call_tool(
        llm.ToolInput(tool_name="PrintFarmPausePrinter", tool_args={"printer": "Bench"})
    )
    assert refused["response_type"] == "error"
    assert refused["speech"]["plain"]["speech"] == "Bench is not printing."  # type: ignore[index]


async def test_sentence_file_installed_only_on_request(
    hass: HomeAssistant, sim_printer: dict[str, Any]
) -> None:
    """Off: nothing written and the agent does not know the sentences; on: written; a user's file is left alone."""
    entry = await setup_farm(hass, sim_printer, names=["Bench"])
    path = Path(hass.config.path(str(SENTENCES)))
    await _voice(hass, entry, install=False)
    assert not path.exists()
    assert (await _say(hass, "what is printing"))[0] == "error"

    await _voice(hass, entry)
    assert path.read_text(encoding="utf-8").startswith(MARKER)
    assert await _say(hass, "what is printing") == ("action_done", "Nothing is printing.")

    await _voice(hass, entry, install=False)  # turned off: our file goes, and the agent forgets it
    assert not path.exists()
    assert (await _say(hass, "what is printing"))[0] == "error"

    mine = "language: en\nintents: {}\n"
    path.write_text(mine, encoding="utf-8")
    await _voice(hass, entry)
    assert path.read_text(encoding="utf-8") == mine
    assert (DOMAIN, "voice_sentences_conflict") in ir.async_get(hass).issues
    await _voice(hass, entry, install=False)
    assert path.read_text(encoding="utf-8") == mine


async def test_every_sentence_form_reaches_its_intent(
    hass: HomeAssistant, sim_printer: dict[str, Any]
) -> None:
    """The shipped sentences' other forms, each answered by its own handler (an idle farm, a satellite)."""
    entry = await setup_farm(hass, sim_printer, names=["Bench"])
    await _voice(hass, entry)
    printer = next(iter(entry.runtime_data.printers.values()))
    await wait_until(hass, lambda: printer.client.fields["ams_units"] is not None)
    for text, answer in (
        ("what are the printers printing", "Nothing is printing."),
        ("when will the prints be done", "Nothing is printing."),
        ("what's Bench printing", "Bench is not printing."),
        ("what's next in the queue", "The queue is empty."),
        ("what prints next", "The queue is empty."),
        ("does anything need attention", "Nothing is wrong."),
        ("how much green filament is left", "Bench tray 4 has 100%."),
        ("how much gray PLA do we have", "I know of no grey PLA."),
        ("pause the print on Bench", "Bench is not printing."),
        ("continue Bench", "Bench is not paused."),
        ("queue another copy of nothing", "There is no print job called nothing."),
        ("start the print queue", "The queue is running; 0 job(s) queued."),
    ):
        assert (await _say(hass, text))[1] == answer, text
