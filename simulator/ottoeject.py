"""A simulated OttoEject: a real Moonraker (its own virtualenv) in front of the Klipper stand-in.

Moonraker 0.11.0 runs from `.venv-moonraker` (made by scripts/setup; another interpreter can be named
in PRINT_FARM_MOONRAKER_PYTHON) with a data directory of its own, bound to a loopback address, and
connects to `simulator.klipper.KlipperStandIn` over a unix socket, exactly as it would to Klipper.
Components that would reach the internet are switched off (announcement feeds) or pre-empted (an
empty usb.ids, which Moonraker otherwise downloads at start). Moonraker generates the API key; when
another key is asked for, it is written to Moonraker's user table while Moonraker is stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import logging
import os
from pathlib import Path
import shutil
import sqlite3
import tempfile
from typing import Any, Final

import aiohttp

from .broker import dying_with_parent
from .klipper import KlipperStandIn, ottoeject_macros

_LOGGER = logging.getLogger(__name__)

_PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
MOONRAKER_PYTHON_ENV: Final = "PRINT_FARM_MOONRAKER_PYTHON"
API_KEY_USER: Final = "_API_KEY_USER_"  # Moonraker's row for the API key in authorized_users
KLIPPY_STATES: Final = ("ready", "startup", "shutdown", "error", "disconnected", "never_connected")
DEFAULT_PRINTERS: Final = ("P1", "P2")
DEFAULT_SLOTS: Final = 6
DEFAULT_MACRO_SECONDS: Final = 20.0
START_TIMEOUT: Final = 30.0
STATE_TIMEOUT: Final = 15.0
MAX_SOCKET_PATH: Final = 100  # sun_path holds 108 bytes


class OttoEjectError(RuntimeError):
    """Moonraker could not be started, or did not reach the state asked for."""


def moonraker_python() -> Path:
    """Return the interpreter of Moonraker's virtualenv."""
    configured = os.environ.get(MOONRAKER_PYTHON_ENV)
    return Path(configured) if configured else _PROJECT_ROOT / ".venv-moonraker" / "bin" / "python"


class MoonrakerProcess:
    """One Moonraker process with its data directory, started and stopped by pid."""

    def __init__(
        self, data_dir: Path, host: str, port: int, klippy_socket: Path, *, trust_loopback: bool
    ) -> None:
        """Prepare Moonraker's data directory layout; start() runs it."""
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.klippy_socket = klippy_socket
        self.trust_loopback = trust_loopback
        self.config_file = data_dir / "config" / "moonraker.conf"
        self.log_file = data_dir / "logs" / "moonraker.log"
        self.database = data_dir / "database" / "moonraker-sql.db"
        # Moonraker's own socket (for extensions) beside Klipper's, where the path is short enough.
        self.unix_socket = klippy_socket.parent / "moonraker.sock"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        """Return whether the Moonraker process is alive."""
        return self._process is not None and self._process.returncode is None

    def _write_config(self) -> None:
        for sub in ("config", "logs", "gcodes", "database", "misc"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        # Moonraker downloads usb.ids from the internet at start unless the file exists.
        (self.data_dir / "misc" / "usb.ids").touch()
        lines = [
            "# Written by the simulator on every start.",
            "[server]",
            f"host: {self.host}",
            f"port: {self.port}",
            f"klippy_uds_address: {self.klippy_socket}",
            "",
            "[authorization]",
            "cors_domains:",
        ]
        if self.trust_loopback:
            lines += ["trusted_clients:", "    127.0.0.0/8"]
        lines += [
            "",
            "[machine]",
            "provider: none",
            "validate_service: False",
            "validate_config: False",
            "",
            "[announcements]",
            "enable_moonlight: False",
            "",
            "[file_manager]",
            "check_klipper_config_path: False",
            "",
        ]
        self.config_file.write_text("\n".join(lines))

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start Moonraker and return once it answers HTTP."""
        if self.running:
            return
        python = moonraker_python()
        if not python.exists():
            raise OttoEjectError(f"Moonraker's virtualenv is missing ({python}): run scripts/setup")
        await asyncio.to_thread(self._write_config)
        command = [
            str(python),
            "-m",
            "moonraker",
            "-d",
            str(self.data_dir),
            "-c",
            str(self.config_file),
            "-u",
            str(self.unix_socket),
            "-n",  # no log file of its own: its console goes to log_file
        ]
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *dying_with_parent(command),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            await self._wait_http(timeout)
        except BaseException:
            await self.stop()
            raise

    async def _wait_http(self, timeout: float) -> None:
        url = f"http://{self.host}:{self.port}/server/info"
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                if not self.running:
                    break
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                        await response.read()
                        return  # any answer, 401 included: Moonraker is serving
                await asyncio.sleep(0.05)
        raise OttoEjectError(f"Moonraker on {self.host}:{self.port} did not start: {self.log_tail()}")

    def log_tail(self, size: int = 2000) -> str:
        """Return the end of Moonraker's console log."""
        try:
            return self.log_file.read_text(errors="replace")[-size:].strip()
        except OSError:
            return "(no log)"

    async def stop(self) -> None:
        """Stop Moonraker (SIGTERM, SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    def read_api_key(self) -> str | None:
        """Return the API key Moonraker keeps in its database (blocking: call in a thread)."""
        if not self.database.exists():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)) as db:
            try:
                row = db.execute(
                    "SELECT password FROM authorized_users WHERE username = ?", (API_KEY_USER,)
                ).fetchone()
            except sqlite3.Error:
                return None
        return str(row[0]) if row else None

    def write_api_key(self, api_key: str) -> None:
        """Replace the API key in Moonraker's database; Moonraker must be stopped (blocking)."""
        if self.running:
            raise OttoEjectError("Moonraker must be stopped to change its API key")
        with contextlib.closing(sqlite3.connect(self.database, timeout=5)) as db, db:
            updated = db.execute(
                "UPDATE authorized_users SET password = ? WHERE username = ?", (api_key, API_KEY_USER)
            ).rowcount
        if updated != 1:
            raise OttoEjectError("Moonraker's database has no API key row")


class SimulatedOttoEject:
    """One OttoEject: the Klipper stand-in and a real Moonraker in front of it."""

    def __init__(
        self,
        *,
        ottoeject_id: int,
        name: str,
        host: str,
        port: int,
        printers: list[str],
        slots: int,
        macro_seconds: float,
        api_key: str | None,
        trust_loopback: bool,
        directory: Path,
        persistent: bool,
    ) -> None:
        """Prepare an OttoEject whose files live in directory; start() brings it up."""
        self.id = ottoeject_id
        self.name = name
        self.host = host
        self.port = port
        self.printers = list(printers)
        self.slots = slots
        self.directory = directory
        self.persistent = persistent
        self.trust_loopback = trust_loopback
        self._wanted_api_key = api_key
        self.api_key: str | None = None
        directory.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are short-lived and limited in length: keep them short.
        self._socket_dir: Path | None = None
        socket_dir = directory
        if len(str(directory / "moonraker.sock")) > MAX_SOCKET_PATH:
            self._socket_dir = socket_dir = Path(tempfile.mkdtemp(prefix="ottoeject-"))
        data_dir = directory / "moonraker"
        self.klipper = KlipperStandIn(
            socket_dir / "klippy.sock",
            macros=ottoeject_macros(self.printers, slots),
            macro_seconds=macro_seconds,
            config_file=data_dir / "config" / "printer.cfg",
            log_file=data_dir / "logs" / "klippy.log",
            klipper_path=directory / "klipper",
        )
        self.moonraker = MoonrakerProcess(
            data_dir, host, port, socket_dir / "klippy.sock", trust_loopback=trust_loopback
        )
        self.klippy_mode = "ready"  # what the control API last asked for

    @property
    def macros(self) -> list[str]:
        """The OttoEject's macro names."""
        return list(self.klipper.macros)

    def _write_printer_cfg(self) -> None:
        for sub in ("config", "docs"):  # Moonraker registers these from Klipper's source directory
            (self.klipper.klipper_path / sub).mkdir(parents=True, exist_ok=True)
        path = self.klipper.config_file
        path.parent.mkdir(parents=True, exist_ok=True)
        sections = [f"[gcode_macro {macro}]\ngcode:\n    M118 {macro}\n" for macro in self.macros]
        path.write_text(
            "# The simulated OttoEject's macros (simulator/klipper.py runs them).\n\n" + "\n".join(sections)
        )

    async def start(self) -> None:
        """Start Klipper and Moonraker; return once Moonraker reports Klipper ready."""
        await asyncio.to_thread(self._write_printer_cfg)
        await self.klipper.listen("ready")
        self.klippy_mode = "ready"
        await self.moonraker.start()
        stored = await asyncio.to_thread(self.moonraker.read_api_key)
        if self._wanted_api_key and stored != self._wanted_api_key:
            await self.moonraker.stop()
            await asyncio.to_thread(self.moonraker.write_api_key, self._wanted_api_key)
            await self.moonraker.start()
            stored = await asyncio.to_thread(self.moonraker.read_api_key)
        if not stored:
            raise OttoEjectError("Moonraker stored no API key")
        self.api_key = stored
        await self.wait_for_moonraker(lambda info: info.get("klippy_state") == "ready", "Klipper ready")

    async def close(self) -> None:
        """Stop Moonraker and Klipper."""
        await self.moonraker.stop()
        await self.klipper.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def server_info(self) -> dict[str, Any] | None:
        """Return Moonraker's /server/info result, or None when it does not answer."""
        url = f"http://{self.host}:{self.port}/server/info"
        headers = {"X-Api-Key": self.api_key} if self.api_key else {}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=2)) as response,
            ):
                body = await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None
        result = body.get("result") if isinstance(body, dict) else None
        return result if isinstance(result, dict) else None

    async def wait_for_moonraker(
        self, condition: Callable[[dict[str, Any]], bool], what: str, timeout: float = STATE_TIMEOUT
    ) -> None:
        """Poll Moonraker's /server/info until condition holds (Moonraker polls Klipper every 0.25 s)."""
        deadline = asyncio.get_running_loop().time() + timeout
        info: dict[str, Any] | None = None
        while asyncio.get_running_loop().time() < deadline:
            info = await self.server_info()
            if info is not None and condition(info):
                return
            await asyncio.sleep(0.05)
        raise OttoEjectError(f"Moonraker did not report {what} in {timeout:g} s (last: {info})")

    async def set_klippy(self, state: str) -> None:
        """Put Klipper in a state and return once Moonraker (when running) reports it.

        ready: Klipper running and ready (restarted when it was shut down or in error);
        startup: Klipper connected but starting; shutdown: an emergency stop; error: restarted
        with a configuration error; disconnected: Klipper gone (socket closed, reconnects find
        nothing); never_connected: Moonraker restarted while Klipper is gone, so it never saw it.
        """
        if state not in KLIPPY_STATES:
            raise ValueError(f"state must be one of {', '.join(KLIPPY_STATES)}")
        klipper = self.klipper
        if state in ("disconnected", "never_connected"):
            await klipper.stop_listening()
            if state == "never_connected" and self.moonraker.running:
                await self.moonraker.stop()
                await self.moonraker.start()
        elif not klipper.listening:
            await klipper.listen(state)
        elif state == "ready":
            if klipper.state == "startup":
                klipper.set_ready()
            elif klipper.state != "ready":
                await klipper.restart("ready")
        elif state == "shutdown":
            if klipper.state != "ready":
                raise ValueError(f"only a ready Klipper can shut down (it is {klipper.state})")
            klipper.shutdown()
        else:  # startup, error: a restart into that state
            await klipper.restart(state)
        self.klippy_mode = state
        if self.moonraker.running:
            await self._wait_for_mode(state)

    async def _wait_for_mode(self, state: str) -> None:
        if state in ("disconnected", "never_connected"):
            await self.wait_for_moonraker(lambda info: not info.get("klippy_connected"), "Klipper gone")
        else:
            await self.wait_for_moonraker(
                lambda info: bool(info.get("klippy_connected")) and info.get("klippy_state") == state,
                f"Klipper {state}",
            )

    async def stop_moonraker(self) -> None:
        """Stop Moonraker only: its port stops answering; Klipper carries on."""
        await self.moonraker.stop()

    async def start_moonraker(self) -> None:
        """Start Moonraker again on the same port and data; return once it reports Klipper's state."""
        if self.moonraker.running:
            return
        await self.moonraker.start()
        await self._wait_for_mode(self.klippy_mode)

    def info(self) -> dict[str, Any]:
        """Return what a client needs to reach this OttoEject."""
        return {
            "id": self.id,
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "api_key": self.api_key,
            "macros": self.macros,
            "printers": self.printers,
            "slots": self.slots,
            "macro_seconds": self.klipper.macro_seconds,
            "trust_loopback": self.trust_loopback,
        }

    def details(self) -> dict[str, Any]:
        """Return info plus Klipper's state, the running macro and every script received."""
        klipper = self.klipper
        return {
            **self.info(),
            "klippy_state": self.klippy_mode if not klipper.listening else klipper.state,
            "klippy_mode": self.klippy_mode,
            "klipper_connected": klipper.connected,
            "moonraker_running": self.moonraker.running,
            "idle_timeout": klipper.idle_state,
            "running": klipper.running,
            "time": klipper.now,
            "scripts": list(klipper.scripts),
        }
