"""The simulated farm: printers (broker + FTPS + firmware), the clock, SSDP, and the control API.

Control API (JSON, on 127.0.0.1; errors are {"error": "..."} with 400, 404 or 409):
    GET    /printers                          every printer's info
    POST   /printers                          {model, serial?, name?, access_code?, host?, mqtt_port?,
                                              ftps_port?, camera_port?, report_style?,
                                              signed_commands?}
                                              -> 201 info (signed_commands: the printer's
                                              authorization control is on: it refuses unsigned
                                              project_file, gcode_file and gcode_line)
    GET    /printers/{serial}                 info + state + files + commands + gcode_lines
                                              + upload_fault (bytes, or null when none is armed)
    DELETE /printers/{serial}                 -> 204
    PUT    /printers/{serial}/files/{name}    raw body -> 201 {name, size}
    POST   /printers/{serial}/advance         {seconds} -> {time, state}
    POST   /printers/{serial}/start           {file} -> {state}   (a print started on the printer)
    POST   /printers/{serial}/fail            {print_error?, progress?} -> {state} (progress: the
                                              percent the FAILED report carries)
    POST   /printers/{serial}/offline | online | broker/restart -> info
    POST   /printers/{serial}/access_code     {access_code} -> info
    POST   /printers/{serial}/latency         {seconds} -> info
    POST   /printers/{serial}/certificate     -> {fingerprint}
    POST   /printers/{serial}/camera/fault    {fault: "silent" | "not_jpeg" | "full" | "slow" | null}
                                              -> info (the next camera logins get no frame, frames
                                              that are no JPEG, are closed as by a printer at its
                                              client limit, or wait 4 s for the TLS handshake and
                                              then get no frame)
    POST   /printers/{serial}/liveview        {enabled, with_code?} -> info (X1, X1E, H2: LAN liveview
                                              on or off, reported as ipcam.rtsp_url, with bblp:<code>@
                                              in it when with_code, pointing at the RTSPS camera
                                              on rtsp_port, whose counters info's rtsp shows; A1
                                              and P1 serve JPEG frames on camera_port instead,
                                              whose counters info's camera shows)
    POST   /printers/{serial}/ams/units       {units: [{id, kind?, trays?, humidity?, humidity_raw?, temp?}]}
                                              -> {ams} (replaces every unit; trays: raw keys per slot,
                                              null an empty slot; reported as the model does)
    POST   /printers/{serial}/ams/remove_unit {unit} -> {ams}
    POST   /printers/{serial}/ams/tray        {unit, slot, fields} -> {state} (fields: raw tray keys;
                                              null empties it; unit 254: the external holder)
    POST   /printers/{serial}/hms             {hms: [{attr, code}]} -> {hms}
    POST   /printers/{serial}/refuse          {command, reason} -> {refusals} (the printer answers that
                                              command "failed" with reason; reason null: obey again)
    POST   /printers/{serial}/foreign_answer  {command, sequence_id, result?, reason?} -> {published}
                                              (the answer to another LAN client's command, on the
                                              report topic; result "success" unless given)
    POST   /printers/{serial}/ftps/break_upload {after_bytes, control?} -> {after_bytes, control}
                                              (the next STOR is cut after after_bytes bytes: its data
                                              connection is reset and the control connection answers
                                              426, or closes with control "close"; the partial file
                                              stays on storage, as on a printer; a shorter file goes
                                              through whole and spends the fault)

    GET    /ottoejects                        every OttoEject's info
    POST   /ottoejects                        {name?, printers? ["P1","P2"], slots? 6, macro_seconds? 20,
                                              api_key?, host?, port?, trust_loopback? true}
                                              -> 201 {id, name, host, port, api_key, macros, ...}
    GET    /ottoejects/{id}                   info + klippy_state, running, time, scripts
    DELETE /ottoejects/{id}                   -> 204
    POST   /ottoejects/{id}/advance           {seconds} -> {time, running, idle_timeout}
    POST   /ottoejects/{id}/klippy            {state: ready|startup|shutdown|error|disconnected|
                                              never_connected} -> details, once Moonraker reports it
    POST   /ottoejects/{id}/moonraker/stop | moonraker/start -> details
    POST   /ottoejects/{id}/macro_seconds     {seconds} -> details
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import io
import ipaddress
import json
import logging
from pathlib import Path
import secrets
import shutil
import signal
import sys
import tempfile
from typing import Any

from aiohttp import web
from PIL import Image

from . import ssdp
from .broker import (
    BrokerError,
    MosquittoBroker,
    create_certificate,
    free_port,
    load_certificate,
    port_is_free,
)
from .camera import FAULTS as CAMERA_FAULTS, SIZE as CAMERA_SIZE, CameraServer, draw_frame
from .ftps import FtpsServer, UploadFault
from .ottoeject import (
    DEFAULT_MACRO_SECONDS,
    DEFAULT_PRINTERS,
    DEFAULT_SLOTS,
    OttoEjectError,
    SimulatedOttoEject,
)
from .printer import DEFAULT_FAILURE, FIRMWARE_USER, ModelSpec, PrinterFirmware, model_spec
from .rtsp import RtspServer

_LOGGER = logging.getLogger(__name__)
ANNOUNCE_INTERVAL = 5.0
# The models whose camera sends JPEG frames on port 6000; the others serve RTSPS on 322 (liveview).
JPEG_CAMERA_MODELS = frozenset({"P1P", "P1S", "A1", "A1 mini"})


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


class SimulatedPrinter:
    """One printer: its mosquitto broker, its FTPS server and its firmware model."""

    def __init__(
        self,
        *,
        serial: str,
        name: str,
        spec: ModelSpec,
        host: str,
        mqtt_port: int,
        ftps_port: int,
        camera_port: int,
        access_code: str,
        rtsp_port: int = 0,
        directory: Path,
        report_style: str,
        manual_clock: bool,
        persistent: bool,
        signed_commands: bool = False,
    ) -> None:
        """Prepare a printer whose files live in directory; start() brings it online."""
        self.serial, self.name, self.spec, self.host = serial, name, spec, host
        self.access_code = access_code
        self.directory = directory
        self.persistent = persistent  # listed in the state dir, so its directory is kept
        self.storage_dir = directory / "sdcard"
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.certificate = load_certificate(directory / "tls", serial) or create_certificate(
            directory / "tls", serial
        )
        self._firmware_password = secrets.token_urlsafe(18)
        self.broker = MosquittoBroker(directory / "broker", host, mqtt_port, self.certificate)
        self.ftps = FtpsServer(
            host, ftps_port, self.storage_dir, self.certificate.server_context(), lambda: self.access_code
        )
        self.firmware = PrinterFirmware(
            serial=serial,
            spec=spec,
            storage_dir=self.storage_dir,
            report_style=report_style,
            manual_clock=manual_clock,
            signed_commands=signed_commands,
        )
        self.camera: CameraServer | None = None
        if spec.name in JPEG_CAMERA_MODELS:
            self.camera = CameraServer(
                host,
                camera_port,
                self.certificate.server_context(),
                lambda: self.access_code,
                lambda number: draw_frame(self.name, self.firmware.state, number),
            )
        self.rtsp: RtspServer | None = None  # the X1's, X1E's and H2's RTSPS camera (liveview)
        if "rtsp_url" in self.firmware.state["ipcam"]:
            self.rtsp = RtspServer(
                host,
                rtsp_port,
                self.certificate.server_context(),
                lambda: self.access_code,
                lambda number: Image.open(io.BytesIO(draw_frame(self.name, self.firmware.state, number))),
                CAMERA_SIZE,
            )
        self.online = False

    @property
    def liveview(self) -> bool:
        """Whether LAN liveview is on: the RTSPS camera listens only then, as on a printer."""
        return self.firmware.state["ipcam"].get("rtsp_url", "disable") != "disable"

    async def set_liveview(self, enabled: bool, with_code: bool) -> None:
        """Turn LAN liveview on or off: report it, and open or close the RTSPS camera."""
        if self.rtsp is None:
            raise ValueError("this model has no RTSPS camera")
        credentials = f"bblp:{self.access_code}" if with_code else None
        self.firmware.set_liveview(self.host if enabled else None, credentials, self.rtsp.port)
        if enabled and self.online:
            await self.rtsp.start()
        elif not enabled:
            await self.rtsp.stop()

    def _users(self) -> dict[str, str]:
        return {FIRMWARE_USER: self._firmware_password, "bblp": self.access_code}

    async def start(self) -> None:
        """Start the broker and FTPS server and connect the firmware: the printer is online."""
        await self.broker.set_users(self._users())
        await self.broker.start()
        await self.ftps.start()
        if self.camera is not None:
            await self.camera.start()
        if self.rtsp is not None and self.liveview:
            await self.rtsp.start()
        await self.firmware.connect(self.host, self.broker.port, self._firmware_password)
        self.online = True

    async def go_offline(self) -> None:
        """Stop the broker and the FTPS server; every connection closes. Printing goes on."""
        self.online = False
        await self.firmware.disconnect()
        await self.ftps.stop()
        if self.camera is not None:
            await self.camera.stop()
        if self.rtsp is not None:
            await self.rtsp.stop()
        await self.broker.stop()

    async def close(self) -> None:
        """Stop everything for good."""
        await self.go_offline()
        await self.firmware.close()

    async def set_access_code(self, access_code: str) -> None:
        """Change the LAN access code: new logins need it, on MQTT and FTPS alike."""
        self.access_code = access_code
        await self.broker.set_users(self._users())

    async def restart_broker(self) -> None:
        """Restart mosquitto only (clients are disconnected and may reconnect)."""
        await self.firmware.disconnect()
        await self.broker.restart()
        await self.firmware.connect(self.host, self.broker.port, self._firmware_password)

    async def replace_certificate(self) -> str:
        """Give the printer a new key and certificate (same CN) and restart its broker; return the fingerprint."""
        self.certificate = create_certificate(self.directory / "tls", self.serial)
        self.ftps.context = self.certificate.server_context()
        if self.camera is not None:
            self.camera.context = self.certificate.server_context()
            if self.online:  # the listener holds the old context
                await self.camera.stop()
                await self.camera.start()
        if self.rtsp is not None:
            self.rtsp.context = self.certificate.server_context()
            if self.online and self.liveview:
                await self.rtsp.stop()
                await self.rtsp.start()
        if self.online:
            await self.firmware.disconnect()
            await self.broker.restart(self.certificate)
            await self.firmware.connect(self.host, self.broker.port, self._firmware_password)
        else:
            self.broker.certificate = self.certificate
        return self.certificate.fingerprint

    def info(self) -> dict[str, Any]:
        """Return what a client needs to reach this printer."""
        return {
            "serial": self.serial,
            "name": self.name,
            "model": self.spec.name,
            "host": self.host,
            "mqtt_port": self.broker.port,
            "ftps_port": self.ftps.port,
            "camera_port": None if self.camera is None else self.camera.port,
            "camera": None if self.camera is None else self.camera.info(),
            "rtsp_port": None if self.rtsp is None else self.rtsp.port,
            "rtsp": None if self.rtsp is None else self.rtsp.info(),
            "access_code": self.access_code,
            "storage_dir": str(self.storage_dir),
            "fingerprint": self.certificate.fingerprint,
            "report_style": self.firmware.report_style,
            "online": self.online,
            "latency": self.firmware.latency,
        }

    def details(self) -> dict[str, Any]:
        """Return info plus the live state, the files on storage and what the printer was told."""
        files = [
            {"name": path.name, "size": path.stat().st_size}
            for path in sorted(self.storage_dir.iterdir())
            if path.is_file()
        ]
        return {
            **self.info(),
            "time": self.firmware.now,
            "state": self.firmware.state,
            "files": files,
            "commands": self.firmware.commands,
            "gcode_lines": self.firmware.gcode_lines,
            "upload_fault": None if (fault := self.ftps.upload_fault) is None else fault.after_bytes,
        }


class Farm:
    """All simulated printers, their shared clock and their SSDP announcements."""

    def __init__(self, state_dir: Path, *, manual_clock: bool, time_scale: float, announce_port: int) -> None:
        """Create an empty farm keeping its files in state_dir."""
        self.state_dir = state_dir
        self.manual_clock = manual_clock
        self.time_scale = time_scale
        self.announce_port = announce_port
        self.printers: dict[str, SimulatedPrinter] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.ottoejects: dict[int, SimulatedOttoEject] = {}
        self._next_ottoeject_id = 1

    async def add_printer(
        self,
        model: str,
        *,
        serial: str | None = None,
        name: str | None = None,
        access_code: str | None = None,
        host: str = "127.0.0.1",
        mqtt_port: int | None = None,
        ftps_port: int | None = None,
        camera_port: int | None = None,
        report_style: str | None = None,
        persistent: bool = False,
        signed_commands: bool = False,
        ams_units: int | None = None,
    ) -> SimulatedPrinter:
        """Create and start a printer; raise ValueError for a bad argument.

        ams_units: how many stock AMS units (0-4; default one) the printer has.
        """
        if ams_units is not None and (type(ams_units) is not int or not 0 <= ams_units <= 4):
            raise ValueError("ams_units must be an integer from 0 to 4")
        try:
            spec = model_spec(model)
        except KeyError:
            raise ValueError(f"unknown model {model!r}") from None
        if not _is_loopback(host):
            raise ValueError("host must be a 127.x.x.x address")
        if report_style not in (None, "delta", "full"):
            raise ValueError("report_style must be 'delta' or 'full'")
        serial = serial or spec.serial_prefix + "".join(str(secrets.randbelow(10)) for _ in range(9))
        if serial in self.printers or not serial.isalnum():
            raise ValueError(f"serial {serial!r} is taken or not alphanumeric")
        printer = SimulatedPrinter(
            serial=serial,
            name=name or f"Simulated {spec.name} {serial[-4:]}",
            spec=spec,
            host=host,
            mqtt_port=mqtt_port or free_port(host),
            ftps_port=ftps_port or free_port(host),
            camera_port=camera_port or free_port(host),
            rtsp_port=free_port(host),
            access_code=access_code or f"{secrets.randbelow(10**8):08d}",
            directory=self.state_dir / "printers" / serial,
            report_style=report_style or spec.report_style,
            manual_clock=self.manual_clock,
            persistent=persistent,
            signed_commands=bool(signed_commands),
        )
        if ams_units is not None:
            printer.firmware.set_ams_units([{"id": unit} for unit in range(ams_units)])
        self.printers[serial] = printer
        try:
            await printer.start()
        except BaseException:
            del self.printers[serial]
            await printer.close()
            raise
        self.announce(printer)
        return printer

    async def remove_printer(self, serial: str) -> None:
        """Stop a printer and forget it (its files too, unless it is one of the command line's)."""
        printer = self.printers.pop(serial)
        await printer.close()
        if not printer.persistent:
            shutil.rmtree(printer.directory, ignore_errors=True)

    async def add_command_line_printers(self, count: int, models: list[str]) -> None:
        """Start count printers on 127.0.0.2, .3, ... with serials and codes kept in the state dir."""
        saved_file = self.state_dir / "printers.json"
        saved: list[dict[str, str]] = json.loads(saved_file.read_text()) if saved_file.exists() else []
        wanted: list[dict[str, Any]] = []
        for index in range(count):
            spec = model_spec(models[index % len(models)])
            host = f"127.0.0.{index + 2}"
            entry = saved[index] if index < len(saved) and saved[index].get("model") == spec.name else None
            entry = entry or {
                "model": spec.name,
                "serial": spec.serial_prefix + "".join(str(secrets.randbelow(10)) for _ in range(9)),
                "name": f"Simulated {spec.name} {index + 1}",
                "access_code": f"{secrets.randbelow(10**8):08d}",
            }
            saved[index : index + 1] = [entry]
            wanted.append(
                {
                    **entry,
                    "host": host,
                    # The standard ports when free (so a LAN-style setup works), else any free port.
                    "mqtt_port": 8883 if port_is_free(host, 8883) else None,
                    "ftps_port": 990 if port_is_free(host, 990) else None,
                    "camera_port": 6000 if port_is_free(host, 6000) else None,
                }
            )
        saved_file.write_text(json.dumps(saved, indent=2))
        await asyncio.gather(*(self.add_printer(persistent=True, **printer) for printer in wanted))

    async def add_ottoeject(
        self,
        *,
        name: str | None = None,
        printers: list[str] | None = None,
        slots: int = DEFAULT_SLOTS,
        macro_seconds: float = DEFAULT_MACRO_SECONDS,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        trust_loopback: bool = True,
        persistent_id: int | None = None,
    ) -> SimulatedOttoEject:
        """Create and start an OttoEject (Klipper stand-in + Moonraker); raise ValueError for a bad argument.

        persistent_id: keep its files in the state dir under that id (the command line's OttoEjects).
        """
        printers = list(DEFAULT_PRINTERS) if printers is None else printers
        if not _is_loopback(host):
            raise ValueError("host must be a 127.x.x.x address")
        if not all(isinstance(p, str) and p.isascii() and p.isidentifier() for p in printers) or len(
            {p.upper() for p in printers}
        ) != len(printers):
            raise ValueError("printers must be distinct names of letters, digits and underscores")
        if isinstance(slots, bool) or not isinstance(slots, int) or not 0 <= slots <= 99:
            raise ValueError("slots must be an integer from 0 to 99")
        if isinstance(macro_seconds, bool) or not isinstance(macro_seconds, int | float) or macro_seconds < 0:
            raise ValueError("macro_seconds must be a number >= 0")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.isalnum()):
            raise ValueError("api_key must be letters and digits")
        if persistent_id is None:
            ident = self._next_ottoeject_id
            directory = self.state_dir / "ottoejects" / f"sim-{ident}-{secrets.token_hex(3)}"
        else:
            ident = persistent_id
            directory = self.state_dir / "ottoejects" / str(ident)
        if ident in self.ottoejects:
            raise ValueError(f"OttoEject {ident} exists")
        self._next_ottoeject_id = max(self._next_ottoeject_id, ident + 1)
        ottoeject = SimulatedOttoEject(
            ottoeject_id=ident,
            name=name or f"Simulated OttoEject {ident}",
            host=host,
            port=port or free_port(host),
            printers=[p.upper() for p in printers],
            slots=slots,
            macro_seconds=float(macro_seconds),
            api_key=api_key,
            trust_loopback=trust_loopback,
            directory=directory,
            persistent=persistent_id is not None,
        )
        self.ottoejects[ident] = ottoeject
        try:
            await ottoeject.start()
        except BaseException:
            del self.ottoejects[ident]
            await ottoeject.close()
            if not ottoeject.persistent:
                shutil.rmtree(ottoeject.directory, ignore_errors=True)
            raise
        return ottoeject

    async def remove_ottoeject(self, ident: int) -> None:
        """Stop an OttoEject and forget it (its files too, unless it is one of the command line's)."""
        ottoeject = self.ottoejects.pop(ident)
        await ottoeject.close()
        if not ottoeject.persistent:
            shutil.rmtree(ottoeject.directory, ignore_errors=True)

    async def add_command_line_ottoejects(
        self, count: int, printers: list[str], slots: int = DEFAULT_SLOTS
    ) -> None:
        """Start count OttoEjects on 127.0.2.1, .2, ... (port 7125 when free) serving printers.

        Names and API keys are kept in the state dir (Moonraker's database keeps the key too).
        """
        saved_file = self.state_dir / "ottoejects.json"
        saved: list[dict[str, Any]] = json.loads(saved_file.read_text()) if saved_file.exists() else []
        wanted: list[dict[str, Any]] = []
        for index in range(count):
            entry = saved[index] if index < len(saved) else {}
            entry = {
                "name": entry.get("name") or f"Simulated OttoEject {index + 1}",
                "api_key": entry.get("api_key"),
            }
            host = f"127.0.2.{index + 1}"
            wanted.append(
                {
                    **entry,
                    "persistent_id": index + 1,
                    "host": host,
                    "port": 7125 if port_is_free(host, 7125) else None,
                    "printers": printers,
                    "slots": slots,
                }
            )
        started = await asyncio.gather(*(self.add_ottoeject(**ottoeject) for ottoeject in wanted))
        saved[:count] = [{"name": o.name, "api_key": o.api_key} for o in started]
        saved_file.write_text(json.dumps(saved, indent=2))

    def start_background(self) -> None:
        """Start the realtime ticker (unless the clock is manual) and the SSDP announcer."""
        if not self.manual_clock:
            self._tasks.append(asyncio.create_task(self._tick()))
        if self.announce_port:
            self._tasks.append(asyncio.create_task(self._announce_forever()))

    async def close(self) -> None:
        """Stop every printer and background task."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(
            *(self.remove_printer(serial) for serial in list(self.printers)), return_exceptions=True
        )
        await asyncio.gather(
            *(self.remove_ottoeject(ident) for ident in list(self.ottoejects)), return_exceptions=True
        )

    async def _tick(self) -> None:
        """Realtime clock: once a real second, advance every printer by time_scale seconds, one report each."""
        loop = asyncio.get_running_loop()
        last = due = loop.time()
        while True:
            # Ticks keep to whole seconds from the start (the work of a tick does not push the next
            # one back), so that each printer reports once a second; a late tick is not made up.
            due = max(due + 1.0, loop.time())
            await asyncio.sleep(due - loop.time())
            now = loop.time()
            seconds, last = (now - last) * self.time_scale, now
            for printer in list(self.printers.values()):
                printer.firmware.advance(seconds, report_every=seconds)
            for ottoeject in list(self.ottoejects.values()):
                ottoeject.klipper.advance(seconds)

    async def _announce_forever(self) -> None:
        while True:
            await asyncio.sleep(ANNOUNCE_INTERVAL)
            for printer in list(self.printers.values()):
                self.announce(printer)

    def announce(self, printer: SimulatedPrinter) -> None:
        """Send one SSDP NOTIFY for an online printer (when announcements are on)."""
        if self.announce_port and printer.online:
            message = ssdp.notify_message(
                host=printer.host,
                serial=printer.serial,
                model_code=printer.spec.ssdp_code,
                name=printer.name,
                firmware=printer.spec.firmware,
            )
            ssdp.announce(message, printer.host, self.announce_port)


# --- control API ------------------------------------------------------------------------------


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise _error(web.HTTPBadRequest, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _error(web.HTTPBadRequest, "the body must be a JSON object")
    return body


def make_app(farm: Farm) -> web.Application:
    """Build the control API's aiohttp application."""
    routes = web.RouteTableDef()

    def printer_of(request: web.Request) -> SimulatedPrinter:
        printer = farm.printers.get(request.match_info["serial"])
        if printer is None:
            raise _error(web.HTTPNotFound, "no such printer")
        return printer

    def action(path: str) -> Callable[[Callable[[SimulatedPrinter, dict[str, Any]], Awaitable[Any]]], Any]:
        """Register POST /printers/{serial}/<path>: the handler gets the printer and the JSON body."""

        def register(handler: Callable[[SimulatedPrinter, dict[str, Any]], Awaitable[Any]]) -> Any:
            async def view(request: web.Request) -> web.Response:
                printer = printer_of(request)
                return web.json_response(await handler(printer, await _body(request)))

            routes.post(f"/printers/{{serial}}/{path}")(view)
            return handler

        return register

    @routes.get("/printers")
    async def list_printers(_: web.Request) -> web.Response:
        return web.json_response([printer.info() for printer in farm.printers.values()])

    @routes.post("/printers")
    async def create_printer(request: web.Request) -> web.Response:
        body = await _body(request)
        allowed = {
            "model",
            "serial",
            "name",
            "access_code",
            "host",
            "mqtt_port",
            "ftps_port",
            "camera_port",
            "report_style",
            "signed_commands",
            "ams_units",
        }
        if "model" not in body or set(body) - allowed:
            raise _error(web.HTTPBadRequest, f"expected 'model' and optionally {sorted(allowed - {'model'})}")
        if any(not isinstance(body.get(key, 1), int) for key in ("mqtt_port", "ftps_port", "camera_port")):
            raise _error(web.HTTPBadRequest, "ports must be integers")
        try:
            printer = await farm.add_printer(**body)
        except (ValueError, TypeError) as err:
            raise _error(web.HTTPBadRequest, str(err)) from None
        except (BrokerError, OSError) as err:  # a port in use, most likely
            raise _error(web.HTTPConflict, f"the printer could not start: {err}") from None
        return web.json_response(printer.info(), status=201)

    @routes.get("/printers/{serial}")
    async def get_printer(request: web.Request) -> web.Response:
        return web.json_response(printer_of(request).details())

    @routes.delete("/printers/{serial}")
    async def delete_printer(request: web.Request) -> web.Response:
        await farm.remove_printer(printer_of(request).serial)
        return web.Response(status=204)

    @routes.put("/printers/{serial}/files/{name}")
    async def put_file(request: web.Request) -> web.Response:
        printer = printer_of(request)
        name = request.match_info["name"]
        if name in (".", "..") or "/" in name:
            raise _error(web.HTTPBadRequest, "invalid file name")
        path = printer.storage_dir / name
        with path.open("wb") as file:  # local disk, simulator only
            async for chunk in request.content.iter_chunked(65536):
                file.write(chunk)
        return web.json_response({"name": name, "size": path.stat().st_size}, status=201)

    @action("advance")
    async def advance(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise _error(web.HTTPBadRequest, "'seconds' must be a number >= 0")
        printer.firmware.advance(seconds)
        return {"time": printer.firmware.now, "state": printer.firmware.state}

    @action("start")
    async def start(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("file")
        if not isinstance(name, str) or "/" in name or not (printer.storage_dir / name).is_file():
            raise _error(web.HTTPNotFound, "'file' must name a file on the printer's storage")
        if reason := printer.firmware.start_print(name):
            raise _error(web.HTTPConflict, reason)
        printer.firmware.report()
        return {"state": printer.firmware.state}

    @action("fail")
    async def fail(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        print_error = body.get("print_error", DEFAULT_FAILURE)
        if not isinstance(print_error, int):
            raise _error(web.HTTPBadRequest, "'print_error' must be an integer")
        progress = body.get("progress")
        if progress is not None and (not isinstance(progress, int) or not 0 <= progress <= 100):
            raise _error(web.HTTPBadRequest, "'progress' must be an integer from 0 to 100")
        if reason := printer.firmware.fail(print_error, progress):
            raise _error(web.HTTPConflict, reason)
        return {"state": printer.firmware.state}

    @action("offline")
    async def offline(printer: SimulatedPrinter, _: dict[str, Any]) -> dict[str, Any]:
        if printer.online:
            await printer.go_offline()
        return printer.info()

    @action("online")
    async def online(printer: SimulatedPrinter, _: dict[str, Any]) -> dict[str, Any]:
        if not printer.online:
            await printer.start()
            farm.announce(printer)
        return printer.info()

    @action("access_code")
    async def access_code(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        code = body.get("access_code")
        if not isinstance(code, str) or not code:
            raise _error(web.HTTPBadRequest, "'access_code' must be a non-empty string")
        await printer.set_access_code(code)
        return printer.info()

    @action("latency")
    async def latency(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise _error(web.HTTPBadRequest, "'seconds' must be a number >= 0")
        printer.firmware.latency = float(seconds)
        return printer.info()

    @action("certificate")
    async def certificate(printer: SimulatedPrinter, _: dict[str, Any]) -> dict[str, Any]:
        return {"fingerprint": await printer.replace_certificate()}

    @action("liveview")
    async def liveview(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        enabled, with_code = body.get("enabled"), body.get("with_code", False)
        if not isinstance(enabled, bool) or not isinstance(with_code, bool):
            raise _error(web.HTTPBadRequest, "'enabled' and 'with_code' must be true or false")
        try:
            await printer.set_liveview(enabled, with_code)
        except ValueError as err:
            raise _error(web.HTTPConflict, str(err)) from None
        return printer.info()

    @action("ams/units")
    async def ams_units(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        units = body.get("units")
        if not isinstance(units, list):
            raise _error(web.HTTPBadRequest, "'units' must be a list")
        try:
            printer.firmware.set_ams_units(units)
        except (ValueError, TypeError) as err:
            raise _error(web.HTTPBadRequest, str(err)) from None
        return {"ams": printer.firmware.state["ams"]}

    @action("ams/remove_unit")
    async def ams_remove_unit(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        if type(unit := body.get("unit")) is not int:
            raise _error(web.HTTPBadRequest, "'unit' must be an integer")
        try:
            printer.firmware.remove_ams_unit(unit)
        except LookupError as err:
            raise _error(web.HTTPNotFound, str(err)) from None
        return {"ams": printer.firmware.state["ams"]}

    @action("ams/tray")
    async def ams_tray(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        unit, slot, fields = body.get("unit"), body.get("slot"), body.get("fields")
        if type(unit) is not int or type(slot) is not int or not isinstance(fields, dict | None):
            raise _error(web.HTTPBadRequest, "'unit' and 'slot' must be integers, 'fields' an object or null")
        try:
            printer.firmware.set_tray(unit, slot, fields)
        except (LookupError, ValueError) as err:
            raise _error(web.HTTPNotFound, str(err)) from None
        return {"state": printer.firmware.state}

    @action("hms")
    async def hms(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        entries = body.get("hms")
        if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and all(type(entry.get(key)) is int for key in ("attr", "code"))
            for entry in entries
        ):
            raise _error(web.HTTPBadRequest, "'hms' must be a list of {attr, code} integers")
        printer.firmware.set_hms(entries)
        return {"hms": entries}

    @action("refuse")
    async def refuse(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        command, reason = body.get("command"), body.get("reason")
        if not isinstance(command, str) or not isinstance(reason, str | None):
            raise _error(web.HTTPBadRequest, "'command' must be a string, 'reason' a string or null")
        if reason is None:
            printer.firmware.refusals.pop(command, None)
        else:
            printer.firmware.refusals[command] = reason
        return {"refusals": printer.firmware.refusals}

    @action("camera/fault")
    async def camera_fault(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        if printer.camera is None:
            raise _error(web.HTTPConflict, "this model has no JPEG camera")
        if (fault := body.get("fault")) not in (None, *CAMERA_FAULTS):
            raise _error(web.HTTPBadRequest, f"'fault' must be null or one of {list(CAMERA_FAULTS)}")
        printer.camera.fault = fault
        return printer.info()

    @action("foreign_answer")
    async def foreign_answer(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        command, sequence_id = body.get("command"), body.get("sequence_id")
        result, reason = body.get("result", "success"), body.get("reason", "")
        if not all(isinstance(value, str) for value in (command, sequence_id, result, reason)):
            raise _error(
                web.HTTPBadRequest, "'command', 'sequence_id', 'result' and 'reason' must be strings"
            )
        if not printer.online:
            raise _error(web.HTTPConflict, "the printer is offline")
        return {"published": printer.firmware.answer_another_client(command, sequence_id, result, reason)}

    @action("ftps/break_upload")
    async def break_upload(printer: SimulatedPrinter, body: dict[str, Any]) -> dict[str, Any]:
        after_bytes, control = body.get("after_bytes"), body.get("control", "reply")
        if isinstance(after_bytes, bool) or not isinstance(after_bytes, int) or after_bytes < 0:
            raise _error(web.HTTPBadRequest, "'after_bytes' must be an integer >= 0")
        if control not in ("reply", "close"):
            raise _error(web.HTTPBadRequest, "'control' must be 'reply' (426) or 'close'")
        printer.ftps.upload_fault = UploadFault(after_bytes, control)
        return {"after_bytes": after_bytes, "control": control}

    @action("broker/restart")
    async def restart_broker(printer: SimulatedPrinter, _: dict[str, Any]) -> dict[str, Any]:
        if not printer.online:
            raise _error(web.HTTPConflict, "the printer is offline")
        await printer.restart_broker()
        return printer.info()

    # --- OttoEjects ---

    def ottoeject_of(request: web.Request) -> SimulatedOttoEject:
        try:
            ottoeject = farm.ottoejects.get(int(request.match_info["ident"]))
        except ValueError:
            ottoeject = None
        if ottoeject is None:
            raise _error(web.HTTPNotFound, "no such OttoEject")
        return ottoeject

    def ottoeject_action(
        path: str,
    ) -> Callable[[Callable[[SimulatedOttoEject, dict[str, Any]], Awaitable[Any]]], Any]:
        """Register POST /ottoejects/{ident}/<path>: the handler gets the OttoEject and the JSON body."""

        def register(handler: Callable[[SimulatedOttoEject, dict[str, Any]], Awaitable[Any]]) -> Any:
            async def view(request: web.Request) -> web.Response:
                ottoeject = ottoeject_of(request)
                try:
                    return web.json_response(await handler(ottoeject, await _body(request)))
                except OttoEjectError as err:
                    raise _error(web.HTTPConflict, str(err)) from None

            routes.post(f"/ottoejects/{{ident}}/{path}")(view)
            return handler

        return register

    @routes.get("/ottoejects")
    async def list_ottoejects(_: web.Request) -> web.Response:
        return web.json_response([ottoeject.info() for ottoeject in farm.ottoejects.values()])

    @routes.post("/ottoejects")
    async def create_ottoeject(request: web.Request) -> web.Response:
        body = await _body(request)
        allowed = {"name", "printers", "slots", "macro_seconds", "api_key", "host", "port", "trust_loopback"}
        if set(body) - allowed:
            raise _error(web.HTTPBadRequest, f"expected only {sorted(allowed)}")
        if not isinstance(body.get("printers", []), list):
            raise _error(web.HTTPBadRequest, "'printers' must be a list of names")
        if not isinstance(body.get("port", 1), int) or not isinstance(body.get("trust_loopback", True), bool):
            raise _error(web.HTTPBadRequest, "'port' must be an integer and 'trust_loopback' a boolean")
        try:
            ottoeject = await farm.add_ottoeject(**body)
        except (ValueError, TypeError) as err:
            raise _error(web.HTTPBadRequest, str(err)) from None
        except (OttoEjectError, OSError) as err:
            raise _error(web.HTTPConflict, f"the OttoEject could not start: {err}") from None
        return web.json_response(ottoeject.info(), status=201)

    @routes.get("/ottoejects/{ident}")
    async def get_ottoeject(request: web.Request) -> web.Response:
        return web.json_response(ottoeject_of(request).details())

    @routes.delete("/ottoejects/{ident}")
    async def delete_ottoeject(request: web.Request) -> web.Response:
        await farm.remove_ottoeject(ottoeject_of(request).id)
        return web.Response(status=204)

    @ottoeject_action("advance")
    async def advance_ottoeject(ottoeject: SimulatedOttoEject, body: dict[str, Any]) -> dict[str, Any]:
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise _error(web.HTTPBadRequest, "'seconds' must be a number >= 0")
        ottoeject.klipper.advance(float(seconds))
        klipper = ottoeject.klipper
        return {"time": klipper.now, "running": klipper.running, "idle_timeout": klipper.idle_state}

    @ottoeject_action("klippy")
    async def klippy(ottoeject: SimulatedOttoEject, body: dict[str, Any]) -> dict[str, Any]:
        state = body.get("state")
        if not isinstance(state, str):
            raise _error(web.HTTPBadRequest, "'state' must be a string")
        try:
            await ottoeject.set_klippy(state)
        except ValueError as err:
            raise _error(web.HTTPBadRequest, str(err)) from None
        return ottoeject.details()

    @ottoeject_action("moonraker/stop")
    async def stop_moonraker(ottoeject: SimulatedOttoEject, _: dict[str, Any]) -> dict[str, Any]:
        await ottoeject.stop_moonraker()
        return ottoeject.details()

    @ottoeject_action("moonraker/start")
    async def start_moonraker(ottoeject: SimulatedOttoEject, _: dict[str, Any]) -> dict[str, Any]:
        await ottoeject.start_moonraker()
        return ottoeject.details()

    @ottoeject_action("macro_seconds")
    async def macro_seconds(ottoeject: SimulatedOttoEject, body: dict[str, Any]) -> dict[str, Any]:
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise _error(web.HTTPBadRequest, "'seconds' must be a number >= 0")
        ottoeject.klipper.set_macro_seconds(float(seconds))
        return ottoeject.details()

    app = web.Application()
    app.add_routes(routes)
    return app


# --- process ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--printers", type=int, help="printers to start (default: one per model)")
    parser.add_argument("--models", default="P1S", help="comma-separated models, cycled (default: P1S)")
    parser.add_argument("--clock", choices=("manual", "realtime"), default="realtime")
    parser.add_argument("--time-scale", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument(
        "--announce-port", type=int, default=2021, help="SSDP datagrams go to 127.0.0.1:PORT; 0 disables"
    )
    parser.add_argument("--control-host", default="127.0.0.1")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--state-dir", type=Path, help="where serials, certificates and stored files persist")
    parser.add_argument(
        "--ottoejects",
        type=int,
        default=0,
        help="OttoEjects to start (Moonraker + Klipper stand-in), on 127.0.2.x port 7125 when free",
    )
    parser.add_argument(
        "--ottoeject-slots",
        type=int,
        default=DEFAULT_SLOTS,
        help=f"storage slots of each OttoEject (STORE_TO_SLOT_1..n; default {DEFAULT_SLOTS})",
    )
    args = parser.parse_args(argv)
    if args.printers is not None and not 0 <= args.printers <= 250:
        parser.error("--printers must be between 0 and 250 (one 127.0.0.x address each)")
    if not _is_loopback(args.control_host):
        parser.error("--control-host must be a 127.x.x.x address")
    if not 0 <= args.ottoejects <= 250:
        parser.error("--ottoejects must be between 0 and 250 (one 127.0.2.x address each)")
    if not 1 <= args.ottoeject_slots <= 100:
        parser.error("--ottoeject-slots must be between 1 and 100")
    return args


async def run(args: argparse.Namespace) -> None:
    """Run the farm until SIGTERM or SIGINT, printing the ready line on stdout."""
    temporary = args.state_dir is None
    state_dir: Path = Path(tempfile.mkdtemp(prefix="print-farm-sim-")) if temporary else args.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    farm = Farm(
        state_dir,
        manual_clock=args.clock == "manual",
        time_scale=args.time_scale,
        announce_port=args.announce_port,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    runner = web.AppRunner(make_app(farm), access_log=None)
    try:
        models = [model.strip() for model in args.models.split(",") if model.strip()]
        await farm.add_command_line_printers(len(models) if args.printers is None else args.printers, models)
        if args.ottoejects:
            # EJECT_FROM_P1, P2, ...: one per command-line printer (P1 and P2 when there are none).
            count = len(farm.printers)
            names = [f"P{index + 1}" for index in range(count)] if count else list(DEFAULT_PRINTERS)
            await farm.add_command_line_ottoejects(args.ottoejects, names, args.ottoeject_slots)
        await runner.setup()
        site = web.TCPSite(runner, args.control_host, args.control_port)
        await site.start()
        host, port = runner.addresses[0][:2]
        farm.start_background()
        ready = {
            "control": f"http://{host}:{port}",
            "printers": [p.info() for p in farm.printers.values()],
            "ottoejects": [o.info() for o in farm.ottoejects.values()],
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stopping.wait()
    finally:
        await runner.cleanup()
        await farm.close()
        if temporary:
            shutil.rmtree(state_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m simulator`."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="simulator %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parse_args(argv)))
