"""Local MQTT client for one Bambu Lab printer.

paho-mqtt runs the socket in its own thread. Each report is parsed, merged and diffed in that
thread; only a report that changed a public field crosses to the asyncio loop, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from enum import StrEnum
import itertools
import json
import logging
import random
import time
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .ams import has_ams_lite
from .errors import (
    BambuAuthError,
    BambuCertificateError,
    BambuCommandError,
    BambuConnectionError,
    BambuSerialError,
    BambuTimeoutError,
)
from .models import model_from_serial, project_file_url
from .state import PrinterState, PrinterVersion, parse_version
from .tls import make_context

try:  # orjson is several times faster on the 14 kB X1 reports; plain json works the same.
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import loads as _loads

_LOGGER = logging.getLogger(__name__)

USERNAME: Final = "bblp"
DEFAULT_MQTT_PORT: Final = 8883
WATCHDOG_SECONDS: Final = 60.0
PUSHALL_MIN_INTERVAL: Final = 300.0
ACK_TIMEOUT: Final = 10.0
# Reconnects wait 1 s, then twice as long each time, up to a minute.
RECONNECT_MIN_DELAY: Final = 1.0
RECONNECT_MAX_DELAY: Final = 60.0
# Sequence ids start at a random number below this, so that ours seldom meet another client's.
_SEQUENCE_BASES: Final = 1 << 30
# MQTT 3.1.1 CONNACK 4 and 5, as paho 2 names them.
_AUTH_REASONS: Final = frozenset({"Bad user name or password", "Not authorized"})
# Changed-field names for connection facts, next to the report fields.
FIELD_ONLINE: Final = "online"
FIELD_CONNECTION: Final = "connection"
# The fields hold a status report received on the current connection (after a reconnect, the
# first messages may come before the pushall's answer: until then the fields are the old ones).
FIELD_CURRENT: Final = "current"
FIELD_VERSION: Final = "version"
PUSHALL: Final = {"pushing": {"sequence_id": "0", "command": "pushall"}}
GET_VERSION: Final = {"info": {"sequence_id": "0", "command": "get_version"}}


class ConnectionState(StrEnum):
    """Where the client's connection stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"
    CERTIFICATE_CHANGED = "certificate_changed"
    # Another printer answers at the address: its certificate names another serial number.
    WRONG_PRINTER = "wrong_printer"
    STOPPED = "stopped"


type ChangeListener = Callable[[frozenset[str]], None]


class BambuClient:
    """One printer's MQTT connection, its merged state and its commands."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        serial: str,
        access_code: str,
        *,
        port: int = DEFAULT_MQTT_PORT,
        fingerprint: str | None = None,
        watchdog: float = WATCHDOG_SECONDS,
        ack_timeout: float = ACK_TIMEOUT,
        reconnect_delay: tuple[float, float] = (RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY),
    ) -> None:
        """Prepare a client; nothing connects until start().

        reconnect_delay: the first and the longest wait between connection attempts (seconds).
        """
        self.host = host
        self.serial = serial
        self.port = port
        # Merged and diffed in paho's thread; `fields` and `version` are the loop's copies,
        # updated only when a change crosses over, so the loop never sees a half-applied report.
        self.state = PrinterState(ams_lite=has_ams_lite(model_from_serial(serial)))
        self.fields: dict[str, Any] = dict(self.state.fields)
        self.version: PrinterVersion | None = None
        self._thread_version: PrinterVersion | None = None
        self.connection = ConnectionState.STOPPED
        self.online = False
        self.current = False  # see FIELD_CURRENT
        # The fingerprint a refused certificate had, for the repair that offers to trust it.
        self.presented_fingerprint: str | None = None
        # The serial number of the printer that answered instead (WRONG_PRINTER), as its certificate names it.
        self.found_serial: str | None = None
        self._loop = loop
        self._access_code = access_code
        self._context = make_context(serial, fingerprint)
        self.watchdog = watchdog
        self._ack_timeout = ack_timeout
        self._reconnect_delay = reconnect_delay
        self._listeners: list[ChangeListener] = []
        # Sequence id -> (command, its future). Bambu Studio, Handy and other LAN clients number
        # their commands too, and their echoes reach us: an echo answers ours only when both match.
        self._pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._sequence = itertools.count(random.randrange(1, _SEQUENCE_BASES))
        self._last_message = 0.0
        self._last_pushall = -PUSHALL_MIN_INTERVAL
        self._last_probe = -watchdog
        self._cert_error: BambuCertificateError | None = None
        self._first_report: asyncio.Future[None] = loop.create_future()
        self._version_known = asyncio.Event()
        self._report_topic = f"device/{serial}/report"
        self._request_topic = f"device/{serial}/request"
        self._mqtt: mqtt.Client | None = None

    @property
    def fingerprint(self) -> str | None:
        """The pinned certificate fingerprint (the first one seen when none was given)."""
        return self._context.fingerprint

    @property
    def model(self) -> str | None:
        """The model the printer reported, else the one its serial number's prefix names."""
        return (self.version.model if self.version else None) or model_from_serial(self.serial)

    def add_listener(self, listener: ChangeListener) -> Callable[[], None]:
        """Call listener(changed_fields) in the loop after every change; return the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # --- lifecycle (event loop) ---------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; reconnects back off from 1 s, doubling, to 60 s."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"print_farm_{self.serial}_{id(self):x}",
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(USERNAME, self._access_code)
        client.tls_set_context(self._context)
        # paho annotates whole seconds, and waits any number of seconds.
        client.reconnect_delay_set(*self._reconnect_delay)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_pre_connect = self._on_pre_connect
        self._mqtt = client
        self._set_connection(ConnectionState.CONNECTING)
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()

    async def stop(self) -> None:
        """Disconnect and end the network thread."""
        client, self._mqtt = self._mqtt, None
        if client is None:
            return
        client.disconnect()
        # Joining the thread can take up to a second (paho's reconnect wait).
        await self._loop.run_in_executor(None, client.loop_stop)
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(BambuConnectionError("client stopped"))
        self._pending.clear()
        if not self._first_report.done():
            self._first_report.set_exception(BambuConnectionError("client stopped"))
            self._first_report.exception()  # nobody may be waiting: mark it retrieved
        self.online = False
        self.current = False
        self.connection = ConnectionState.STOPPED

    async def wait_for_first_report(self, timeout: float) -> None:
        """Wait until the printer's first report arrives; raise why it did not."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._first_report)
        except TimeoutError:
            if self._cert_error is not None:
                raise self._cert_error from None
            if self.connection is ConnectionState.CONNECTED:
                # Logged in, but nothing arrives on this serial's topic.
                raise BambuSerialError("no report on this serial number's topic") from None
            raise BambuConnectionError(f"no answer from {self.host}:{self.port}") from None

    def check_watchdog(self, now: float | None = None) -> None:
        """Probe a quiet printer, and mark it offline when it has been silent too long (call it every few seconds).

        An idle P1 or A1 may send nothing for minutes, so a printer quiet for half the watchdog
        time is asked for its version (a small request any printer answers, not limited like
        pushall); only a printer that does not answer within the watchdog time is offline.
        """
        now = time.monotonic() if now is None else now
        silence = now - self._last_message
        half = self.watchdog / 2
        if self.connection is ConnectionState.CONNECTED and silence > half and now - self._last_probe >= half:
            self._last_probe = now
            with contextlib.suppress(BambuConnectionError):
                self._publish(GET_VERSION)
        if self.online and silence > self.watchdog:
            _LOGGER.debug("%s: no message for %.0f s, offline", self.serial, silence)
            self.online = False
            self.current = False
            self._notify(frozenset({FIELD_ONLINE, FIELD_CURRENT}))
            # The 5-minute rule keeps a printer that is really gone from being flooded.
            self.request_full_report()

    # --- commands (event loop) ----------------------------------------------------------

    def request_full_report(self, *, force: bool = False) -> bool:
        """Ask for a full report, at most once per 5 minutes unless forced (on connect)."""
        now = time.monotonic()
        if not force and now - self._last_pushall < PUSHALL_MIN_INTERVAL:
            return False
        self._last_pushall = now
        try:
            self._publish(PUSHALL)
        except BambuConnectionError:
            return False  # asked again on the next connect
        return True

    async def pause(self) -> None:
        """Pause the current print."""
        await self._command({"command": "pause", "param": ""})

    async def resume(self) -> None:
        """Resume a paused print."""
        await self._command({"command": "resume", "param": ""})

    async def stop_print(self) -> None:
        """Stop (cancel) the current print."""
        await self._command({"command": "stop", "param": ""})

    async def send_gcode(self, gcode: str) -> None:
        """Send G-code lines (separated by newlines) to run now."""
        await self._command(
            {"command": "gcode_line", "param": gcode if gcode.endswith("\n") else f"{gcode}\n"}
        )

    async def set_light(self, on: bool, node: str = "chamber_light") -> None:
        """Turn a light on or off (ledctrl, answered on the `system` topic object)."""
        await self._command(
            {
                "command": "ledctrl",
                "led_node": node,
                "led_mode": "on" if on else "off",
                "led_on_time": 500,
                "led_off_time": 500,
                "loop_times": 0,
                "interval_time": 0,
            },
            kind="system",
        )

    async def set_chamber_light(self, on: bool) -> None:
        """Turn every chamber light on or off (an H2D or H2S has two), each acknowledged."""
        nodes = self.fields["chamber_light_nodes"] or ("chamber_light",)
        results = await asyncio.gather(*(self.set_light(on, node) for node in nodes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def set_print_speed(self, level: int) -> None:
        """Set the speed level: 1 silent, 2 standard, 3 sport, 4 ludicrous."""
        await self._command({"command": "print_speed", "param": str(level)})

    async def start_print(
        self,
        filename: str,
        *,
        plate: int = 1,
        use_ams: bool = False,
        ams_mapping: list[int] | None = None,
        bed_leveling: bool = True,
        flow_cali: bool = False,
        timelapse: bool = False,
    ) -> None:
        """Start a file that is on the printer's storage.

        A sliced project (.3mf) starts with project_file and its options; plain G-code with
        gcode_file, which is how the printers take it. The project's url takes the form the
        printer's model reads (`models.project_file_url`): the model it reported, else its serial's.
        """
        if not filename.lower().endswith(".3mf"):
            await self._command({"command": "gcode_file", "param": f"/sdcard/{filename}"})
            return
        await self._command(
            {
                "command": "project_file",
                "param": f"Metadata/plate_{plate}.gcode",
                "url": project_file_url(self.model, filename),
                "subtask_name": _project_name(filename),
                "use_ams": use_ams,
                "ams_mapping": ams_mapping if ams_mapping is not None else [],
                "ams_mapping2": ams_mapping2(ams_mapping or []),
                "bed_leveling": bed_leveling,
                "bed_levelling": bed_leveling,
                "flow_cali": flow_cali,
                "vibration_cali": False,
                "layer_inspect": False,
                "timelapse": timelapse,
                "md5": "",
                "profile_id": "0",
                "project_id": "0",
                "subtask_id": "0",
                "task_id": "0",
            }
        )

    async def _command(self, body: dict[str, Any], kind: str = "print") -> dict[str, Any]:
        """Publish a command (a `print` or `system` one) and wait for the printer's echo with its result."""
        if not self.online or self._mqtt is None:
            raise BambuConnectionError("the printer is offline")
        sequence = str(next(self._sequence))
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[sequence] = (body["command"], future)
        try:
            self._publish({kind: {**body, "sequence_id": sequence}})
            async with asyncio.timeout(self._ack_timeout):
                reply = await future
        except TimeoutError:
            raise BambuTimeoutError(
                f"the printer did not acknowledge {body['command']} within {self._ack_timeout:.0f} s"
            ) from None
        finally:
            self._pending.pop(sequence, None)
        if str(reply.get("result", "success")).lower() != "success":
            raise BambuCommandError(str(reply.get("reason") or reply.get("result")))
        return reply

    def _publish(self, payload: dict[str, Any]) -> None:
        if self._mqtt is None:
            raise BambuConnectionError("the client is not started")
        info = self._mqtt.publish(self._request_topic, json.dumps(payload), qos=0)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BambuConnectionError(f"cannot send to the printer ({mqtt.error_string(info.rc)})")

    # --- state changes, in the loop -----------------------------------------------------

    def _notify(self, changed: frozenset[str]) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(changed)
            except Exception:  # a listener's bug must not stop the others
                _LOGGER.exception("Error in a printer state listener")

    def _set_connection(self, connection: ConnectionState) -> None:
        if self.connection is connection:
            return
        self.connection = connection
        changed = {FIELD_CONNECTION}
        if self.current:  # a new connection, or none: its status report is still to come
            self.current = False
            changed.add(FIELD_CURRENT)
        if connection is not ConnectionState.CONNECTED and self.online:
            self.online = False
            changed.add(FIELD_ONLINE)
        self._notify(frozenset(changed))

    def _resolve_first_report(self, error: Exception | None = None) -> None:
        if self._first_report.done():
            return
        if error is None:
            self._first_report.set_result(None)
        else:
            self._first_report.set_exception(error)
            self._first_report.exception()  # retrieved even if nobody waits

    def _resolve_ack(self, sequence: str, reply: dict[str, Any]) -> None:
        pending = self._pending.get(sequence)
        if pending is None:
            return
        command, future = pending
        # Another client's command may carry our number: its echo is not our answer.
        if reply.get("command") == command and not future.done():
            future.set_result(reply)

    # --- paho callbacks, in paho's thread -----------------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._context.last_error = None
        # Each attempt shows as connecting, and a failed one as disconnected: the backoff is visible.
        self._loop.call_soon_threadsafe(self._attempting)

    def _attempting(self) -> None:
        if self._mqtt is not None:
            self._set_connection(ConnectionState.CONNECTING)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: Any,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            if str(reason) in _AUTH_REASONS:
                _LOGGER.warning("%s refused the access code", self.serial)
                client.disconnect()  # stop retrying: only a new code can fix this
                self._loop.call_soon_threadsafe(self._auth_failed)
            return
        client.subscribe(self._report_topic)
        # Asked from this thread, so that they go out on this very connection.
        client.publish(self._request_topic, json.dumps(GET_VERSION))
        client.publish(self._request_topic, json.dumps(PUSHALL))
        self._last_pushall = time.monotonic()
        self._loop.call_soon_threadsafe(self._set_connection, ConnectionState.CONNECTED)

    def _auth_failed(self) -> None:
        self._set_connection(ConnectionState.AUTH_FAILED)
        self._resolve_first_report(BambuAuthError("the printer refused the access code"))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        error = self._context.last_error
        if error is not None:
            _LOGGER.warning("%s: %s; not connecting", self.serial, error)
            client.disconnect()  # a changed certificate needs the user's decision
            self._loop.call_soon_threadsafe(self._certificate_refused, error)
        else:
            self._loop.call_soon_threadsafe(self._disconnected)

    def _certificate_refused(self, error: BambuCertificateError) -> None:
        self._cert_error = error
        self.presented_fingerprint = error.fingerprint
        if isinstance(error, BambuSerialError):
            self.found_serial = error.found_serial
            self._set_connection(ConnectionState.WRONG_PRINTER)
        else:
            self._set_connection(ConnectionState.CERTIFICATE_CHANGED)
        self._resolve_first_report(error)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._loop.call_soon_threadsafe(self._disconnected)

    def _disconnected(self) -> None:
        # A refused login or certificate stays as it is: it says why no attempt follows.
        if self.connection in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
            self._set_connection(ConnectionState.DISCONNECTED)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._last_message = time.monotonic()
        try:
            payload = _loads(message.payload)
        except ValueError:
            _LOGGER.debug("%s: ignoring a report that is not JSON", self.serial)
            return
        try:
            updates = self.ingest(payload)
        except Exception:  # a malformed report must not end paho's network thread
            _LOGGER.warning("%s: ignoring a report that could not be read", self.serial, exc_info=True)
            return
        if updates is not None:
            self._loop.call_soon_threadsafe(self._report_received, updates)

    def ingest(self, payload: Any) -> dict[str, Any] | None:
        """Apply one decoded report (in paho's thread); return the changed fields' new values, or None.

        None means there is nothing to tell the loop; an empty dict still tells it the printer spoke.
        """
        if not isinstance(payload, dict):
            return None
        updates: dict[str, Any] = {}
        report = payload.get("print")
        if isinstance(report, dict):
            command = report.get("command")
            if command == "push_status" or command is None:
                if changed := self.state.merge(report):
                    values = self.state.fields
                    updates = {name: values[name] for name in changed}
                if not self.current:
                    updates[FIELD_CURRENT] = True
            elif "sequence_id" in report:  # the echo of one of our commands
                self._loop.call_soon_threadsafe(self._resolve_ack, str(report["sequence_id"]), report)
        system = payload.get("system")
        if isinstance(system, dict) and "sequence_id" in system:  # the echo of a system command (ledctrl)
            self._loop.call_soon_threadsafe(self._resolve_ack, str(system["sequence_id"]), system)
        info = payload.get("info")
        if isinstance(info, dict) and info.get("command") == "get_version":
            version = parse_version(info, self.serial)
            if version != self._thread_version:
                self._thread_version = version
                updates[FIELD_VERSION] = version
            for name in self.state.set_ams_lite(has_ams_lite(version.model, info)):
                updates[name] = self.state.fields[name]
        if not updates and self.online and self._first_report.done():
            return None
        return updates

    def _report_received(self, updates: dict[str, Any]) -> None:
        changed = frozenset(updates)
        if updates.pop(FIELD_CURRENT, False):
            if self.current or self.connection is not ConnectionState.CONNECTED:
                changed -= {FIELD_CURRENT}
            else:
                self.current = True
        if FIELD_VERSION in updates:
            self.version = updates.pop(FIELD_VERSION)
            self._version_known.set()
        self.fields.update(updates)
        if not self.online and self.connection is ConnectionState.CONNECTED:
            self.online = True
            changed = changed | {FIELD_ONLINE}
        self._resolve_first_report()
        if changed:
            self._notify(changed)


async def probe(
    loop: asyncio.AbstractEventLoop,
    host: str,
    serial: str,
    access_code: str,
    *,
    port: int = DEFAULT_MQTT_PORT,
    fingerprint: str | None = None,
    timeout: float = 15.0,
) -> tuple[str, PrinterVersion]:
    """Log in once and wait for a report; return the certificate fingerprint and the printer's version.

    Raises BambuConnectionError, BambuAuthError, BambuSerialError or BambuCertificateError.
    """
    from .tls import fetch_fingerprint

    if fingerprint is None:
        fingerprint = await loop.run_in_executor(None, fetch_fingerprint, host, port, serial)
    client = BambuClient(loop, host, serial, access_code, port=port, fingerprint=fingerprint)
    client.start()
    try:
        await client.wait_for_first_report(timeout)
        # The version reply normally comes with the first report; give it a moment more.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await client._version_known.wait()
    finally:
        await client.stop()
    assert client.fingerprint is not None
    return client.fingerprint, client.version or parse_version({}, serial)


def ams_mapping2(mapping: list[int]) -> list[dict[str, int]]:
    """The newer form of an `ams_mapping` that H2 firmware reads (older firmware ignores it).

    Each entry names its unit and slot: an AMS or AMS Lite tray `unit x 4 + slot` is
    `{"ams_id": unit, "slot_id": slot}`, an AMS HT (128-135) or an external holder (254, 255) is
    `{"ams_id": code, "slot_id": 0}`, an unused filament (-1) is `{"ams_id": 255, "slot_id": 255}`.
    """
    pairs = []
    for code in mapping:
        if code < 0:
            pairs.append({"ams_id": 255, "slot_id": 255})
        elif code < 128:
            pairs.append({"ams_id": code // 4, "slot_id": code % 4})
        else:
            pairs.append({"ams_id": code, "slot_id": 0})
    return pairs


def _project_name(filename: str) -> str:
    """A project's name as the printer shows it: the file name without .gcode.3mf or .3mf, any case."""
    for suffix in (".gcode.3mf", ".3mf"):
        if filename.lower().endswith(suffix):
            return filename[: -len(suffix)]
    return filename
