"""The firmware model of one simulated Bambu Lab printer: its state, its reports and its commands.

The model is an MQTT client of its own printer's broker, like the real firmware: it reads
`device/<serial>/request` and publishes on `device/<serial>/report`. Simulated time moves only
through `advance`, called by the farm's ticker (realtime clock) or by the control API (manual clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from dataclasses import dataclass, field
import ipaddress
import json
import logging
import math
from pathlib import Path
import re
import ssl
import time
from typing import Any, Final
import zipfile

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from . import ams as sim_ams

_LOGGER = logging.getLogger(__name__)

FIRMWARE_USER: Final = "firmware"
CANCELLED_ERROR: Final = 50348044  # what a real printer reports when a print is cancelled
DEFAULT_FAILURE: Final = 0x0300_4002  # an arbitrary firmware error code for injected failures
DEFAULT_DURATION: Final = 30 * 60.0
DEFAULT_LAYERS: Final = 50
HISTORY: Final = 1000  # commands and G-code lines kept for the control API
FUN_BITS: Final = 0x11A30F9CFB & ~0x20000000
AUTHORIZATION_BIT: Final = 0x20000000
UNSIGNED_REFUSED: Final = (
    "this command must be signed: authorization control is on (enable LAN-only mode with Developer Mode)"
)
# The models whose camera serves RTSPS on port 322 (LAN liveview); A1 and P1 send JPEG frames instead.
RTSP_CAMERA_MODELS: Final = frozenset({"X1C", "X1", "X1E", "H2D"})
# The stage a printer stays in when a print's ams_mapping names no loaded tray ("changing filament").
AMS_WAIT_STAGE: Final = 4
REPORT_INTERVAL: Final = 10.0  # simulated seconds between reports while the manual clock advances
PRINTING: Final = frozenset({"PREPARE", "RUNNING", "PAUSE"})
AMBIENT: Final = {"nozzle_temper": 24.0, "bed_temper": 23.0, "chamber_temper": 25.0}
# Stages (stg_cur) of the PREPARE phase: (code, simulated seconds, project_file option or None).
PREPARE_STAGES: Final = (
    (2, 45.0, None),
    (1, 90.0, "bed_leveling"),
    (8, 60.0, "flow_cali"),
    (3, 60.0, "vibration_cali"),
    (7, 30.0, None),
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What differs between printer models."""

    name: str
    code: str  # project_name in get_version (the project id)
    ssdp_code: str  # DevModel in SSDP: the X1 and X1C announce a name of their own, not their project id
    product_name: str
    serial_prefix: str
    report_style: str  # "delta" (P1/A1) or "full" (X1)
    firmware: str
    # project_file's url: file:///sdcard/<file> (X1, P1, A1) or only ftp:///<file> (newer models).
    sdcard_url: bool = True


MODELS: Final = {
    spec.name: spec
    for spec in (
        ModelSpec("P1P", "C11", "C11", "Bambu Lab P1P", "01S00A", "delta", "01.07.00.00"),
        ModelSpec("P1S", "C12", "C12", "Bambu Lab P1S", "01P00A", "delta", "01.07.00.00"),
        ModelSpec(
            "X1C", "BL-P001", "3DPrinter-X1-Carbon", "Bambu Lab X1 Carbon", "00M00A", "full", "01.09.00.01"
        ),
        ModelSpec("X1", "BL-P002", "3DPrinter-X1", "Bambu Lab X1", "00W00A", "full", "01.09.00.01"),
        ModelSpec("X1E", "C13", "C13", "Bambu Lab X1E", "03W00X", "full", "01.09.00.01"),
        ModelSpec("A1", "N2S", "N2S", "Bambu Lab A1", "03919A", "delta", "01.05.00.00"),
        ModelSpec("A1 mini", "N1", "N1", "Bambu Lab A1 mini", "0309DA", "delta", "01.05.00.00"),
        ModelSpec("H2D", "O1D", "O1D", "Bambu Lab H2D", "09400A", "delta", "01.01.02.07", sdcard_url=False),
    )
}


def model_spec(name: str) -> ModelSpec:
    """Return the spec for a model name such as "P1S", "x1c" or "A1 mini"; raise KeyError otherwise."""

    def squeeze(text: str) -> str:
        return re.sub(r"[\s_-]", "", text).upper()

    wanted = squeeze(name)
    for spec in MODELS.values():
        if wanted in (squeeze(spec.name), squeeze(spec.code)):
            return spec
    aliases = {"A1M": "A1 mini", "X1CARBON": "X1C"}
    return MODELS[aliases[wanted]]


def _seconds(text: str) -> float | None:
    """Parse "1d 2h 3m 4s" (any subset) into seconds."""
    parts = re.findall(r"(\d+)\s*([dhms])", text)
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return float(sum(int(n) * units[u] for n, u in parts)) if parts else None


def _gcode_header(text: str) -> tuple[float | None, int | None]:
    """Return (duration s, layers) stated in a BambuStudio, PrusaSlicer or Cura header or footer."""
    duration = layers = None
    if (match := re.search(r"total estimated time:\s*([0-9dhms ]+)", text)) or (
        match := re.search(r"estimated printing time \(normal mode\)\s*=\s*([0-9dhms ]+)", text)
    ):
        duration = _seconds(match.group(1))
    elif match := re.search(r"^;TIME:(\d+)", text, re.M):
        duration = float(match.group(1))
    if match := re.search(r"; total layers? (?:number:|count =)\s*(\d+)|^;LAYER_COUNT:(\d+)", text, re.M):
        layers = int(match.group(1) or match.group(2))
    return duration, layers


def read_print_file(path: Path, plate: int = 1) -> tuple[float, int]:
    """Return (duration in simulated seconds, layer count) for a file on storage, with defaults."""
    duration: float | None = None
    layers: int | None = None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if "Metadata/slice_info.config" in names:
                    config = archive.read("Metadata/slice_info.config").decode(errors="replace")
                    for block in re.findall(r"<plate>(.*?)</plate>", config, re.S):
                        is_plate = re.search(rf'key="index" value="{plate}"', block)
                        if is_plate and (match := re.search(r'key="prediction" value="(\d+)"', block)):
                            duration = float(match.group(1))
                gcode = f"Metadata/plate_{plate}.gcode"
                if gcode in names:
                    with archive.open(gcode) as stream:
                        head_duration, layers = _gcode_header(stream.read(8192).decode(errors="replace"))
                    duration = duration or head_duration
        else:
            with path.open("rb") as stream:
                head = stream.read(65536)
                stream.seek(max(0, path.stat().st_size - 65536))
                tail = stream.read()
            duration, layers = _gcode_header((head + b"\n" + tail).decode(errors="replace"))
    except (OSError, zipfile.BadZipFile):
        pass
    return duration or DEFAULT_DURATION, layers or DEFAULT_LAYERS


def initial_state(spec: ModelSpec) -> dict[str, Any]:
    """Return the full `print` object of an idle printer of this model."""
    state: dict[str, Any] = {
        "ipcam": {"ipcam_dev": "1", "ipcam_record": "enable", "timelapse": "disable", "resolution": "1080p"},
        "upload": {"status": "idle", "progress": 0, "message": ""},
        "nozzle_temper": AMBIENT["nozzle_temper"],
        "nozzle_target_temper": 0,
        "bed_temper": AMBIENT["bed_temper"],
        "bed_target_temper": 0,
        "mc_print_stage": "1",
        "heatbreak_fan_speed": "0",
        "cooling_fan_speed": "0",
        "big_fan1_speed": "0",
        "big_fan2_speed": "0",
        "mc_percent": 0,
        "mc_remaining_time": 0,
        "ams_status": 0,
        "ams_rfid_status": 6,
        "hw_switch_state": 1,
        "spd_mag": 100,
        "spd_lvl": 2,
        "print_error": 0,
        "lifecycle": "product",
        "wifi_signal": "-45dBm",
        "gcode_state": "IDLE",
        "gcode_file_prepare_percent": "0",
        "queue_number": 0,
        "project_id": "0",
        "profile_id": "0",
        "task_id": "0",
        "subtask_id": "0",
        "subtask_name": "",
        "gcode_file": "",
        "gcode_start_time": "0",
        "stg": [],
        "stg_cur": _idle_stage(spec),
        "print_type": "idle",
        "mc_print_line_number": "0",
        "mc_print_sub_stage": 0,
        "sdcard": True,
        "mess_production_state": "active",
        "layer_num": 0,
        "total_layer_num": 0,
        "s_obj": [],
        "fan_gear": 0,
        "nozzle_diameter": "0.4",
        "nozzle_type": "hardened_steel" if spec.report_style == "full" else "stainless_steel",
        "hms": [],
        "online": {"ahb": False, "rfid": False, "version": 7},
        "ams": {
            "ams": [
                {
                    "id": "0",
                    "humidity": "4",
                    "temp": "24.5",
                    "tray": [
                        sim_ams.new_tray("0", "PLA", "GFA00", "PLA Basic", "FFFFFFFF"),
                        sim_ams.new_tray("1", "PLA", "GFA01", "PLA Matte", "000000FF"),
                        sim_ams.new_tray("2", "PETG", "GFG00", "PETG Basic", "F95959FF"),
                        sim_ams.new_tray("3", "PLA", "GFA00", "PLA Basic", "00AE42FF"),
                    ],
                }
            ],
            "ams_exist_bits": "1",
            "tray_exist_bits": "f",
            "tray_is_bbl_bits": "f",
            "tray_tar": "255",
            "tray_now": "255",
            "tray_pre": "255",
            "tray_read_done_bits": "f",
            "tray_reading_bits": "0",
            "version": 4,
            "insert_flag": True,
            "power_on_flag": False,
        },
        "vt_tray": {
            **sim_ams.new_tray("254", "PLA", "GFL99", "", "161616FF"),
            "tray_weight": "0",
            "remain": 0,
        },
        "lights_report": [{"node": "chamber_light", "mode": "on"}],
        "net": {"conf": 0, "info": [{"ip": 0, "mask": 0}]},  # the address is set on connect
        "home_flag": 1 << 8,  # bit 8: SD card present; the other bits (homing, door...) clear
        "queue_total": 0,
        "queue_est": 0,
        "queue_sts": 0,
        "cali_version": 0,
        "force_upgrade": False,
    }
    if spec.report_style == "full":  # X1 printers have a chamber sensor and a work light
        state["chamber_temper"] = AMBIENT["chamber_temper"]
        state["lights_report"].append({"node": "work_light", "mode": "off"})
        _add_x1_keys(state)
    else:
        # flag3: shape only (a bit field whose meaning is not published)
        state.update(k="0.0200", filam_bak=[], flag3=0, upgrade_state=_upgrade_state(x1=False))
    if spec.name in ("H2D", "H2S"):  # two chamber lights, each switched by its own ledctrl
        state["lights_report"].append({"node": "chamber_light2", "mode": "on"})
    if spec.name in RTSP_CAMERA_MODELS:  # their camera is RTSPS, reported once LAN liveview is on
        state["ipcam"]["rtsp_url"] = "disable"
    return state


def _upgrade_state(*, x1: bool) -> dict[str, Any]:
    """An upgrade_state with no update under way, in the shape of the model family."""
    state: dict[str, Any] = {
        "sequence_id": 0,
        "progress": "100",
        "status": "UPGRADE_SUCCESS",
        "consistency_request": False,
        "dis_state": 3,
        "err_code": 0,
        "force_upgrade": False,
        "message": "",
        "module": "",
        "new_version_state": 2,
    }
    if x1:
        versions = ("ahb", "ams", "ext", "ota")
        state.update({f"{part}_new_version_number": "" for part in versions}, lower_limit="00.00.00.00")
    else:
        state.update(cur_state_code=0, new_ver_list=[])
    return state


def _add_x1_keys(state: dict[str, Any]) -> None:
    """Add what X1 firmware 01.09 reports besides the P1's keys (mirrors are set by `_mirror`).

    A few are fields whose meaning is not published ("shape only": the real type, a neutral value).
    """
    state["upgrade_state"] = _upgrade_state(x1=True)
    for unit in state["ams"]["ams"]:
        unit.update(dry_time=0, humidity_raw="20", info="0")  # info: shape only
        for tray in unit["tray"]:
            tray.update(drying_temp="0", drying_time="0", state=11, total_len=330000)  # 11: loaded
    state["vt_tray"].update(drying_temp="0", drying_time="0", total_len=330000)
    ams = state["ams"]
    ams.update(ams_exist_bits_raw=ams["ams_exist_bits"], cali_id=0, cali_stat=0, unbind_ams_stat=0)
    state.update(
        ap_err=0,
        aux="0",  # shape only
        aux_part_fan=True,
        batch_id=0,
        canvas_id=0,
        care=[],  # shape only: maintenance counters
        cfg="0",  # shape only
        design_id="",
        err="0",
        fail_reason="0",
        info={"temp": 0},  # shape only
        job={},  # a cloud job's stages; the simulator's prints are local
        job_attr=0,  # shape only
        job_id="",
        mapping=[],
        mc_action=255,  # shape only
        mc_err=0,
        mc_print_error_code="0",
        model_id="",
        plate_cnt=1,
        plate_id=1,
        plate_idx=1,
        print_gcode_action=255,  # shape only
        print_real_action=0,  # shape only
        queue=0,
        stat="0",  # shape only
        state=0,  # shape only
        ver="0",  # shape only
        xcam={
            "allow_skip_parts": False,
            "buildplate_marker_detector": False,
            "first_layer_inspector": True,
            "halt_print_sensitivity": "medium",
            "print_halt": True,
            "printing_monitor": True,
            "spaghetti_detector": True,
        },
        xcam_status="0",
    )


def _idle_stage(spec: ModelSpec) -> int:
    """X1 printers report -1 when no stage runs; P1 and A1 report 255."""
    return -1 if spec.report_style == "full" else 255


def _quantize(value: float) -> float:
    """Round a temperature to 1/32 °C, the resolution the printers report."""
    return round(value * 32) / 32


@dataclass(slots=True)
class PrintJob:
    """The print the model is running."""

    file: str
    duration: float
    layers: int
    stages: list[tuple[int, float]]
    elapsed: float = 0.0  # simulated seconds printed (RUNNING)
    stage_elapsed: float = 0.0  # simulated seconds into the current PREPARE stage
    paused_from: str | None = None


@dataclass(slots=True)
class PrintOptions:
    """The project_file options the model cares about."""

    plate: int = 1
    subtask_name: str | None = None
    use_ams: bool = True
    ams_mapping: list[int] = field(default_factory=list)
    calibrations: frozenset[str] = frozenset({"bed_leveling"})
    project: bool = False  # started with project_file (its ams_mapping is checked)


class PrinterFirmware:
    """State, reports and command handling of one printer, connected to its own broker."""

    def __init__(
        self,
        *,
        serial: str,
        spec: ModelSpec,
        storage_dir: Path,
        report_style: str,
        manual_clock: bool,
        signed_commands: bool = False,
    ) -> None:
        """Create an idle printer; call connect() to put it on its broker."""
        self.serial = serial
        self.spec = spec
        self.storage_dir = storage_dir
        self.report_style = report_style
        self.manual_clock = manual_clock
        self.signed_commands = signed_commands  # authorization control: unsigned commands refused
        self.latency = 0.0  # real seconds added before every command is handled
        self.refusals: dict[str, str] = {}  # command -> the reason the printer gives for refusing it
        self.commands: list[dict[str, Any]] = []
        self.gcode_lines: list[str] = []
        self.now = time.time()  # the printer's simulated unix time
        self._state = initial_state(spec)
        # The `fun` capability bits, as an X1C reports them; 0x20000000: authorization control is on.
        fun = FUN_BITS | AUTHORIZATION_BIT if signed_commands else FUN_BITS
        self._state["fun"] = format(fun, "X")
        self._reported: dict[str, Any] | None = None  # what clients last heard (delta style)
        self._job: PrintJob | None = None
        self._sequence = 0
        self._client: mqtt.Client | None = None
        self._requests: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def state(self) -> dict[str, Any]:
        """Return a copy of the full `print` object."""
        return copy.deepcopy(self._state)

    # --- MQTT -----------------------------------------------------------------------------

    async def connect(self, host: str, port: int, password: str) -> None:
        """Log into the printer's broker and return once the request topic is subscribed."""
        await self.disconnect()
        # The printer's own address as it reports it: IPv4 bytes read little-endian, netmask /24.
        address = int.from_bytes(ipaddress.IPv4Address(host).packed, "little")
        self._state["net"] = {"conf": 0, "info": [{"ip": address, "mask": 0x00FFFFFF}]}
        loop = asyncio.get_running_loop()
        self._subscribed.clear()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"firmware-{self.serial}")
        client.username_pw_set(FIRMWARE_USER, password)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client.tls_set_context(context)
        client.reconnect_delay_set(1, 2)

        def on_connect(c: mqtt.Client, _: Any, __: Any, reason: ReasonCode, ___: Any) -> None:
            if not reason.is_failure:
                c.subscribe(f"device/{self.serial}/request")

        def on_subscribe(*_: Any) -> None:
            loop.call_soon_threadsafe(self._subscribed.set)

        def on_disconnect(*_: Any) -> None:
            loop.call_soon_threadsafe(self._subscribed.clear)

        def on_message(_: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
            # paho calls this on its own thread; the model lives on the event loop.
            loop.call_soon_threadsafe(self._requests.put_nowait, (loop.time(), message.payload))

        client.on_connect, client.on_subscribe = on_connect, on_subscribe
        client.on_disconnect, client.on_message = on_disconnect, on_message
        client.connect_async(host, port)
        client.loop_start()
        self._client = client
        if self._worker is None:
            self._worker = asyncio.create_task(self._serve_requests())
        try:
            async with asyncio.timeout(10):
                await self._subscribed.wait()
        except TimeoutError:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        """Leave the broker (before it stops), keeping the state."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    async def close(self) -> None:
        """Leave the broker and stop handling requests."""
        await self.disconnect()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    def _publish(self, payload: dict[str, Any]) -> bool:
        """Publish one report; False if the broker is out of reach."""
        if self._client is None or not self._subscribed.is_set():
            return False
        info = self._client.publish(f"device/{self.serial}/report", json.dumps(payload))
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def report(self, full: bool = False) -> None:
        """Publish push_status: the full object, or (delta style) the keys changed since the last report."""
        full = full or self.report_style == "full" or self._reported is None
        self._mirror()
        if full:
            body = copy.deepcopy(self._state)
        else:
            assert self._reported is not None
            body = {k: copy.deepcopy(v) for k, v in self._state.items() if self._reported.get(k) != v}
            if "ams" in body:  # only the changed units and trays, by id, as the P1 and A1 send them
                body["ams"] = sim_ams.delta(self._reported.get("ams"), self._state["ams"])
            if not body:
                return
        self._sequence += 1
        body.update(command="push_status", msg=0 if full else 1, sequence_id=str(self._sequence))
        if self._publish({"print": body}):
            self._reported = copy.deepcopy(self._state)

    def _changed(self) -> bool:
        return self._reported is None or self._reported != self._state

    def _mirror(self) -> None:
        """Copy into X1 firmware 01.09's newer keys what the older ones say (it sends both)."""
        if self.spec.report_style != "full":
            return
        state = self._state
        state.update(
            file=state["gcode_file"],
            percent=state["mc_percent"],
            remain_time=state["mc_remaining_time"],
            prepare_per=int(state["gcode_file_prepare_percent"]),
            mc_stage=int(state["mc_print_stage"]),
            t_utc=int(self._timestamp() * 1000),
            vir_slot=[copy.deepcopy(state["vt_tray"])],
            device={
                "bed": {"info": {"temp": round(state["bed_temper"])}, "state": 0},
                "bed_temp": round(state["bed_temper"]),
                "ctc": {"info": {"temp": round(state["chamber_temper"])}, "state": 0},
                "extruder": {"info": [{"id": 0, "temp": round(state["nozzle_temper"])}], "state": 1},
                "nozzle": {
                    "exist": 1,
                    "info": [{"id": 0, "diameter": float(state["nozzle_diameter"])}],
                    "state": 0,
                },
            },
        )

    # --- requests -------------------------------------------------------------------------

    async def _serve_requests(self) -> None:
        """Handle requests in arrival order, each `latency` real seconds after it arrived."""
        loop = asyncio.get_running_loop()
        while True:
            arrived, payload = await self._requests.get()
            if (delay := arrived + self.latency - loop.time()) > 0:
                await asyncio.sleep(delay)
            try:
                self.handle_request(payload)
            except Exception:  # one bad request must not stop the printer
                _LOGGER.exception("%s: request %r failed", self.serial, payload[:200])

    def handle_request(self, payload: bytes) -> None:
        """Answer one message from the request topic."""
        try:
            request = json.loads(payload)
        except ValueError:
            return  # real printers ignore what they cannot parse
        if not isinstance(request, dict):
            return
        self.commands.append({"time": self.now, "request": request})
        del self.commands[:-HISTORY]
        for kind, body in request.items():
            if not isinstance(body, dict):
                continue
            command = body.get("command")
            if kind == "pushing" and command == "pushall":
                self.report(full=True)
            elif kind == "info" and command == "get_version":
                self._publish({"info": self.version_info(str(body.get("sequence_id", "0")))})
            elif kind == "print":
                self._handle_print(body)
            elif kind == "system" and command == "ledctrl":
                self._set_light(body)

    def _answer(self, kind: str, body: dict[str, Any], reason: str | None) -> None:
        """Echo a command back with its result; reason None means success."""
        result = "success" if reason is None else "failed"
        self._publish({kind: {**body, "result": result, "reason": reason or ""}})

    def answer_another_client(self, command: str, sequence_id: str, result: str, reason: str = "") -> bool:
        """Publish the answer to a command another LAN client sent (Bambu Studio, Handy...).

        Every client on the report topic hears it, as on a real printer. False if the broker is out of reach.
        """
        body = {
            "command": command,
            "sequence_id": sequence_id,
            "param": "",
            "result": result,
            "reason": reason,
        }
        return self._publish({"print": body})

    def _handle_print(self, body: dict[str, Any]) -> None:
        command = body.get("command")
        reason: str | None = None
        if self.signed_commands and command in ("project_file", "gcode_file", "gcode_line"):
            reason = UNSIGNED_REFUSED
        elif command == "pause":
            reason = self.pause()
        elif command == "resume":
            reason = self.resume()
        elif command == "stop":
            reason = self.stop()
        elif command == "gcode_line":
            self._run_gcode(str(body.get("param", "")))
        elif command in ("project_file", "gcode_file"):
            reason = self._start_from_request(body)
        elif command in self.refusals:
            reason = self.refusals[command]
        elif command == "print_speed" and str(body.get("param")) in ("1", "2", "3", "4"):
            level = int(body["param"])
            self._state.update(spd_lvl=level, spd_mag={1: 50, 2: 100, 3: 124, 4: 166}[level])
        else:
            reason = f"unsupported command {command!r}"
        self._answer("print", body, reason)
        self.report()
        if command == "stop" and reason is None:
            self._state["print_error"] = 0  # like the real cancel: the error is reported once, then clears
            self.report()

    def _start_from_request(self, body: dict[str, Any]) -> str | None:
        if body.get("command") == "gcode_file":
            name = _storage_name(str(body.get("param", "")))
            return self.start_print(name) if name else "invalid file path"
        url = str(body.get("url") or body.get("file") or "")
        name = _storage_name(url)
        if not name:
            return f"invalid url {url!r}"
        if not self.spec.sdcard_url and not url.startswith("ftp:///"):
            return f"invalid url {url!r}: the {self.spec.name} reads ftp:///<file>"
        plate = re.search(r"plate_(\d+)\.gcode", str(body.get("param", "")))
        mapping = body.get("ams_mapping")
        if "ams_mapping2" in body and not _same_mapping(mapping, body["ams_mapping2"]):
            mapping = None  # the two forms disagree: no tray can be trusted, as with a malformed one
        options = PrintOptions(
            plate=int(plate.group(1)) if plate else 1,
            subtask_name=str(body["subtask_name"]) if body.get("subtask_name") else None,
            project=True,
            use_ams=bool(body.get("use_ams", True)),
            # A malformed mapping (not a list of whole numbers) resolves no tray, like an unknown one.
            ams_mapping=list(mapping)
            if isinstance(mapping, list) and all(type(i) is int for i in mapping)
            else [-2],
            calibrations=frozenset(
                option
                for option, keys in (
                    ("bed_leveling", ("bed_leveling", "bed_levelling")),
                    ("flow_cali", ("flow_cali",)),
                    ("vibration_cali", ("vibration_cali",)),
                )
                if any(body.get(key) for key in keys)
            ),
        )
        return self.start_print(name, options)

    def _run_gcode(self, text: str) -> None:
        """Record G-code lines and follow the temperature commands among them."""
        heaters = {"M104": "nozzle_target_temper", "M109": "nozzle_target_temper"}
        heaters |= {"M140": "bed_target_temper", "M190": "bed_target_temper"}
        for line in filter(None, (raw.strip() for raw in text.split("\n"))):
            self.gcode_lines.append(line)
            del self.gcode_lines[:-HISTORY]
            words = line.split(";")[0].split()
            if words and (key := heaters.get(words[0].upper())):
                for word in words[1:]:
                    if word[:1] in ("S", "s"):
                        with contextlib.suppress(ValueError):
                            self._state[key] = float(word[1:])

    # --- AMS and faults (control API) ------------------------------------------------------

    def set_ams_units(self, units: list[dict[str, Any]]) -> None:
        """Replace the AMS units (see simulator.ams.set_units) and report the change."""
        sim_ams.set_units(self._state["ams"], units, x1=self.spec.report_style == "full")
        self.report()

    def remove_ams_unit(self, unit: int) -> None:
        """Take one AMS unit away and report it."""
        sim_ams.remove_unit(self._state["ams"], unit)
        self.report()

    def set_tray(self, unit: int, slot: int, fields: dict[str, Any] | None) -> None:
        """Load (raw tray keys) or empty (None) one tray: an AMS slot, or the external holder (unit 254)."""
        if unit == 254:
            if fields is None:
                self._state["vt_tray"] = {**self._state["vt_tray"], "tray_type": "", "tray_color": "00000000"}
            else:
                self._state["vt_tray"] = {**self._state["vt_tray"], **fields, "id": "254"}
        else:
            sim_ams.set_tray(self._state["ams"], unit, slot, fields, x1=self.spec.report_style == "full")
        self.report()

    def set_hms(self, entries: list[dict[str, int]]) -> None:
        """Report these HMS entries ({attr, code}) from now on."""
        self._state["hms"] = [{"attr": entry["attr"], "code": entry["code"]} for entry in entries]
        self.report()

    def _set_light(self, body: dict[str, Any]) -> None:
        node, mode = body.get("led_node"), body.get("led_mode")
        lights = [
            dict(light, mode=mode) if light["node"] == node else light
            for light in self._state["lights_report"]
        ]
        reason = self.refusals.get("ledctrl")
        if reason is None:
            self._state["lights_report"] = lights
        self._answer("system", body, reason)
        self.report()

    def set_liveview(self, host: str | None, credentials: str | None = None, port: int | None = None) -> None:
        """Turn LAN liveview on (the RTSPS url on host, as the printers report it) or off (None), and report it.

        `credentials` ("bblp:<code>") go into the url, as some firmware reports it; `port`: the
        simulated camera's (a printer's is 322).
        """
        if "rtsp_url" not in self._state["ipcam"]:
            raise ValueError("this model has no RTSPS camera")
        userinfo = f"{credentials}@" if credentials else ""
        url = "disable" if host is None else f"rtsps://{userinfo}{host}:{port or 322}/streaming/live/1"
        self._state["ipcam"] = {**self._state["ipcam"], "rtsp_url": url}
        self.report()

    def version_info(self, sequence_id: str = "0") -> dict[str, Any]:
        """Return the get_version answer."""
        spec = self.spec

        def module(name: str, sw_ver: str, hw_ver: str, product: str = "", sn: str = "") -> dict[str, Any]:
            visible = bool(product)
            return {
                "name": name,
                "project_name": spec.code,
                "sw_ver": sw_ver,
                "hw_ver": hw_ver,
                "loader_ver": "00.00.00.00",
                "sn": sn or f"{self.serial}-{name.upper()}",
                "product_name": product,
                "visible": visible,
                "flag": 3 if name == "ota" else 0,
            }

        return {
            "command": "get_version",
            "sequence_id": sequence_id,
            "module": [
                module("ota", spec.firmware, "OTA", spec.product_name, self.serial),
                module("mc", "00.00.32.89", "MC07"),
                module("th", "00.00.09.95", "TH09"),
                {**module("ams/0", "00.00.06.49", "AMS08", "AMS (1)"), "ota_ver": "00.00.00.00"},
            ],
            "result": "success",
            "reason": "",
        }

    # --- printing -------------------------------------------------------------------------

    def start_print(self, name: str, options: PrintOptions | None = None) -> str | None:
        """Start printing a file on storage; return a failure reason, or None on success."""
        options = options or PrintOptions()
        if self._state["gcode_state"] in PRINTING:
            return "the printer is busy"
        path = self.storage_dir / name
        if "/" in name or not path.is_file():
            return f"file {name!r} not found on storage"
        duration, layers = read_print_file(path, options.plate)
        stages = [
            (code, seconds)
            for code, seconds, option in PREPARE_STAGES
            if option is None or option in options.calibrations
        ]
        if options.project and options.use_ams and not self._mapping_resolves(options.ams_mapping):
            # A real printer takes the command, then waits forever for a tray it cannot find.
            stages = [(AMS_WAIT_STAGE, math.inf)]
        self._job = PrintJob(name, duration, layers, stages)
        tray = "254"
        if options.use_ams:
            tray = str(options.ams_mapping[0]) if options.ams_mapping and options.ams_mapping[0] >= 0 else "0"
        self._state["ams"] = {**self._state["ams"], "tray_now": tray, "tray_tar": tray}
        if "mapping" in self._state:  # X1 firmware 01.09 also reports the print's mapping and plate
            self._state.update(
                mapping=list(options.ams_mapping) if options.use_ams else [], plate_idx=options.plate
            )
        self._state.update(
            gcode_state="PREPARE",
            mc_print_stage="2",
            mc_percent=0,
            mc_remaining_time=math.ceil(duration / 60),
            layer_num=0,
            total_layer_num=layers,
            gcode_file=name,
            subtask_name=options.subtask_name or _stem(name),
            gcode_start_time=str(int(self._timestamp())),
            gcode_file_prepare_percent="100",
            stg=[code for code, _ in stages],
            stg_cur=stages[0][0],
            print_type="local",
            print_error=0,
            hms=[],
        )
        self._enter_stage()
        return None

    def _mapping_resolves(self, mapping: list[int]) -> bool:
        """Whether every entry of an ams_mapping is unused (-1) or a tray that holds filament."""
        loaded = {254} if self._state.get("vt_tray", {}).get("tray_type") else set()
        for unit in self._state["ams"]["ams"]:
            for tray in unit["tray"]:
                if tray.get("tray_type"):
                    unit_id = int(unit["id"])
                    loaded.add(unit_id if unit_id >= 128 else unit_id * 4 + int(tray["id"]))
        return (
            bool(mapping)
            and any(code >= 0 for code in mapping)
            and all(code == -1 or code in loaded for code in mapping)
        )

    def pause(self) -> str | None:
        """Pause the running print; return a failure reason, or None."""
        if self._job is None or self._state["gcode_state"] not in ("PREPARE", "RUNNING"):
            return "the printer is not printing"
        self._job.paused_from = self._state["gcode_state"]
        self._state.update(gcode_state="PAUSE", stg_cur=16)
        return None

    def resume(self) -> str | None:
        """Resume a paused print; return a failure reason, or None."""
        if self._job is None or self._state["gcode_state"] != "PAUSE":
            return "the printer is not paused"
        self._state["gcode_state"] = self._job.paused_from or "RUNNING"
        self._state["stg_cur"] = self._job.stages[0][0] if self._state["gcode_state"] == "PREPARE" else 0
        return None

    def stop(self) -> str | None:
        """Cancel the print: FAILED with the cancel error."""
        if self._state["gcode_state"] not in PRINTING:
            return "the printer is not printing"
        self._end("FAILED", CANCELLED_ERROR)
        return None

    def fail(self, print_error: int = DEFAULT_FAILURE, progress: int | None = None) -> str | None:
        """Fail the current print with a firmware error that stays until the next print.

        `progress`: the percent the FAILED report itself carries (the print got further than the
        last report said), else the last one.
        """
        if self._state["gcode_state"] not in PRINTING:
            return "the printer is not printing"
        if progress is not None:
            self._state["mc_percent"] = progress
        self._end("FAILED", print_error)
        self.report()
        return None

    def _end(self, gcode_state: str, print_error: int) -> None:
        self._job = None
        self._state.update(
            gcode_state=gcode_state,
            print_error=print_error,
            mc_print_stage="1",
            stg_cur=_idle_stage(self.spec),
            print_type="idle",
            nozzle_target_temper=0,
            bed_target_temper=0,
            cooling_fan_speed="0",
            heatbreak_fan_speed="0",
        )

    def _enter_stage(self) -> None:
        """Apply the heater targets of the PREPARE stage just begun."""
        assert self._job is not None
        code = self._job.stages[0][0] if self._job.stages else 0
        self._state["stg_cur"] = code
        if code == 2:
            self._state["bed_target_temper"] = 55
        elif code == 1:
            self._state["nozzle_target_temper"] = 140
        elif code in (7, 0):
            self._state.update(nozzle_target_temper=220, bed_target_temper=55, heatbreak_fan_speed="15")
        if code == 0:
            self._state.update(gcode_state="RUNNING", layer_num=1, cooling_fan_speed="15")

    def advance(self, seconds: float, report_every: float = REPORT_INTERVAL) -> None:
        """Move simulated time forward, publishing the reports due in between, in order."""
        remaining = max(0.0, float(seconds))
        while remaining > 0:
            step = min(remaining, report_every)
            self._run(step)
            remaining -= step
            if self._changed() or self._state["gcode_state"] in PRINTING:
                self.report()

    def _run(self, seconds: float) -> None:
        """Advance the model by seconds of simulated time, crossing stage boundaries exactly."""
        left = seconds
        while left > 1e-9:
            job, gcode_state = self._job, self._state["gcode_state"]
            used = left
            if job is not None and gcode_state == "PREPARE":
                used = min(left, job.stages[0][1] - job.stage_elapsed)
            elif job is not None and gcode_state == "RUNNING":
                used = min(left, job.duration - job.elapsed)
            self.now += used
            self._drift_temperatures(used)
            left -= used
            if job is None or gcode_state == "PAUSE":
                continue
            if gcode_state == "PREPARE":
                job.stage_elapsed += used
                if job.stage_elapsed >= job.stages[0][1] - 1e-9:
                    job.stages.pop(0)
                    job.stage_elapsed = 0.0
                    self._enter_stage()
                continue
            job.elapsed += used
            if job.elapsed >= job.duration - 1e-9:
                self._end("FINISH", 0)
                self._state.update(mc_percent=100, layer_num=job.layers, mc_remaining_time=0)
                continue
            fraction = job.elapsed / job.duration
            self._state.update(
                mc_percent=min(99, int(fraction * 100)),
                layer_num=min(job.layers, int(fraction * job.layers) + 1),
                mc_remaining_time=math.ceil((job.duration - job.elapsed) / 60),
                mc_print_line_number=str(int(fraction * 100000)),
            )

    def _drift_temperatures(self, seconds: float) -> None:
        """Move each temperature toward its target (or ambient) exponentially."""
        targets = {
            "nozzle_temper": (self._state["nozzle_target_temper"], 20.0),
            "bed_temper": (self._state["bed_target_temper"], 40.0),
        }
        if "chamber_temper" in self._state:
            targets["chamber_temper"] = (35.0 if self._state["bed_target_temper"] else 0, 300.0)
        for key, (target, tau) in targets.items():
            goal = max(float(target), AMBIENT[key])
            value = self._state[key] + (goal - self._state[key]) * (1 - math.exp(-seconds / tau))
            self._state[key] = goal if abs(goal - value) < 0.5 else _quantize(value)

    def _timestamp(self) -> float:
        """Unix time for timestamps in reports: simulated on the manual clock, real otherwise."""
        return self.now if self.manual_clock else time.time()


def _same_mapping(mapping: Any, pairs: Any) -> bool:
    """Whether `ams_mapping2` (unit and slot per filament) says what `ams_mapping` says."""
    if not isinstance(mapping, list) or not isinstance(pairs, list) or len(mapping) != len(pairs):
        return False
    for code, pair in zip(mapping, pairs, strict=True):
        if not isinstance(pair, dict) or not all(type(pair.get(key)) is int for key in ("ams_id", "slot_id")):
            return False
        unit, slot = pair["ams_id"], pair["slot_id"]
        if unit == 255 and slot == 255:
            decoded = -1
        elif unit < 128:
            decoded = unit * 4 + slot if 0 <= slot < 4 else -2
        else:
            decoded = unit if slot == 0 else -2
        if decoded != code:
            return False
    return True


def _stem(name: str) -> str:
    for suffix in (".gcode.3mf", ".3mf", ".gcode"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _storage_name(url: str) -> str | None:
    """Return the storage file name of file:///sdcard/x, ftp:///x, /sdcard/x or x."""
    path = re.sub(r"^(file|ftp)://", "", url).lstrip("/")
    for prefix in ("mnt/", "sdcard/"):
        path = path.removeprefix(prefix)
    return path if path and "/" not in path else None
