"""Start the simulator as a subprocess and drive it through its control API (for tests and scripts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
import json
from pathlib import Path
import select
import subprocess
import sys
from types import TracebackType
from typing import Any, Self
import urllib.request

import aiohttp

from .broker import dying_with_parent

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SimulatorError(Exception):
    """The control API answered with an error."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the HTTP status and the API's error text."""
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class SimulatorControl:
    """Async client of the control API at base_url (e.g. "http://127.0.0.1:40123")."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        """Use the given session, or make (and later close) one of our own."""
        self.base_url = base_url.rstrip("/")
        self._own_session = session is None
        self._session = session or aiohttp.ClientSession()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if it is ours."""
        if self._own_session:
            await self._session.close()

    async def _call(self, method: str, path: str, body: Any = None, data: bytes | None = None) -> Any:
        async with self._session.request(method, self.base_url + path, json=body, data=data) as response:
            text = await response.text()
            payload = json.loads(text) if text else None
            if response.status >= 400:
                raise SimulatorError(
                    response.status, payload.get("error", text) if isinstance(payload, dict) else text
                )
            return payload

    async def printers(self) -> list[dict[str, Any]]:
        """Return every printer's connection info."""
        result: list[dict[str, Any]] = await self._call("GET", "/printers")
        return result

    async def add_printer(self, model: str = "P1S", **options: Any) -> dict[str, Any]:
        """Create a printer.

        Options: serial, name, access_code, host, mqtt_port, ftps_port, camera_port, report_style,
        signed_commands, ams_units (0-4 stock AMS units; e.g. model="X1C", ams_units=4).
        """
        result: dict[str, Any] = await self._call("POST", "/printers", {"model": model, **options})
        return result

    async def printer(self, serial: str) -> dict[str, Any]:
        """Return info, live state, files, commands received and G-code lines of one printer."""
        result: dict[str, Any] = await self._call("GET", f"/printers/{serial}")
        return result

    async def remove_printer(self, serial: str) -> None:
        """Stop and forget a printer."""
        await self._call("DELETE", f"/printers/{serial}")

    async def _action(self, serial: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/printers/{serial}/{action}", body or {})
        return result

    async def advance(self, serial: str, seconds: float) -> dict[str, Any]:
        """Move the printer's simulated clock forward; its reports for the interval are published at once."""
        return await self._action(serial, "advance", {"seconds": seconds})

    async def fail(
        self, serial: str, print_error: int | None = None, progress: int | None = None
    ) -> dict[str, Any]:
        """Fail the current print (FAILED with print_error; its report carrying `progress` when given)."""
        body: dict[str, Any] = {} if print_error is None else {"print_error": print_error}
        if progress is not None:
            body["progress"] = progress
        return await self._action(serial, "fail", body)

    async def offline(self, serial: str) -> dict[str, Any]:
        """Take the printer off the network: broker and FTPS stop, connections close."""
        return await self._action(serial, "offline")

    async def online(self, serial: str) -> dict[str, Any]:
        """Bring the printer back on the same ports with the same certificate."""
        return await self._action(serial, "online")

    async def set_access_code(self, serial: str, access_code: str) -> dict[str, Any]:
        """Change the access code; new logins with the old one are refused."""
        return await self._action(serial, "access_code", {"access_code": access_code})

    async def set_latency(self, serial: str, seconds: float) -> dict[str, Any]:
        """Delay every command's handling and acknowledgement by seconds of real time."""
        return await self._action(serial, "latency", {"seconds": seconds})

    async def replace_certificate(self, serial: str) -> str:
        """Give the printer a new certificate (same CN); return its SHA-256 fingerprint."""
        return str((await self._action(serial, "certificate"))["fingerprint"])

    async def set_camera_fault(self, serial: str, fault: str | None) -> dict[str, Any]:
        """Make the next camera logins get nothing, no JPEG, a close or a late handshake (see FAULTS)."""
        return await self._action(serial, "camera/fault", {"fault": fault})

    async def set_liveview(self, serial: str, enabled: bool, *, with_code: bool = False) -> dict[str, Any]:
        """Turn an X1's, X1E's or H2's LAN liveview on or off (its ipcam.rtsp_url, with bblp:<code>@ if with_code).

        While it is on, the printer's RTSPS camera listens on its rtsp_port, where the url points.
        """
        return await self._action(serial, "liveview", {"enabled": enabled, "with_code": with_code})

    async def set_ams_units(self, serial: str, units: list[dict[str, Any]]) -> dict[str, Any]:
        """Replace the printer's AMS units: each {id, kind?, trays?, humidity?, humidity_raw?, temp?}.

        kind: "ams", "ams_lite", "ams_2_pro" or "ams_ht" (ids 128-135); trays: raw tray keys per slot,
        None for an empty slot (default: stock spools). Reported as the model does: a P1 or A1 delta
        names only what changed, an X1 sends the whole report.
        """
        return await self._action(serial, "ams/units", {"units": units})

    async def add_ams_unit(self, serial: str, unit: dict[str, Any]) -> dict[str, Any]:
        """Plug in one more AMS unit ({id, kind?, trays?...}), keeping the others as they are."""
        state = (await self.printer(serial))["state"]
        kept = [
            {
                "id": int(old["id"]),
                "kind": {"1": "ams", "2": "ams_lite", "3": "ams_2_pro", "4": "ams_ht"}.get(
                    str(old.get("info", ""))[-1:], "ams_ht" if int(old["id"]) >= 128 else "ams"
                ),
                "trays": [
                    {k: v for k, v in tray.items() if k != "id"} if tray.get("tray_type") else None
                    for tray in old["tray"]
                ],
            }
            for old in state["ams"]["ams"]
        ]
        return await self.set_ams_units(serial, [*kept, unit])

    async def remove_ams_unit(self, serial: str, unit: int) -> dict[str, Any]:
        """Unplug one AMS unit."""
        return await self._action(serial, "ams/remove_unit", {"unit": unit})

    async def set_tray(
        self, serial: str, unit: int, slot: int, fields: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Load a tray with raw report keys (tray_type, tray_color, remain, tray_uuid...) or empty it (None).

        A loaded tray keeps the keys not given; an empty one is filled from a stock spool first.
        Unit 254 is the external holder.
        """
        return await self._action(serial, "ams/tray", {"unit": unit, "slot": slot, "fields": fields})

    async def set_hms(self, serial: str, entries: list[dict[str, int]]) -> dict[str, Any]:
        """Make the printer report these HMS entries ({attr, code})."""
        return await self._action(serial, "hms", {"hms": entries})

    async def refuse(self, serial: str, command: str, reason: str | None) -> dict[str, Any]:
        """Make the printer answer a command (ledctrl, print_speed...) "failed" with reason; None: obey again."""
        return await self._action(serial, "refuse", {"command": command, "reason": reason})

    async def restart_broker(self, serial: str) -> dict[str, Any]:
        """Restart the printer's mosquitto only."""
        return await self._action(serial, "broker/restart")

    async def foreign_answer(
        self, serial: str, command: str, sequence_id: str, result: str = "success", reason: str = ""
    ) -> dict[str, Any]:
        """Make the printer answer another LAN client's command (its echo, on the report topic)."""
        body = {"command": command, "sequence_id": sequence_id, "result": result, "reason": reason}
        return await self._action(serial, "foreign_answer", body)

    async def break_next_upload(
        self, serial: str, after_bytes: int, control: str = "reply"
    ) -> dict[str, Any]:
        """Cut the printer's next FTPS upload after after_bytes bytes (data connection reset).

        control "reply": the control connection answers 426; "close": it closes without an answer.
        The partial file stays on storage, as a printer leaves it.
        """
        return await self._action(
            serial, "ftps/break_upload", {"after_bytes": after_bytes, "control": control}
        )

    async def start_print(self, serial: str, file: str) -> dict[str, Any]:
        """Start printing a stored file as if from the printer's screen."""
        return await self._action(serial, "start", {"file": file})

    async def put_file(self, serial: str, name: str, data: bytes) -> dict[str, Any]:
        """Place a file on the printer's storage directly."""
        result: dict[str, Any] = await self._call("PUT", f"/printers/{serial}/files/{name}", data=data)
        return result

    # --- OttoEjects (a real Moonraker in front of a Klipper stand-in) ---

    async def ottoejects(self) -> list[dict[str, Any]]:
        """Return every OttoEject's connection info."""
        result: list[dict[str, Any]] = await self._call("GET", "/ottoejects")
        return result

    async def add_ottoeject(self, **options: Any) -> dict[str, Any]:
        """Create an OttoEject and return its info once Moonraker reports Klipper ready.

        Options: name, printers, slots, macro_seconds, api_key, host, port, trust_loopback.
        """
        result: dict[str, Any] = await self._call("POST", "/ottoejects", options)
        return result

    async def ottoeject(self, ident: int) -> dict[str, Any]:
        """Return info, Klipper's state, the running macro, the clock and every script received."""
        result: dict[str, Any] = await self._call("GET", f"/ottoejects/{ident}")
        return result

    async def remove_ottoeject(self, ident: int) -> None:
        """Stop an OttoEject (Moonraker and Klipper) and forget it."""
        await self._call("DELETE", f"/ottoejects/{ident}")

    async def _ottoeject_action(
        self, ident: int, action: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/ottoejects/{ident}/{action}", body or {})
        return result

    async def advance_ottoeject(self, ident: int, seconds: float) -> dict[str, Any]:
        """Move the OttoEject's simulated clock forward: macros whose time has come end."""
        return await self._ottoeject_action(ident, "advance", {"seconds": seconds})

    async def set_klippy(self, ident: int, state: str) -> dict[str, Any]:
        """Put Klipper in a state and return once Moonraker reports it.

        States: ready, startup, shutdown, error, disconnected, never_connected.
        """
        return await self._ottoeject_action(ident, "klippy", {"state": state})

    async def stop_moonraker(self, ident: int) -> dict[str, Any]:
        """Stop the OttoEject's Moonraker: its port stops answering."""
        return await self._ottoeject_action(ident, "moonraker/stop")

    async def start_moonraker(self, ident: int) -> dict[str, Any]:
        """Start the OttoEject's Moonraker again (same port, same API key)."""
        return await self._ottoeject_action(ident, "moonraker/start")

    async def set_macro_seconds(self, ident: int, seconds: float) -> dict[str, Any]:
        """Change how many simulated seconds each macro runs."""
        return await self._ottoeject_action(ident, "macro_seconds", {"seconds": seconds})


def _command(
    printers: int | None,
    models: str,
    clock: str,
    time_scale: float,
    announce_port: int,
    state_dir: Path | None,
    ottoejects: int = 0,
) -> list[str]:
    command = [sys.executable, "-m", "simulator", "--models", models, "--clock", clock]
    command += ["--time-scale", str(time_scale), "--announce-port", str(announce_port)]
    if printers is not None:
        command += ["--printers", str(printers)]
    if ottoejects:
        command += ["--ottoejects", str(ottoejects)]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    return command


@dataclass(slots=True)
class RunningSimulator:
    """A simulator subprocess started by start_simulator."""

    process: asyncio.subprocess.Process
    control: SimulatorControl
    url: str
    printers: list[dict[str, Any]]
    ottoejects: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def start_simulator(
    *,
    printers: int | None = 0,
    models: str = "P1S",
    clock: str = "manual",
    time_scale: float = 60.0,
    announce_port: int = 0,
    state_dir: Path | None = None,
    timeout: float = 30.0,
    ottoejects: int = 0,
) -> AsyncIterator[RunningSimulator]:
    """Run `python -m simulator` (manual clock, no printers, no SSDP by default) and stop it by pid on exit."""
    process = await asyncio.create_subprocess_exec(
        # SIGTERM if the starting thread (the event loop's, which outlives the test) dies.
        *dying_with_parent(
            _command(printers, models, clock, time_scale, announce_port, state_dir, ottoejects)
        ),
        cwd=_PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator exited ({await process.wait()}) before it was ready")
        ready = json.loads(line)
        async with SimulatorControl(ready["control"]) as control:
            yield RunningSimulator(
                process, control, ready["control"], ready["printers"], ready.get("ottoejects", [])
            )
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


class SimulatorProcess:
    """Blocking counterpart of start_simulator, for scripts: `with SimulatorProcess() as sim: sim.ready`."""

    def __init__(
        self,
        *,
        printers: int | None = None,
        models: str = "P1S",
        clock: str = "realtime",
        time_scale: float = 60.0,
        announce_port: int = 2021,
        state_dir: Path | None = None,
        ottoejects: int = 0,
    ) -> None:
        """Remember the options; start() runs the process."""
        self._command = _command(printers, models, clock, time_scale, announce_port, state_dir, ottoejects)
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """Start the simulator and return its ready line (control URL and printers)."""
        self.process = subprocess.Popen(
            # SIGTERM when the starting thread dies: call start() from a thread that outlives the use.
            dying_with_parent(self._command),
            cwd=_PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            self.stop()
            raise TimeoutError("the simulator did not get ready in time")
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the simulator exited before it was ready")
        self.ready = json.loads(line)
        return self.ready

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API and return the decoded answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.ready["control"] + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def stop(self) -> None:
        """Stop the simulator by pid (SIGTERM, then SIGKILL after 15 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
