"""The simulated printers' reports have the shape of real printers' (../shared/fixtures/bambu).

Structural: every key a real message of the model family has, at the levels the integration reads
(print.*, print.ams.*, print.ams.ams[].*, print.ams.ams[].tray[].*, print.vt_tray.*, info.*,
info.module[].*), is in the simulator's message with the same JSON type, unless listed below.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from pathlib import Path
import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import pytest

from simulator.control import SimulatorControl

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "bambu"
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason="../shared/fixtures/bambu is not beside the checkout"
)
TIMEOUT = 15.0
FAMILY = {"P1P": "P1", "P1S": "P1", "X1C": "X1"}
REAL_FULL = {"P1": ("P1P.json", "MOCK-P1PNOAMS.json"), "X1": ("MOCK-X1CMULTIAMS.json",)}
# What real printers send and the simulator leaves out on purpose, by family: path -> reason.
LEFT_OUT: dict[str, dict[str, str]] = {
    "P1": {
        "print.chamber_temper": "a P1 has no chamber sensor: the constant it sends (5) is no reading, and "
        "the integration offers a chamber temperature for any printer whose reports carry one",
    },
    "X1": {},
}
# Keys of the real P1S delta no simulated delta carries: the simulated Wi-Fi signal never changes
# (the full report has it, with the real type); a varying one would cost every client a state write.
DELTA_LEFT_OUT = {"wifi_signal"}
GCODE = b"; HEADER_BLOCK_START\n; total estimated time: 10m 0s\n; total layer number: 20\n; HEADER_BLOCK_END\nG28\n"


def json_type(value: Any) -> str:
    """The JSON type of a decoded value (int and float are both numbers)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def differences(real: dict[str, Any], simulated: dict[str, Any], path: str) -> set[str]:
    """Each key of real missing from simulated, or of another JSON type there."""
    found = set()
    for key, value in real.items():
        if key not in simulated:
            found.add(f"{path}.{key} missing")
        elif json_type(value) != json_type(simulated[key]):
            found.add(f"{path}.{key}: real {json_type(value)}, simulated {json_type(simulated[key])}")
    return found


def full_report_differences(real: dict[str, Any], simulated: dict[str, Any]) -> set[str]:
    """Compare a push_status full report at every level the integration reads."""
    found = differences(real, simulated, "print")
    real_ams, simulated_ams = real.get("ams", {}), simulated.get("ams", {})
    found |= differences(real_ams, simulated_ams, "print.ams")
    simulated_units = simulated_ams.get("ams", [])
    simulated_trays = [tray for unit in simulated_units for tray in unit.get("tray", [])]
    assert simulated_trays, "the simulated AMS must have units with trays to compare"
    for unit in real_ams.get("ams", []):
        for simulated_unit in simulated_units:
            found |= differences(unit, simulated_unit, "print.ams.ams[]")
        for tray in unit.get("tray", []):
            if not tray.get("tray_type"):
                continue  # an empty tray carries its id only
            for simulated_tray in simulated_trays:
                found |= differences(tray, simulated_tray, "print.ams.ams[].tray[]")
    if "vt_tray" in real:
        found |= differences(real["vt_tray"], simulated.get("vt_tray", {}), "print.vt_tray")
    return found


def version_differences(real: dict[str, Any], simulated: dict[str, Any]) -> set[str]:
    """Compare get_version answers: the envelope and every module.

    A real module is compared with the simulated module of the same name; one the simulator has no
    counterpart for (an ESP32, a second AMS) only on the keys every real module of the answer has.
    """
    found = differences(real, simulated, "info")
    modules = real.get("module", [])
    simulated_modules = {module["name"]: module for module in simulated.get("module", [])}
    common = set.intersection(*(set(module) for module in modules))
    for module in modules:
        if (twin := simulated_modules.get(module["name"])) is not None:
            found |= differences(module, twin, "info.module[]")
        else:
            for other in simulated_modules.values():
                found |= differences({key: module[key] for key in common}, other, "info.module[]")
    return found


def real_messages(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The full report and the get_version answer of a fixture, unwrapped."""
    document = json.loads((FIXTURES / name).read_text())
    report = document.get("push_all") or document["pushall"]
    version = document["get_version"]
    return report.get("print", report), version.get("info", version)


class ReportTopic:
    """A paho client on a simulated printer's report topic."""

    def __init__(self, printer: dict[str, Any]) -> None:
        self.serial = printer["serial"]
        self.printer = printer
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received: list[dict[str, Any]] = []  # every message, also those next() went past
        loop = asyncio.get_running_loop()
        subscribed = asyncio.Event()
        self.subscribed = subscribed
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.username_pw_set("bblp", printer["access_code"])
        self.client.tls_set_context(context)
        self.client.on_connect = lambda client, *_: client.subscribe(f"device/{self.serial}/report")
        self.client.on_subscribe = lambda *_: loop.call_soon_threadsafe(subscribed.set)
        self.client.on_message = lambda _, __, message: loop.call_soon_threadsafe(
            self._receive, json.loads(message.payload)
        )

    def _receive(self, message: dict[str, Any]) -> None:
        self.received.append(message)
        self.messages.put_nowait(message)

    async def connect(self) -> None:
        self.client.connect_async(self.printer["host"], self.printer["mqtt_port"])
        self.client.loop_start()
        async with asyncio.timeout(TIMEOUT):
            await self.subscribed.wait()

    async def close(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

    def request(self, payload: dict[str, Any]) -> None:
        self.client.publish(f"device/{self.serial}/request", json.dumps(payload))

    async def next(self, kind: str, command: str) -> dict[str, Any]:
        """The next `kind` object (print, info) carrying command."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                body = (await self.messages.get()).get(kind)
                if isinstance(body, dict) and body.get("command") == command:
                    return body

    def bodies(self, kind: str, command: str) -> list[dict[str, Any]]:
        """Every `kind` object carrying command received so far."""
        found = (message.get(kind) for message in self.received)
        return [body for body in found if isinstance(body, dict) and body.get("command") == command]


@pytest.fixture(params=sorted(FAMILY))
async def topic(request: pytest.FixtureRequest, control: SimulatorControl) -> AsyncIterator[ReportTopic]:
    """A fresh simulated printer of each compared model, with a client on its report topic."""
    printer = await control.add_printer(request.param)
    client = ReportTopic(printer)
    try:
        await client.connect()
        yield client
    finally:
        await client.close()
        await control.remove_printer(printer["serial"])


async def test_full_report_and_version_have_the_real_shape(topic: ReportTopic) -> None:
    family = FAMILY[topic.printer["model"]]
    topic.request({"pushing": {"sequence_id": "1", "command": "pushall"}})
    full = await topic.next("print", "push_status")
    topic.request({"info": {"sequence_id": "2", "command": "get_version"}})
    version = await topic.next("info", "get_version")
    assert full["msg"] == 0  # a full report, as the integration tells them apart
    found: set[str] = set()
    for name in REAL_FULL[family]:
        real_full, real_version = real_messages(name)
        found |= full_report_differences(real_full, full) | version_differences(real_version, version)
    # Exactly the keys left out on purpose differ: a list entry goes when the simulator gains the key.
    assert found == {f"{path} missing" for path in LEFT_OUT[family]}


@pytest.mark.parametrize("topic", ["P1S"], indirect=True)
async def test_deltas_have_the_real_shape(control: SimulatorControl, topic: ReportTopic) -> None:
    real_full, _ = real_messages("P1P.json")
    real_delta = json.loads((FIXTURES / "p1s_delta_push_status.json").read_text())["print"]
    real_cancel = json.loads((FIXTURES / "cancel_print_error_delta.json").read_text())["print"]
    topic.request({"pushing": {"sequence_id": "1", "command": "pushall"}})
    await topic.next("print", "push_status")
    topic.received.clear()  # from here on, deltas only
    await control.put_file(topic.serial, "shape.gcode", GCODE)
    await control.start_print(topic.serial, "shape.gcode")
    await control.advance(topic.serial, 400)  # through PREPARE into RUNNING, a report every 10 s
    topic.request({"print": {"sequence_id": "3", "command": "stop", "param": ""}})
    await topic.next("print", "stop")
    topic.request({"info": {"sequence_id": "4", "command": "get_version"}})
    await topic.next("info", "get_version")  # every report of the run has arrived before it
    deltas = topic.bodies("print", "push_status")
    assert len(deltas) > 30
    seen: dict[str, set[str]] = {}
    for delta in deltas:
        assert (delta["msg"], json_type(delta["sequence_id"])) == (real_delta["msg"], "string")
        for key, value in delta.items():
            seen.setdefault(key, set()).add(json_type(value))
    # Every key the real deltas carry comes in simulated deltas too, always with the real type...
    for real in (real_delta, real_cancel):
        for key, value in real.items():
            if key not in DELTA_LEFT_OUT:
                assert seen.get(key) == {json_type(value)}, key
    assert json_type(real_full["wifi_signal"]) == json_type(real_delta["wifi_signal"])
    # ...and every key of a simulated delta has the type the real full report gives it.
    for key, types in seen.items():
        if key in real_full:
            assert types == {json_type(real_full[key])}, key
