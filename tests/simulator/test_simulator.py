"""The simulated farm speaks the printers' protocols: MQTT over TLS, implicit FTPS with session reuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import ftplib
import hashlib
import io
import json
from pathlib import Path
import socket
import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import pytest

from simulator.control import SimulatorControl, SimulatorError, start_simulator

TIMEOUT = 15.0
REQUIRED_KEYS = {
    "gcode_state", "mc_print_stage", "mc_percent", "mc_remaining_time", "layer_num", "total_layer_num",
    "gcode_file", "subtask_name", "gcode_start_time", "stg", "stg_cur", "print_type", "nozzle_temper",
    "nozzle_target_temper", "bed_temper", "bed_target_temper", "wifi_signal", "print_error", "hms",
    "nozzle_diameter", "nozzle_type", "ams", "vt_tray", "spd_lvl", "lights_report", "sdcard",
}  # fmt: skip
GCODE = b"; HEADER_BLOCK_START\n; total estimated time: 10m 0s\n; total layer number: 20\n; HEADER_BLOCK_END\nG28\n"


def _tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Reports:
    """A paho client on a simulated printer's report topic, handing messages to the event loop."""

    def __init__(self, printer: dict[str, Any], access_code: str | None = None) -> None:
        self.printer = printer
        self.serial = printer["serial"]
        self.merged: dict[str, Any] = {}  # push_status reports merged, as a client keeps them
        self.history: list[tuple[str, int]] = []  # (gcode_state, stg_cur) after each push_status
        self._loop = asyncio.get_running_loop()
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._connected: asyncio.Future[Any] = self._loop.create_future()
        self._subscribed = asyncio.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.username_pw_set("bblp", access_code or printer["access_code"])
        self.client.tls_set_context(_tls())
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, _: Any, __: Any, reason: Any, ___: Any) -> None:
        if reason.is_failure:
            client.disconnect()  # no reconnection attempts: the test wants the refusal
        else:
            client.subscribe(f"device/{self.serial}/report")

        def settle() -> None:
            if not self._connected.done():
                self._connected.set_result(reason)

        self._loop.call_soon_threadsafe(settle)

    def _on_subscribe(self, *_: Any) -> None:
        self._loop.call_soon_threadsafe(self._subscribed.set)

    def _on_message(self, _: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
        # paho calls back on its own thread; the test reads on the event loop.
        self._loop.call_soon_threadsafe(self._messages.put_nowait, json.loads(message.payload))

    async def connect(self) -> Any:
        """Connect and return the broker's reason code; on success, return once subscribed."""
        self.client.connect_async(self.printer["host"], self.printer["mqtt_port"])
        self.client.loop_start()
        async with asyncio.timeout(TIMEOUT):
            reason = await self._connected
            if not reason.is_failure:
                await self._subscribed.wait()
        return reason

    async def close(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

    def request(self, payload: dict[str, Any]) -> None:
        self.client.publish(f"device/{self.serial}/request", json.dumps(payload))

    async def next(self, predicate: Callable[[dict[str, Any]], bool] = lambda _: True) -> dict[str, Any]:
        """Return the next message matching predicate, merging every push_status on the way."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await self._messages.get()
                body = message.get("print", {})
                if body.get("command") == "push_status":
                    self.merged.update(body)
                    self.history.append((self.merged.get("gcode_state", ""), self.merged.get("stg_cur", -1)))
                if predicate(message):
                    return message

    async def status_until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Collect push_status bodies until the merged state satisfies done."""
        seen: list[dict[str, Any]] = []
        while not (seen and done(self.merged)):
            seen.append((await self.next(_is_status))["print"])
        return seen


def _collapse(history: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [item for index, item in enumerate(history) if index == 0 or history[index - 1] != item]


def _is_status(message: dict[str, Any]) -> bool:
    return bool(message.get("print", {}).get("command") == "push_status")


def _is_answer(command: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: message.get("print", {}).get("command") == command and "result" in message["print"]


@pytest.fixture
async def reports(p1s: dict[str, Any]) -> AsyncIterator[Reports]:
    client = Reports(p1s)
    assert not (await client.connect()).is_failure
    yield client
    await client.close()


async def test_wrong_access_code_is_refused(p1s: dict[str, Any]) -> None:
    client = Reports(p1s, access_code="00000000")
    try:
        reason = await client.connect()
    finally:
        await client.close()
    assert reason.is_failure


def _peer_certificate(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw, _tls().wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


async def test_certificate_names_the_serial(p1s: dict[str, Any]) -> None:
    for port in (p1s["mqtt_port"], p1s["ftps_port"], p1s["camera_port"]):  # one certificate for all
        der = await asyncio.to_thread(_peer_certificate, p1s["host"], port)
        assert hashlib.sha256(der).hexdigest() == p1s["fingerprint"]
        assert p1s["serial"].encode() in der


async def test_pushall_answers_with_a_full_report(reports: Reports, p1s: dict[str, Any]) -> None:
    reports.request({"pushing": {"sequence_id": "0", "command": "pushall"}})
    report = (await reports.next(_is_status))["print"]
    assert set(report) >= REQUIRED_KEYS
    assert report["gcode_state"] == "IDLE"
    assert report["gcode_start_time"] == "0"
    assert report["ams"]["ams"][0]["tray"][0]["tray_type"] == "PLA"

    reports.request({"info": {"sequence_id": "7", "command": "get_version"}})
    version = (await reports.next(lambda m: "info" in m))["info"]
    assert version["sequence_id"] == "7"
    ota = next(module for module in version["module"] if module["name"] == "ota")
    assert ota["sn"] == p1s["serial"]
    assert ota["product_name"] == "Bambu Lab P1S"


async def test_project_file_prints_to_finish(
    control: SimulatorControl, reports: Reports, p1s: dict[str, Any]
) -> None:
    serial = p1s["serial"]
    await control.put_file(serial, "cube.gcode.3mf.gcode", GCODE)
    reports.request(
        {
            "print": {
                "sequence_id": "42",
                "command": "project_file",
                "param": "Metadata/plate_1.gcode",
                "url": "file:///sdcard/cube.gcode.3mf.gcode",
                "subtask_name": "cube",
                "use_ams": True,
                "ams_mapping": [2],
                "ams_mapping2": [{"ams_id": 0, "slot_id": 2}],
                "bed_levelling": True,
                "timelapse": False,
            }
        }
    )
    answer = (await reports.next(_is_answer("project_file")))["print"]
    assert (answer["result"], answer["sequence_id"], answer["subtask_name"]) == ("success", "42", "cube")
    await reports.status_until(lambda state: state.get("gcode_state") == "PREPARE")
    assert reports.merged["total_layer_num"] == 20
    assert reports.merged["mc_remaining_time"] == 10
    assert reports.merged["subtask_name"] == "cube"
    assert reports.merged["ams"]["tray_now"] == "2"

    # Heating, bed levelling and hotend heating take 165 simulated seconds, then 10 minutes of printing.
    await control.advance(serial, 165)
    await reports.status_until(lambda state: state["gcode_state"] == "RUNNING")
    assert reports.merged["stg_cur"] == 0
    await control.advance(serial, 300)
    halfway = await reports.status_until(lambda state: state["mc_percent"] == 50)
    assert reports.merged["mc_remaining_time"] == 5
    assert reports.merged["layer_num"] == 11
    await control.advance(serial, 300)
    rest = await reports.status_until(lambda state: state["gcode_state"] == "FINISH")
    percents = [report["mc_percent"] for report in halfway + rest if "mc_percent" in report]
    assert percents == sorted(percents)
    assert (
        reports.merged["mc_percent"],
        reports.merged["layer_num"],
        reports.merged["mc_remaining_time"],
    ) == (100, 20, 0)
    assert _collapse(reports.history) == [
        ("PREPARE", 2),  # heatbed preheating
        ("PREPARE", 1),  # auto bed levelling
        ("PREPARE", 7),  # heating the hotend
        ("RUNNING", 0),
        ("FINISH", 255),
    ]
    printer = await control.printer(serial)
    assert printer["state"]["gcode_state"] == "FINISH"
    assert printer["commands"][-1]["request"]["print"]["command"] == "project_file"


async def test_project_file_of_a_missing_file_fails(control: SimulatorControl, reports: Reports) -> None:
    reports.request({"print": {"sequence_id": "3", "command": "project_file", "url": "ftp:///nope.3mf"}})
    answer = (await reports.next(_is_answer("project_file")))["print"]
    assert answer["result"] == "failed"
    assert "not found" in answer["reason"]
    with pytest.raises(SimulatorError) as err:
        await control.fail(reports.serial)  # nothing to fail while idle
    assert err.value.status == 409


async def test_h2d_reads_project_files_from_ftp_urls(control: SimulatorControl) -> None:
    h2d = await control.add_printer("H2D")
    reports = Reports(h2d)
    assert not (await reports.connect()).is_failure
    try:
        await control.put_file(h2d["serial"], "cube.gcode.3mf", GCODE)
        for sequence, url, result in (
            ("1", "file:///sdcard/cube.gcode.3mf", "failed"),
            ("2", "ftp:///cube.gcode.3mf", "success"),
        ):
            reports.request({"print": {"sequence_id": sequence, "command": "project_file", "url": url}})
            answer = (await reports.next(_is_answer("project_file")))["print"]
            assert (answer["sequence_id"], answer["result"]) == (sequence, result)
        assert (await control.printer(h2d["serial"]))["state"]["gcode_state"] == "PREPARE"
    finally:
        await reports.close()
        await control.remove_printer(h2d["serial"])


async def test_answers_to_another_clients_commands(control: SimulatorControl, reports: Reports) -> None:
    await control.foreign_answer(reports.serial, "pause", "77", "failed", "the printer is not printing")
    answer = (await reports.next(_is_answer("pause")))["print"]
    assert (answer["sequence_id"], answer["result"], answer["reason"]) == (
        "77",
        "failed",
        "the printer is not printing",
    )
    with pytest.raises(SimulatorError) as err:
        await control._action(reports.serial, "foreign_answer", {"command": "pause"})
    assert err.value.status == 400


async def test_pause_resume_and_stop(
    control: SimulatorControl, reports: Reports, p1s: dict[str, Any]
) -> None:
    serial = p1s["serial"]
    reports.request({"print": {"sequence_id": "1", "command": "pause", "param": ""}})
    assert (await reports.next(_is_answer("pause")))["print"]["result"] == "failed"

    await control.put_file(serial, "part.gcode", GCODE)
    await control.start_print(serial, "part.gcode")  # from the printer's screen: no command seen
    await control.advance(serial, 200)
    await reports.status_until(lambda state: state.get("gcode_state") == "RUNNING")
    reports.request({"print": {"sequence_id": "2", "command": "pause", "param": ""}})
    assert (await reports.next(_is_answer("pause")))["print"]["result"] == "success"
    await reports.status_until(lambda state: state["gcode_state"] == "PAUSE")
    percent = reports.merged["mc_percent"]
    await control.advance(serial, 300)
    assert (await control.printer(serial))["state"]["mc_percent"] == percent

    reports.request({"print": {"sequence_id": "3", "command": "resume", "param": ""}})
    assert (await reports.next(_is_answer("resume")))["print"]["result"] == "success"
    await reports.status_until(lambda state: state["gcode_state"] == "RUNNING")
    reports.request({"print": {"sequence_id": "4", "command": "stop", "param": ""}})
    assert (await reports.next(_is_answer("stop")))["print"]["result"] == "success"
    failed = await reports.status_until(lambda state: state["gcode_state"] == "FAILED")
    assert failed[-1]["print_error"] == 50348044
    cleared = (await reports.next(_is_status))["print"]
    assert cleared["print_error"] == 0


async def test_delta_style_reports_only_changed_keys(control: SimulatorControl, reports: Reports) -> None:
    envelope = {"command", "msg", "sequence_id"}
    reports.request({"pushing": {"sequence_id": "0", "command": "pushall"}})
    assert (await reports.next(_is_status))["print"]["msg"] == 0
    reports.request({"print": {"sequence_id": "1", "command": "gcode_line", "param": "M140 S60\nM104 S0\n"}})
    assert (await reports.next(_is_answer("gcode_line")))["print"]["result"] == "success"
    delta = (await reports.next(_is_status))["print"]
    assert set(delta) == {"bed_target_temper"} | envelope
    assert delta["msg"] == 1
    await control.advance(reports.serial, 10)
    delta = (await reports.next(_is_status))["print"]
    assert set(delta) == {"bed_temper"} | envelope
    assert (await control.printer(reports.serial))["gcode_lines"] == ["M140 S60", "M104 S0"]


async def test_full_style_reports_everything(control: SimulatorControl) -> None:
    x1c = await control.add_printer("X1C")
    reports = Reports(x1c)
    assert not (await reports.connect()).is_failure
    try:
        for _ in range(2):  # every report is whole, not only the first
            reports.request({"print": {"sequence_id": "1", "command": "gcode_line", "param": "M140 S60"}})
            report = (await reports.next(_is_status))["print"]
            assert REQUIRED_KEYS | {"chamber_temper"} <= set(report)
            assert (report["bed_target_temper"], report["msg"]) == (60, 0)
    finally:
        await reports.close()
        await control.remove_printer(x1c["serial"])


async def test_access_code_change_refuses_the_old_code(
    control: SimulatorControl, p1s: dict[str, Any]
) -> None:
    await control.set_access_code(p1s["serial"], "87654321")
    for code, refused in (("87654321", False), (p1s["access_code"], True)):
        client = Reports(p1s, access_code=code)
        try:
            assert (await client.connect()).is_failure is refused
        finally:
            await client.close()


async def test_offline_then_online_and_new_certificate(
    control: SimulatorControl, p1s: dict[str, Any]
) -> None:
    serial = p1s["serial"]
    await control.offline(serial)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(socket.create_connection, (p1s["host"], p1s["mqtt_port"]), TIMEOUT)
    info = await control.online(serial)
    assert (info["mqtt_port"], info["fingerprint"]) == (p1s["mqtt_port"], p1s["fingerprint"])
    fingerprint = await control.replace_certificate(serial)
    assert fingerprint != p1s["fingerprint"]
    for port in (p1s["mqtt_port"], p1s["camera_port"]):  # the camera follows the new certificate too
        der = await asyncio.to_thread(_peer_certificate, p1s["host"], port)
        assert hashlib.sha256(der).hexdigest() == fingerprint
    client = Reports(p1s)
    try:
        assert not (await client.connect()).is_failure
    finally:
        await client.close()


# --- FTPS -------------------------------------------------------------------------------------


class ImplicitFTPS(ftplib.FTP_TLS):
    """ftplib speaking implicit TLS, passing the control session to data connections unless told not to."""

    reuse_session = True

    def connect(
        self, host: str = "", port: int = 0, timeout: float = TIMEOUT, source_address: Any = None
    ) -> str:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = self.context.wrap_socket(
            socket.create_connection((host, port), timeout), server_hostname=host
        )
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        assert isinstance(self.sock, ssl.SSLSocket)
        session = self.sock.session if self.reuse_session else None
        return self.context.wrap_socket(conn, server_hostname=self.host, session=session), size


def _ftps(printer: dict[str, Any], password: str | None = None) -> ImplicitFTPS:
    ftp = ImplicitFTPS(context=_tls())
    ftp.connect(printer["host"], printer["ftps_port"])
    try:
        ftp.login("bblp", password or printer["access_code"])
        ftp.prot_p()
    except ftplib.Error:
        ftp.close()
        raise
    return ftp


async def test_ftps_upload_with_session_reuse(control: SimulatorControl, p1s: dict[str, Any]) -> None:
    data = bytes(range(256)) * 1000

    def upload() -> tuple[list[str], bytes]:
        ftp = _ftps(p1s)
        try:
            ftp.storbinary("STOR /sdcard/job.gcode.3mf", io.BytesIO(data))
            names = ftp.nlst()
            received = io.BytesIO()
            ftp.retrbinary("RETR job.gcode.3mf", received.write)
            return names, received.getvalue()
        finally:
            ftp.quit()

    names, received = await asyncio.to_thread(upload)
    assert names == ["job.gcode.3mf"]
    assert received == data
    assert (Path(p1s["storage_dir"]) / "job.gcode.3mf").read_bytes() == data
    assert (await control.printer(p1s["serial"]))["files"] == [{"name": "job.gcode.3mf", "size": len(data)}]


async def test_ftps_refuses_data_without_session_reuse(p1s: dict[str, Any]) -> None:
    def upload() -> str:
        ftp = _ftps(p1s)
        ftp.reuse_session = False
        try:
            ftp.voidcmd("TYPE I")
            with ftp.transfercmd("STOR refused.gcode") as conn, contextlib.suppress(OSError):
                conn.sendall(b"G28\n")
            with pytest.raises(ftplib.error_perm) as err:
                ftp.voidresp()
            return str(err.value)
        finally:
            ftp.close()

    assert (await asyncio.to_thread(upload)).startswith("522")
    assert not (Path(p1s["storage_dir"]) / "refused.gcode").exists()


async def test_break_upload_checks_its_arguments(control: SimulatorControl, p1s: dict[str, Any]) -> None:
    for body in ({"after_bytes": -1}, {"after_bytes": True}, {"after_bytes": 5, "control": "hang"}):
        with pytest.raises(SimulatorError) as err:
            await control._call("POST", f"/printers/{p1s['serial']}/ftps/break_upload", body)
        assert err.value.status == 400
    assert await control.break_next_upload(p1s["serial"], 5) == {"after_bytes": 5, "control": "reply"}
    assert (await control.printer(p1s["serial"]))["upload_fault"] == 5


async def test_ftps_refuses_a_wrong_access_code(p1s: dict[str, Any]) -> None:
    with pytest.raises(ftplib.error_perm, match="530"):
        await asyncio.to_thread(_ftps, p1s, "00000000")


# --- the process ------------------------------------------------------------------------------


async def test_command_line_printers_persist_in_the_state_dir(tmp_path: Path) -> None:
    seen = []
    for _ in range(2):
        async with start_simulator(printers=2, models="P1S,X1C", state_dir=tmp_path) as sim:
            seen.append([(p["serial"], p["access_code"], p["fingerprint"]) for p in sim.printers])
            assert [(p["model"], p["host"]) for p in sim.printers] == [
                ("P1S", "127.0.0.2"),
                ("X1C", "127.0.0.3"),
            ]
            assert sim.printers[1]["serial"].startswith("00M00A")
            assert await sim.control.printers() == sim.printers
        assert sim.process.returncode == 0  # SIGTERM is a clean stop
    assert seen[0] == seen[1]


@pytest.mark.parametrize(
    ("mapping", "mapping2"),
    [
        ([7], None),
        ([], None),
        (["0"], None),
        ([-1], None),
        ([2], [{"ams_id": 0, "slot_id": 3}]),
        ([2], [{"ams_id": 0, "slot_id": 6}]),
    ],
    ids=["empty-slot", "none", "malformed", "unused-only", "forms-disagree", "slot-out-of-range"],
)
async def test_an_unresolved_ams_mapping_hangs_the_print(
    control: SimulatorControl,
    reports: Reports,
    p1s: dict[str, Any],
    mapping: list[Any],
    mapping2: list[Any] | None,
) -> None:
    """As the printer does: it takes the command, then waits for a tray it cannot find."""
    serial = p1s["serial"]
    await control.put_file(serial, "cube.gcode.3mf.gcode", GCODE)
    reports.request(
        {
            "print": {
                "sequence_id": "7",
                "command": "project_file",
                "param": "Metadata/plate_1.gcode",
                "url": "file:///sdcard/cube.gcode.3mf.gcode",
                "use_ams": True,
                "ams_mapping": mapping,
                **({"ams_mapping2": mapping2} if mapping2 is not None else {}),
            }
        }
    )
    assert (await reports.next(_is_answer("project_file")))["print"]["result"] == "success"
    await control.advance(serial, 7200)
    state = (await control.printer(serial))["state"]
    assert (state["gcode_state"], state["stg_cur"], state["mc_percent"]) == ("PREPARE", 4, 0)
