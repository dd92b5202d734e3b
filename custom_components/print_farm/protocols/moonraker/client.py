"""HTTP client for one OttoEject: Klipper behind Moonraker's REST API.

The state follows the seeds' four values: ONLINE (Klipper ready), EJECTING (a macro is running),
OFFLINE (Moonraker or Klipper cannot be reached) and ISSUE (Klipper shut down or in error). It is
read by polling; nothing here keeps a connection open between calls.

Moonraker answers `POST /printer/gcode/script` only when Klipper has finished the script, and has no
timeout of its own. `run_macro` waits for that answer up to `ack_timeout`; past it the request is
left running in the background (never sent again) and the macro counts as running until the answer
comes or a status poll sees the device idle again after it was seen running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
import json
import logging
import math
import re
import time
from typing import Any, Final

import aiohttp
from yarl import URL

from .errors import (
    MoonrakerAuthError,
    MoonrakerBusyError,
    MoonrakerConnectionError,
    MoonrakerError,
    MoonrakerMacroError,
    MoonrakerNotReadyError,
    MoonrakerUnknownMacroError,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT: Final = 7125
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
DEFAULT_ACK_TIMEOUT: Final = 30.0
MACRO_PREFIX: Final = "gcode_macro "
SERVER_INFO_PATH: Final = "/server/info"
OBJECTS_LIST_PATH: Final = "/printer/objects/list"
OBJECTS_QUERY_PATH: Final = "/printer/objects/query"
GCODE_SCRIPT_PATH: Final = "/printer/gcode/script"
GCODE_STORE_PATH: Final = "/server/gcode_store"
STATUS_QUERY: Final = "webhooks&idle_timeout&print_stats"
ISSUE_STATES: Final = frozenset({"error", "shutdown"})
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORBIDDEN_IN_VALUE: Final = frozenset(";\"'")


class EjectorState(StrEnum):
    """The seeds' OttoEject status values."""

    ONLINE = "ONLINE"
    EJECTING = "EJECTING"
    OFFLINE = "OFFLINE"
    ISSUE = "ISSUE"


@dataclass(frozen=True, slots=True)
class EjectorStatus:
    """One reading of an OttoEject's state.

    `klippy_state` is Moonraker's view of Klipper ("ready", "startup", "shutdown", "error",
    "disconnected"), None when Moonraker itself could not be asked. `message` is Klipper's
    state_message, or why the device is offline. `current_macro` and `macro_started` (a Unix
    timestamp) describe the macro this client sent and still counts as running.
    """

    state: EjectorState
    klippy_state: str | None
    message: str | None
    current_macro: str | None
    macro_started: float | None


@dataclass(frozen=True, slots=True)
class MacroOutcome:
    """What came of sending a macro.

    `acknowledged` is True when Moonraker answered within the wait (`response` holds its JSON, such
    as {"result": "ok"}); False when the wait ran out while the macro was still running (`detail`
    says so, and the status stays EJECTING until the device is idle again).
    """

    acknowledged: bool
    response: dict[str, Any] | None
    detail: str | None = None


@dataclass(slots=True)
class _RunningMacro:
    """A macro this client sent whose end has not been seen yet."""

    name: str
    script: str
    started: float
    task: asyncio.Task[dict[str, Any]] | None = None
    seen_running: bool = False
    abandoned: bool = False  # run_macro stopped waiting for the answer


def macro_script(name: str, params: Mapping[str, str | int | float] | None = None) -> str:
    """Return the G-code line `NAME KEY=VALUE ...` for a macro call; raise ValueError for bad input.

    Names and keys are words (letters, digits, underscores) and are upper-cased as Klipper does.
    Values are strings or finite numbers without whitespace, control characters, quotes or `;`,
    so that a value can never end the line or start a comment or a second command.
    """
    macro = name.strip().upper()
    if not _WORD.fullmatch(macro):
        raise ValueError(f"invalid macro name {name!r}")
    parts = [macro]
    for key, value in (params or {}).items():
        if not isinstance(key, str) or not _WORD.fullmatch(key):
            raise ValueError(f"invalid parameter name {key!r}")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"parameter {key} must be a string or a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"parameter {key} must be a finite number")
        text = str(value)
        if (
            not text
            or not text.isprintable()
            or any(char.isspace() for char in text)
            or _FORBIDDEN_IN_VALUE.intersection(text)
        ):
            raise ValueError(f"parameter {key} has a value that cannot go on a G-code line: {value!r}")
        parts.append(f"{key.upper()}={text}")
    return " ".join(parts)


def _mapping(container: Any, key: str) -> dict[str, Any]:
    """Return container[key] when both are JSON objects, else an empty dict."""
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, dict) else {}


def _error_message(body: Any, fallback: str) -> str:
    """Return the message of Moonraker's error body {"error": {"code", "message"}}, else fallback."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return fallback


class MoonrakerClient:
    """One OttoEject's Moonraker API, on the caller's aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        api_key: str | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
    ) -> None:
        """Prepare a client; nothing is sent until a method is called.

        `request_timeout` bounds every request but the macro's, whose answer is awaited up to
        `ack_timeout` and then left to finish in the background.
        """
        self._session = session
        self.host = host
        self.port = port
        self._base = URL.build(scheme="http", host=host, port=port)
        self._headers: dict[str, str] = {"X-Api-Key": api_key} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._request_timeout = request_timeout
        self._ack_timeout = ack_timeout
        self._macro: _RunningMacro | None = None
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()
        self._expiries: dict[asyncio.Task[dict[str, Any]], asyncio.TimerHandle] = {}
        self._send_lock = asyncio.Lock()

    def __repr__(self) -> str:
        """Name the device, never the API key."""
        return f"MoonrakerClient({self.host}:{self.port})"

    @property
    def current_macro(self) -> str | None:
        """The macro this client sent and still counts as running, if any."""
        return self._macro.name if self._macro else None

    # --- requests -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: str | None = None,
        body: dict[str, Any] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> Any:
        """Send one request and return the `result` of Moonraker's answer.

        401/403 raise MoonrakerAuthError; on /printer routes 404 (Klipper never connected) and 503
        (Klipper left) raise MoonrakerNotReadyError and 400 (Klipper's error) MoonrakerMacroError;
        anything else unexpected raises MoonrakerError; no answer raises MoonrakerConnectionError.
        """
        url = self._base.with_path(path)
        if query:
            url = url.with_query(query)
        try:
            async with self._session.request(
                method, url, headers=self._headers, json=body, timeout=timeout or self._timeout
            ) as response:
                text = await response.text()
                status = response.status
                reason = response.reason or ""
        except TimeoutError as err:
            raise MoonrakerConnectionError(
                f"Moonraker at {self.host}:{self.port} did not answer {method} {path} in time"
            ) from err
        except (aiohttp.ClientError, OSError) as err:
            raise MoonrakerConnectionError(
                f"cannot reach Moonraker at {self.host}:{self.port}: {err or type(err).__name__}"
            ) from err
        try:
            payload: Any = json.loads(text) if text else None
        except ValueError:
            payload = None
        if status in (401, 403):
            detail = "was refused" if self._headers else "is required"
            raise MoonrakerAuthError(f"Moonraker answered HTTP {status}: the API key {detail}")
        if 200 <= status < 300:
            if isinstance(payload, dict) and "result" in payload:
                return payload["result"]
            raise MoonrakerError(f"Moonraker answered {method} {path} with something else than JSON")
        message = _error_message(payload, f"HTTP {status} {reason}".strip())
        if path.startswith("/printer/"):
            if status in (404, 503):
                raise MoonrakerNotReadyError(
                    f"Klipper is not connected to Moonraker (HTTP {status}: {message})"
                )
            if status == 400:
                raise MoonrakerMacroError(message)
        raise MoonrakerError(f"Moonraker answered {method} {path} with HTTP {status}: {message}")

    async def server_info(self) -> dict[str, Any]:
        """Return Moonraker's /server/info result (klippy_connected, klippy_state, versions, ...)."""
        result = await self._call("GET", SERVER_INFO_PATH)
        if not isinstance(result, dict):
            raise MoonrakerError("Moonraker's /server/info result is not an object")
        return result

    async def macros(self) -> list[str]:
        """Return the names of the device's G-code macros, upper-cased as Klipper runs them.

        Raises MoonrakerNotReadyError when Klipper is not connected to Moonraker.
        """
        result = await self._call("GET", OBJECTS_LIST_PATH)
        objects = result.get("objects") if isinstance(result, dict) else None
        if not isinstance(objects, list):
            raise MoonrakerError("Moonraker's object list is not a list")
        names: list[str] = []
        for item in objects:
            if isinstance(item, str) and item.lower().startswith(MACRO_PREFIX):
                name = item[len(MACRO_PREFIX) :].strip().upper()
                if name and name not in names:
                    names.append(name)
        return names

    async def gcode_store(self) -> list[dict[str, Any]]:
        """Return Moonraker's G-code store: the scripts it received and Klipper's answers, oldest first.

        Each entry is {"message", "time" (Moonraker's unix time), "type": "command" | "response"}.
        It lives in Moonraker's memory (1,000 entries by default) and is empty after its restart.
        """
        result = await self._call("GET", GCODE_STORE_PATH)
        entries = result.get("gcode_store") if isinstance(result, dict) else None
        if not isinstance(entries, list):
            raise MoonrakerError("Moonraker's G-code store is not a list")
        return [entry for entry in entries if isinstance(entry, dict)]

    async def idle_state(self) -> str | None:
        """Klipper's idle_timeout state now: `Printing` while a script runs, else `Ready` or `Idle`."""
        result = await self._call("GET", OBJECTS_QUERY_PATH, query="idle_timeout")
        state = _mapping(_mapping(result, "status"), "idle_timeout").get("state")
        return str(state) if state is not None else None

    # --- status -------------------------------------------------------------------------------

    def _status(self, state: EjectorState, klippy_state: str | None, message: str | None) -> EjectorStatus:
        macro = self._macro
        return EjectorStatus(
            state=state,
            klippy_state=klippy_state,
            message=message,
            current_macro=macro.name if macro else None,
            macro_started=macro.started if macro else None,
        )

    async def status(self) -> EjectorStatus:
        """Read the device's state: ONLINE, EJECTING, OFFLINE or ISSUE.

        Only a refused API key raises (MoonrakerAuthError); everything else that keeps the device
        from being reached is OFFLINE, with the reason in `message`.
        """
        try:
            info = await self.server_info()
        except MoonrakerAuthError:
            raise
        except MoonrakerError as err:
            return self._status(EjectorState.OFFLINE, None, str(err))
        klippy_state = info.get("klippy_state")
        klippy_state = str(klippy_state) if klippy_state is not None else None
        if not info.get("klippy_connected") or klippy_state in (None, "disconnected"):
            return self._status(EjectorState.OFFLINE, klippy_state, "Klipper is not connected to Moonraker")
        if klippy_state in ISSUE_STATES:
            return self._status(EjectorState.ISSUE, klippy_state, await self._state_message())
        if klippy_state != "ready":
            return self._status(EjectorState.OFFLINE, klippy_state, f"Klipper is not ready ({klippy_state})")
        try:
            result = await self._call("GET", OBJECTS_QUERY_PATH, query=STATUS_QUERY)
        except MoonrakerAuthError:
            raise
        except MoonrakerError as err:
            return self._status(EjectorState.OFFLINE, klippy_state, str(err))
        objects = _mapping(result, "status")
        webhooks = _mapping(objects, "webhooks")
        message = webhooks.get("state_message")
        message = str(message) if message is not None else None
        if webhooks.get("state") in ISSUE_STATES:  # shut down since /server/info was read
            return self._status(EjectorState.ISSUE, str(webhooks["state"]), message)
        running = (
            _mapping(objects, "idle_timeout").get("state") == "Printing"
            or _mapping(objects, "print_stats").get("state") == "printing"
        )
        self._observe(running)
        if running or self._macro is not None:
            return self._status(EjectorState.EJECTING, klippy_state, message)
        return self._status(EjectorState.ONLINE, klippy_state, message)

    async def _state_message(self) -> str | None:
        """Return Klipper's state_message (best effort: None when it cannot be read)."""
        try:
            result = await self._call("GET", OBJECTS_QUERY_PATH, query="webhooks")
        except MoonrakerAuthError:
            raise
        except MoonrakerError:
            return None
        message = _mapping(_mapping(result, "status"), "webhooks").get("state_message")
        return str(message) if message is not None else None

    def _observe(self, running: bool) -> None:
        """Follow the macro this client sent: seen running, then seen idle again means it ended."""
        macro = self._macro
        if macro is None:
            return
        if running:
            macro.seen_running = True
        elif macro.seen_running or (macro.abandoned and time.time() - macro.started > self._ack_timeout * 2):
            # Seen running and now idle: it ended. Never seen running, its answer lost, and idle
            # well past the wait (a half-open connection, a macro too short to catch): it ended too,
            # rather than keeping the robot "EJECTING" forever.
            _LOGGER.debug("%s: %s seen finished by a status poll", self, macro.name)
            self._release(macro)
            task = macro.task
            if task is not None and not task.done() and task not in self._expiries:
                # Its answer no longer matters; do not let a lost answer keep it forever.
                self._expiries[task] = asyncio.get_running_loop().call_later(
                    self._request_timeout, task.cancel
                )

    def _release(self, macro: _RunningMacro) -> None:
        if self._macro is macro:
            self._macro = None

    # --- macros -------------------------------------------------------------------------------

    def forget_macro(self) -> None:
        """The caller saw the running macro end (Moonraker's websocket): it no longer counts as running."""
        if self._macro is not None:
            self._macro.seen_running = True
            self._observe(False)

    async def run_macro(
        self,
        name: str,
        params: Mapping[str, str | int | float] | None = None,
        *,
        marker: str | None = None,
    ) -> MacroOutcome:
        """Run a G-code macro of the device once, and wait up to `ack_timeout` for its end.

        `marker` is added as a comment (`NAME ... ; marker`): Klipper ignores it, Moonraker's G-code
        store keeps it, so that whether the device received the script can be read back later.

        Raises ValueError for a name or parameter that cannot be sent, MoonrakerConnectionError
        when Moonraker cannot be reached, MoonrakerNotReadyError when Klipper is not ready,
        MoonrakerBusyError while a macro is running, MoonrakerUnknownMacroError for a macro the
        device does not have (nothing is sent), MoonrakerMacroError when Klipper answers with an
        error. The script is POSTed once and never retried.
        """
        script = macro_script(name, params)
        macro_name = script.split(" ", 1)[0]
        if marker is not None:
            if not marker.isprintable() or "\n" in marker:
                raise ValueError(f"a marker is one printable line: {marker!r}")
            script = f"{script} ; {marker}"
        async with self._send_lock:
            if self._macro is not None:
                raise MoonrakerBusyError(f"{self._macro.name} is still running")
            status = await self.status()
            if status.state is EjectorState.OFFLINE:
                if status.klippy_state is None:
                    raise MoonrakerConnectionError(status.message or "Moonraker cannot be reached")
                raise MoonrakerNotReadyError(status.message or "Klipper is not ready")
            if status.state is EjectorState.ISSUE:
                raise MoonrakerNotReadyError(
                    f"Klipper is in {status.klippy_state}: {status.message or 'no message'}"
                )
            if status.state is EjectorState.EJECTING:
                raise MoonrakerBusyError("the device is running a macro")
            if macro_name not in await self.macros():
                raise MoonrakerUnknownMacroError(f"the device has no macro {macro_name}")
            macro = _RunningMacro(macro_name, script, time.time())
            task = asyncio.create_task(self._send_script(script), name=f"moonraker {macro_name}")
            macro.task = task
            self._macro = macro
            self._tasks.add(task)
            task.add_done_callback(lambda done: self._script_done(macro, done))
            _LOGGER.debug("%s: sent %s", self, script)
            # asyncio.wait neither cancels the request when it times out nor when we are cancelled.
            await asyncio.wait({task}, timeout=self._ack_timeout)
            if not task.done():
                macro.abandoned = True
                return MacroOutcome(
                    acknowledged=False,
                    response=None,
                    detail=(
                        f"{macro_name} was sent, but Moonraker did not acknowledge it within "
                        f"{self._ack_timeout:g} s; it is probably still running: poll the status "
                        "until it is no longer EJECTING"
                    ),
                )
            self._release(macro)
            return MacroOutcome(acknowledged=True, response=task.result())

    async def _send_script(self, script: str) -> dict[str, Any]:
        """POST the script once; return Moonraker's JSON answer ({"result": "ok"})."""
        # No overall timeout: Moonraker answers when the macro ends. Only connecting is bounded.
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._request_timeout, sock_connect=self._request_timeout
        )
        result = await self._call("POST", GCODE_SCRIPT_PATH, body={"script": script}, timeout=timeout)
        return {"result": result}

    def _script_done(self, macro: _RunningMacro, task: asyncio.Task[dict[str, Any]]) -> None:
        """The script's request ended: the macro no longer counts as running."""
        self._tasks.discard(task)
        if (expiry := self._expiries.pop(task, None)) is not None:
            expiry.cancel()
        self._release(macro)
        if task.cancelled():
            return
        error = task.exception()  # retrieved here too, in case run_macro was cancelled meanwhile
        if not macro.abandoned:
            return  # run_macro reports it
        if error is not None:
            _LOGGER.warning("%s: %s ended with an error after the wait: %s", self, macro.name, error)
        else:
            _LOGGER.debug("%s: %s acknowledged after the wait", self, macro.name)

    async def close(self) -> None:
        """Cancel the requests of macros still running in the background (the macros go on)."""
        for expiry in self._expiries.values():
            expiry.cancel()
        self._expiries.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._macro = None
