"""A stand-in for Klipper's API socket, enough for a real Moonraker to drive an OttoEject.

Klipper's API server is a unix socket carrying JSON messages, each ended by the byte 0x03.
Requests are `{"id", "method", "params"}`; replies `{"id", "result"}` or
`{"id", "error": {"error", "message"}}`; subscriptions are pushed as the subscriber's response
template with `params` added. Moonraker calls, at connection: `info` (until the state is not
"startup"), `list_endpoints`, `objects/subscribe` (webhooks, then what its components want),
`gcode/subscribe_output`, `objects/list`, `objects/query` and `register_remote_method`; later
whatever its HTTP clients ask (`objects/query`, `gcode/script`, `emergency_stop`, ...).

The OttoEject's macros (`OTTOEJECT_HOME`, `PARK_OTTOEJECT`, `EJECT_FROM_<printer>`,
`LOAD_ONTO_<printer>`, `STORE_TO_SLOT_<n>`, `GRAB_FROM_SLOT_<n>`) each run for `macro_seconds` of
the simulated clock, which moves only through `advance`. A `gcode/script` is answered when its
last command has run, as Klipper does; scripts queue behind a running one (Klipper's G-code mutex).
As on Klipper, idle_timeout leaves "Printing" a moment after the answer (IDLE_LAG on the clock,
when the last move has run), so a client that waits for the answer alone sees the device busy.
"""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass, field
import json
import logging
import os
from pathlib import Path
import socket
import sys
import time
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

ETX: Final = b"\x03"
SOFTWARE_VERSION: Final = "v0.13.0-sim"
STATES: Final = ("ready", "startup", "shutdown", "error")
READY_MESSAGE: Final = "Printer is ready"
STARTUP_MESSAGE: Final = "Printer is not ready\nThe klippy host software is attempting to connect."
ERROR_MESSAGE: Final = (
    "Simulated configuration error\n\nOnce the underlying issue is corrected, use the "
    '"RESTART" command to reload the config and restart the host software.\nPrinter is halted\n'
)
SHUTDOWN_MESSAGE: Final = (
    "Shutdown due to webhooks request\nOnce the underlying issue is corrected, use the\n"
    '"FIRMWARE_RESTART" command to reset the firmware, reload the\nconfig, and restart the host software.\n'
    "Printer is shutdown\n"
)
IDLE_TIMEOUT: Final = 600.0  # simulated seconds from Ready to Idle, Klipper's default
IDLE_LAG: Final = 0.5  # simulated seconds from a script's answer to idle_timeout leaving "Printing"
ENDPOINTS: Final = (
    "list_endpoints",
    "info",
    "emergency_stop",
    "register_remote_method",
    "objects/list",
    "objects/query",
    "objects/subscribe",
    "gcode/help",
    "gcode/script",
    "gcode/restart",
    "gcode/firmware_restart",
    "gcode/subscribe_output",
)
BUILTIN_COMMANDS: Final = {
    "RESTART": "Reload config file and restart host software",
    "FIRMWARE_RESTART": "Restart firmware, host, and reload config",
    "M112": "Emergency stop",
    "STATUS": "Report the printer status",
    "HELP": "Report the list of available extended G-Code commands",
}


def ottoeject_macros(printers: list[str], slots: int) -> list[str]:
    """Return the macro names of an OttoEject serving printers and with slots storage slots."""
    names = ["OTTOEJECT_HOME", "PARK_OTTOEJECT"]
    for printer in printers:
        names += [f"EJECT_FROM_{printer}", f"LOAD_ONTO_{printer}"]
    for slot in range(1, slots + 1):
        names += [f"STORE_TO_SLOT_{slot}", f"GRAB_FROM_SLOT_{slot}"]
    return names


class KlipperRequestError(Exception):
    """An error reply to one request (Klipper's WebRequestError)."""


@dataclass(slots=True, eq=False)  # hashed by identity
class _Connection:
    """One client of the API socket (Moonraker)."""

    writer: asyncio.StreamWriter
    subscription: dict[str, list[str] | None] = field(default_factory=dict)
    subscription_template: dict[str, Any] = field(default_factory=dict)
    last_sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    output_template: dict[str, Any] | None = None
    remote_methods: set[str] = field(default_factory=set)

    def send(self, message: dict[str, Any]) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(json.dumps(message).encode() + ETX)


@dataclass(slots=True)
class _Script:
    """A gcode/script request: its commands run one after another on the simulated clock."""

    connection: _Connection
    request_id: Any
    commands: deque[str]
    ends_at: float | None = None  # end of the macro running now
    current: str | None = None


class KlipperStandIn:
    """Klipper as Moonraker sees it through the API socket, with an OttoEject's macros."""

    def __init__(
        self,
        socket_path: Path,
        *,
        macros: list[str],
        macro_seconds: float,
        config_file: Path,
        log_file: Path,
        klipper_path: Path,
    ) -> None:
        """Prepare the stand-in; `listen` opens the socket.

        klipper_path is reported as Klipper's source directory (Moonraker serves its config/ and docs/).
        """
        self.socket_path = socket_path
        self.macros = list(macros)
        self.macro_seconds = macro_seconds
        self.config_file = config_file
        self.log_file = log_file
        self.klipper_path = klipper_path
        self.state = "ready"
        self.state_message = READY_MESSAGE
        self.now = 0.0  # the simulated clock, in seconds
        self.scripts: list[dict[str, Any]] = []  # every gcode/script received, in order
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._restarts: set[asyncio.Task[None]] = set()
        self._queue: deque[_Script] = deque()
        self._running: _Script | None = None
        self._reset_machine()

    def _reset_machine(self) -> None:
        """The state a (re)started Klipper begins with."""
        self._queue.clear()
        self._running = None
        self.idle_state = "Idle"
        self._printing_since = 0.0
        self._ready_since: float | None = None
        self._idle_at: float | None = None  # when idle_timeout leaves "Printing" (the last move ran)
        self.homed_axes = ""
        self.position = [0.0, 0.0, 0.0, 0.0]

    # --- socket -------------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        """Whether the API socket accepts connections (Klipper is running)."""
        return self._server is not None

    @property
    def connected(self) -> bool:
        """Whether a client (Moonraker) is connected."""
        return bool(self._connections)

    @property
    def running(self) -> str | None:
        """The macro or command running now, if any."""
        return self._running.current if self._running else None

    async def listen(self, state: str = "ready") -> None:
        """Start Klipper: open the API socket, in the given state."""
        if self._server is not None:
            return
        self._set_state(state)
        self._reset_machine()
        self.socket_path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.socket_path), limit=20 * 1024 * 1024
        )

    async def stop_listening(self) -> None:
        """Stop Klipper: close every connection and the socket; reconnects find no socket."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._drop_connections()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self.socket_path.unlink(missing_ok=True)
        self._reset_machine()

    async def restart(self, state: str = "ready") -> None:
        """Restart the host software as RESTART does: connections close, Moonraker reconnects."""
        await self._drop_connections()
        self._reset_machine()
        self._set_state(state)

    def _restart_soon(self) -> None:
        """Restart after the reply that asked for it has been sent."""
        task = asyncio.get_running_loop().create_task(self.restart("ready"))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _drop_connections(self) -> None:
        connections, self._connections = list(self._connections), set()
        for connection in connections:
            connection.writer.close()
        for connection in connections:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.writer.wait_closed(), 2)
        handlers, self._handlers = list(self._handlers), set()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def close(self) -> None:
        """Stop for good."""
        await self.stop_listening()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = _Connection(writer)
        self._connections.add(connection)
        try:
            while True:
                try:
                    data = await reader.readuntil(ETX)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                try:
                    request = json.loads(data[:-1])
                except ValueError:
                    _LOGGER.warning("klipper stand-in: undecodable request %r", data[:200])
                    continue
                self._handle(connection, request)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(connection)
            self._handlers.discard(task)
            self._forget_connection(connection)
            writer.close()

    def _forget_connection(self, connection: _Connection) -> None:
        """A client left: its requests are dropped (their commands still run, as in Klipper)."""
        for script in [self._running, *self._queue]:
            if script is not None and script.connection is connection:
                script.request_id = None

    # --- requests -----------------------------------------------------------------------------

    def _handle(self, connection: _Connection, request: Any) -> None:
        if not isinstance(request, dict):
            return
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params") or {}
        try:
            if not isinstance(method, str) or not isinstance(params, dict):
                raise KlipperRequestError("Invalid request")
            if method == "gcode/script":
                script = params.get("script")
                if not isinstance(script, str):
                    raise KlipperRequestError("Invalid argument")
                self._gcode_script(connection, request_id, script)
                return  # answered when it has run
            result = self._dispatch(connection, method, params)
        except KlipperRequestError as err:
            connection.send({"id": request_id, "error": {"error": "WebRequestError", "message": str(err)}})
            return
        connection.send({"id": request_id, "result": result})

    def _dispatch(self, connection: _Connection, method: str, params: dict[str, Any]) -> Any:
        if method == "info":
            return self._info()
        if method == "list_endpoints":
            return {"endpoints": list(ENDPOINTS)}
        if method == "objects/list":
            return {"objects": self._object_names()}
        if method in ("objects/query", "objects/subscribe"):
            objects = params.get("objects")
            if not isinstance(objects, dict) or any(
                value is not None and not isinstance(value, list) for value in objects.values()
            ):
                raise KlipperRequestError("Invalid argument")
            status = {name: self._filtered(name, fields) for name, fields in objects.items()}
            if method == "objects/subscribe":
                connection.subscription = dict(objects)
                connection.subscription_template = dict(params.get("response_template") or {})
                connection.last_sent = {name: dict(values) for name, values in status.items()}
            return {"eventtime": self._eventtime(), "status": status}
        if method == "gcode/subscribe_output":
            connection.output_template = dict(params.get("response_template") or {})
            return {}
        if method == "register_remote_method":
            if not isinstance(params.get("remote_method"), str):
                raise KlipperRequestError("Invalid argument")
            connection.remote_methods.add(params["remote_method"])
            return {}
        if method == "gcode/help":
            helps = dict(BUILTIN_COMMANDS)
            if self.state == "ready":
                helps.update(dict.fromkeys(self.macros, "G-Code macro"))
            return helps
        if method == "emergency_stop":
            self.shutdown("Shutdown due to webhooks request")
            return {}
        if method in ("gcode/restart", "gcode/firmware_restart"):
            self._restart_soon()
            return {}
        raise KlipperRequestError(f"No registered endpoint '{method}'")

    def _info(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "state_message": self.state_message,
            "hostname": socket.gethostname(),
            "klipper_path": str(self.klipper_path),
            "python_path": sys.executable,
            "process_id": os.getpid(),
            "user_id": os.getuid(),
            "group_id": os.getgid(),
            "log_file": str(self.log_file),
            "config_file": str(self.config_file),
            "software_version": SOFTWARE_VERSION,
            "cpu_info": "simulated OttoEject",
            "app": "Klipper",
        }

    # --- printer objects ----------------------------------------------------------------------

    def _object_names(self) -> list[str]:
        names = ["webhooks", "configfile"]
        if self.state == "error":  # a config error leaves the printer objects unloaded
            return names
        names += ["mcu", "gcode_move", "toolhead", "idle_timeout", "print_stats"]
        return names + [f"gcode_macro {macro}" for macro in self.macros]

    def _status_of(self, name: str) -> dict[str, Any] | None:
        if name == "webhooks":
            return {"state": self.state, "state_message": self.state_message}
        if name not in self._object_names():
            return None
        if name == "configfile":
            config = {f"gcode_macro {macro}": {"gcode": f"M118 {macro}"} for macro in self.macros}
            return {"config": config, "settings": config, "save_config_pending": False, "warnings": []}
        if name == "mcu":
            return {"mcu_version": SOFTWARE_VERSION, "mcu_build_versions": "", "last_stats": {}}
        if name == "gcode_move":
            return {"gcode_position": list(self.position), "absolute_coordinates": True, "speed_factor": 1.0}
        if name == "toolhead":
            return {
                "homed_axes": self.homed_axes,
                "position": list(self.position),
                "print_time": self.now,
                "estimated_print_time": self.now,
                "max_velocity": 300.0,
                "max_accel": 3000.0,
            }
        if name == "idle_timeout":
            printing_time = self.now - self._printing_since if self.idle_state == "Printing" else 0.0
            return {"state": self.idle_state, "printing_time": printing_time}
        if name == "print_stats":
            return {
                "filename": "",
                "total_duration": 0.0,
                "print_duration": 0.0,
                "filament_used": 0.0,
                "state": "standby",
                "message": "",
                "info": {"total_layer": None, "current_layer": None},
            }
        return {}  # gcode_macro <NAME>: no variables

    def _filtered(self, name: str, fields: list[str] | None) -> dict[str, Any]:
        status = self._status_of(name)
        if status is None:
            return {}
        if fields is None:
            return status
        return {key: value for key, value in status.items() if key in fields}

    def _eventtime(self) -> float:
        return time.monotonic()

    def _push_status(self) -> None:
        """Send each subscriber the fields that changed since its last update."""
        for connection in list(self._connections):
            if not connection.subscription:
                continue
            changes: dict[str, dict[str, Any]] = {}
            for name, fields in connection.subscription.items():
                current = self._filtered(name, fields)
                last = connection.last_sent.setdefault(name, {})
                diff = {key: value for key, value in current.items() if last.get(key) != value}
                if diff:
                    changes[name] = diff
                    last.update(diff)
            if changes:
                message = dict(connection.subscription_template)
                message["params"] = {"eventtime": self._eventtime(), "status": changes}
                connection.send(message)

    def _respond(self, text: str) -> None:
        """Send a G-code response line to the clients that subscribed to the output."""
        for connection in list(self._connections):
            if connection.output_template is not None:
                message = dict(connection.output_template)
                message["params"] = {"response": text}
                connection.send(message)

    # --- state --------------------------------------------------------------------------------

    def _set_state(self, state: str, message: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown Klipper state {state!r}")
        defaults = {
            "ready": READY_MESSAGE,
            "startup": STARTUP_MESSAGE,
            "shutdown": SHUTDOWN_MESSAGE,
            "error": ERROR_MESSAGE,
        }
        self.state = state
        self.state_message = message or defaults[state]

    def set_ready(self) -> None:
        """Finish a startup: the state becomes ready (Moonraker's next info poll sees it)."""
        self._set_state("ready")
        self._push_status()

    def shutdown(self, reason: str = "Shutdown due to webhooks request") -> None:
        """Shut down as an emergency stop does: running and queued scripts fail, macros stop."""
        if self.state == "shutdown":
            return
        message = SHUTDOWN_MESSAGE.replace("Shutdown due to webhooks request", reason)
        self._set_state("shutdown", message)
        failed = [self._running, *self._queue] if self._running else list(self._queue)
        self._running = None
        self._queue.clear()
        for script in failed:
            if script is not None:
                self._reply(script, error=reason)
        if self.idle_state == "Printing":
            self.idle_state = "Ready"
            self._ready_since = self.now
        self._respond(f"!! {reason}")
        self._push_status()

    # --- G-code -------------------------------------------------------------------------------

    def _gcode_script(self, connection: _Connection, request_id: Any, script: str) -> None:
        self.scripts.append({"time": self.now, "script": script})
        commands: deque[str] = deque()
        for raw in script.splitlines():
            line = raw.split(";", 1)[0].strip()
            if line:
                commands.append(line)
        job = _Script(connection, request_id, commands)
        if self._running is None:
            self._running = job
            self._step(job)
            self._push_status()
        else:
            self._queue.append(job)

    def _step(self, job: _Script) -> None:
        """Run job's commands until one takes simulated time, or the job is done and answered."""
        while job.commands:
            line = job.commands.popleft()
            command = line.split(None, 1)[0].upper()
            if command in ("RESTART", "FIRMWARE_RESTART"):
                self._finish(job)
                self._restart_soon()
                return
            if command == "M112":
                self._running = None
                self._reply(job)
                self.shutdown("Shutdown due to M112 command")
                return
            if self.state != "ready":
                self._fail(job, self.state_message.split("\n", 1)[0])
                return
            if command in ("STATUS", "HELP"):
                self._respond(f"// Klipper state: {self.state}" if command == "STATUS" else "// simulated")
                continue
            if command not in self.macros:
                self._fail(job, f'Unknown command:"{command}"')
                return
            job.current = command
            if self.idle_state != "Printing":
                self.idle_state = "Printing"
                self._printing_since = self.now
            job.ends_at = self.now + self.macro_seconds
            if self.macro_seconds > 0:
                return
            self._macro_done(job)
        self._finish(job)

    def _macro_done(self, job: _Script) -> None:
        if job.current == "OTTOEJECT_HOME":
            self.homed_axes = "xyz"
        self._respond(f"// {job.current} done")
        job.current = None
        job.ends_at = None

    def _fail(self, job: _Script, message: str) -> None:
        self._respond(f"!! {message}")
        self._reply(job, error=message)
        self._next(job)

    def _finish(self, job: _Script) -> None:
        self._reply(job)
        self._next(job)

    def _settle(self) -> None:
        """The last move ran: idle_timeout goes Ready, unless a script started meanwhile."""
        self._idle_at = None
        if self._running is None and self.idle_state == "Printing":
            self.idle_state = "Ready"
            self._ready_since = self.now
            self._push_status()

    def _next(self, job: _Script) -> None:
        """The job is over: start the next queued script, or go Ready."""
        if self._running is job:
            self._running = None
        while self._running is None and self._queue:
            self._running = self._queue.popleft()
            self._step(self._running)
        if self._running is None and self.idle_state == "Printing":
            # As Klipper: the script is answered when its commands are queued; idle_timeout leaves
            # "Printing" once the last move has run, a moment later (IDLE_LAG on the clock).
            self._idle_at = self.now + IDLE_LAG

    def _reply(self, job: _Script, error: str | None = None) -> None:
        if job.request_id is None:
            return
        if error is None:
            job.connection.send({"id": job.request_id, "result": {}})
        else:
            job.connection.send(
                {"id": job.request_id, "error": {"error": "WebRequestError", "message": error}}
            )
        job.request_id = None

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward: macros whose time has come end, queued ones start."""
        target = self.now + max(0.0, seconds)
        while True:
            job = self._running
            if job is not None and job.ends_at is not None and job.ends_at <= target:
                self.now = job.ends_at
                self._macro_done(job)
                self._step(job)
            elif self._idle_at is not None and self._idle_at <= target:
                self.now = self._idle_at
                self._settle()
            else:
                break
        self.now = target
        if (
            self.idle_state == "Ready"
            and self._ready_since is not None
            and self.now - self._ready_since >= IDLE_TIMEOUT
        ):
            self.idle_state = "Idle"
            self._ready_since = None
        self._push_status()

    def set_macro_seconds(self, seconds: float) -> None:
        """Change how long each macro runs; the one running now keeps its end time."""
        self.macro_seconds = seconds
