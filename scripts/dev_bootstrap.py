"""The body of scripts/develop: a simulated farm and Home Assistant on loopback, set up and supervised.

scripts/develop runs scripts/setup, then this module with the virtualenv's Python. It

1. starts the simulator (`python -m simulator`, state in .dev/sim so serials and access codes
   stay the same between runs; stderr to .dev/simulator.log);
2. writes the Home Assistant config dir .dev/config (configuration.yaml bound to 127.0.0.1:8123,
   no integration that reaches the internet, custom_components/print_farm a symlink to the repo);
3. starts Home Assistant (log .dev/config/home-assistant.log) and checks it is not in recovery mode;
4. on the first run (no .dev/bootstrapped marker): creates the user dev/dev through onboarding
   (the onboarding steps after the user are marked done beforehand, so the core_config step never
   sets up met, radio_browser and the like), saves a long-lived token to .dev/token, creates the farm
   through the config flow and registers each simulated printer through POST /api/print_farm/printers;
5. prints the URL, the login, the printers and curl examples, then stays in the foreground:
   SIGINT/SIGTERM stop Home Assistant and the simulator by pid (exit 0); if either dies the other is
   stopped (exit 1). A restart asked from the UI (exit code 100) restarts Home Assistant only.

Every step of the first run can be repeated, so a first run that was interrupted is completed by the
next one. Children run in their own session (a Ctrl-C in the terminal reaches this process only, which
stops them in order) and get SIGTERM from the kernel should this process die (setpriv --pdeathsig).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
import contextlib
import importlib.util
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
import time
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / ".dev"
CONFIG = DEV / "config"
SIM_STATE = DEV / "sim"
TOKEN_FILE = DEV / "token"
MARKER = DEV / "bootstrapped"
DEMO_QUEUED = DEV / "demo-queued"
DEMO_FILE = DEV / "demo.gcode"
SIM_LOG = DEV / "simulator.log"
HASS_CONSOLE = DEV / "hass-console.log"
HASS_LOG = CONFIG / "home-assistant.log"

HA_HOST, HA_PORT = "127.0.0.1", 8123
HA_URL = f"http://{HA_HOST}:{HA_PORT}"
CLIENT_ID = f"{HA_URL}/"
USER_NAME, USERNAME, PASSWORD = "Developer", "dev", "dev"
TOKEN_NAME = "scripts/develop"
DISCOVERY_PORT = 2021
RESTART_EXIT_CODE = 100  # Home Assistant's "restart me"

SHELVES = 12  # the rack: an empty plate on shelves 1-9, shelves 10-12 free for finished plates
EMPTY_PLATES = range(1, 10)
DEMO_JOBS = 6
SIMULATOR_ARGS = [
    "--printers", "3", "--models", "P1S,X1C,A1", "--ottoejects", "1", "--ottoeject-slots", str(SHELVES),
    "--clock", "realtime", "--time-scale", "60",
]  # fmt: skip

CONFIGURATION_YAML = f"""\
# Written by scripts/develop on every run: edits here are lost. Add YAML under packages/ instead.
# Only integrations that stay on this machine: no default_config, nothing that reaches the internet.
homeassistant:
  packages: !include_dir_named packages

http:
  server_host: {HA_HOST}
  server_port: {HA_PORT}

frontend:
config:
api:
history:
logbook:
diagnostics:
system_health:

logger:
  default: info
  logs:
    custom_components.print_farm: debug
"""

DEMO_GCODE = """\
; HEADER_BLOCK_START
; Demo file written by scripts/develop for the simulated printers
; total layer number: 30
; estimated printing time (normal mode) = 20m 0s
; HEADER_BLOCK_END
G28
M140 S60
M104 S220
G1 Z0.2 F600
G1 X20 Y20 E1.0 F1500
M104 S0
M140 S0
"""


class DevelopError(Exception):
    """A step failed; the message says which and what to look at."""


def say(message: str) -> None:
    """Print one progress line."""
    print(f"develop: {message}", flush=True)


def shown(path: Path) -> str:
    """Return path relative to the working directory when it is under it, else absolute."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def log_tail(path: Path, lines: int = 15) -> str:
    """Return the last lines of a log file, indented, for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"    ({shown(path)} is missing)"
    return "\n".join(f"    {line}" for line in text) or f"    ({shown(path)} is empty)"


def port_answers(host: str, port: int) -> bool:
    """Return whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def write_private(path: Path, text: str) -> None:
    """Write text to path readable by its owner only (mode 600)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def write_store(name: str, version: int, data: dict[str, Any]) -> None:
    """Write a Home Assistant storage file .storage/<name> in the format of helpers.storage.Store."""
    store = CONFIG / ".storage"
    store.mkdir(parents=True, exist_ok=True)
    payload = {"version": version, "minor_version": 1, "key": name, "data": data}
    (store / name).write_text(json.dumps(payload, indent=2))


def prepare_files() -> None:
    """Write the config dir, the symlink, the demo G-code, and the first start's storage seeds."""
    for directory in (SIM_STATE, CONFIG / "custom_components", CONFIG / "packages"):
        directory.mkdir(parents=True, exist_ok=True)
    (CONFIG / "configuration.yaml").write_text(CONFIGURATION_YAML)
    DEMO_FILE.write_text(DEMO_GCODE)
    link = CONFIG / "custom_components" / "print_farm"
    target = ROOT / "custom_components" / "print_farm"
    if link.is_symlink() or not link.exists():
        if not (link.is_symlink() and link.resolve() == target):
            link.unlink(missing_ok=True)
            link.symlink_to(target, target_is_directory=True)
    else:
        raise DevelopError(f"{shown(link)} is not a symlink: remove it (or run scripts/develop --reset)")
    storage = CONFIG / ".storage"
    if not (storage / "onboarding").exists():
        # The user step is done through the API; the others are marked done now, because finishing
        # core_config through the API sets up met, radio_browser, google_translate and shopping_list.
        write_store("onboarding", 4, {"done": ["core_config", "analytics", "integration"]})
    if not (storage / "core.network").exists():
        # Home Assistant's HTTP client helper always creates a zeroconf (mDNS) instance on the network
        # integration's adapters; on the loopback adapter alone it joins no multicast group on the LAN.
        loopback = [name for _, name in socket.if_nameindex() if name.startswith("lo")][:1] or ["lo"]
        write_store("core.network", 1, {"configured_adapters": loopback})
    if not (storage / "http").exists():
        # Recovery mode ignores configuration.yaml and binds what this remembers (all addresses when
        # nothing is remembered): make even that loopback only.
        write_store("http", 1, {"server_host": [HA_HOST], "server_port": HA_PORT})


def check_frontend() -> None:
    """Fail early when the frontend package is missing: Home Assistant would start in recovery mode."""
    if importlib.util.find_spec("hass_frontend") is None:
        raise DevelopError("home-assistant-frontend is not installed in .venv: run scripts/setup again")


def registered_printers_on_disk() -> dict[str, dict[str, Any]]:
    """Return the printer subentries' data by serial from .storage/core.config_entries ({} if none)."""
    path = CONFIG / ".storage" / "core.config_entries"
    try:
        entries = json.loads(path.read_text())["data"]["entries"]
    except (OSError, ValueError, KeyError):
        return {}
    return {
        subentry["data"]["serial"]: subentry["data"]
        for entry in entries
        if entry.get("domain") == "print_farm"
        for subentry in entry.get("subentries", [])
        if subentry.get("subentry_type") == "printer" and "serial" in subentry.get("data", {})
    }


# --- processes ------------------------------------------------------------------------------------


def with_parent_death_signal(command: list[str]) -> list[str]:
    """Prefix command with setpriv so the kernel SIGTERMs it if this process dies (Linux)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


async def start_simulator() -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """Start the simulator and return the process and its ready line (control URL and printers)."""
    command = [sys.executable, "-m", "simulator", *SIMULATOR_ARGS]
    command += ["--state-dir", str(SIM_STATE), "--announce-port", str(DISCOVERY_PORT)]
    with SIM_LOG.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *with_parent_death_signal(command),
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            line = await process.stdout.readline()
    except TimeoutError:
        line = b""
    if not line:
        await stop_process(process, "simulator", 15)
        raise DevelopError(
            f"the simulator did not get ready; {shown(SIM_LOG)} ends with:\n{log_tail(SIM_LOG)}"
        )
    return process, json.loads(line)


async def start_hass(*, restart: bool = False) -> asyncio.subprocess.Process:
    """Start Home Assistant on .dev/config; its console output goes to .dev/hass-console.log."""
    command = [sys.executable, "-m", "homeassistant", "--config", str(CONFIG)]
    with HASS_CONSOLE.open("ab" if restart else "wb") as console:
        return await asyncio.create_subprocess_exec(
            *with_parent_death_signal(command),
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=console,
            stderr=console,
            start_new_session=True,
        )


async def stop_process(process: asyncio.subprocess.Process, name: str, timeout: float) -> None:
    """Stop one child by its pid: SIGTERM, then SIGKILL after timeout seconds."""
    if process.returncode is not None:
        return
    say(f"stopping {name} (pid {process.pid})")
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        async with asyncio.timeout(timeout):
            await process.wait()
    except TimeoutError:
        say(f"{name} did not stop within {timeout:.0f} s: killing it")
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# --- Home Assistant HTTP and websocket ------------------------------------------------------------


async def request(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    token: str | None = None,
    *,
    expect: tuple[int, ...] = (200,),
    **kwargs: Any,
) -> Any:
    """Call Home Assistant; return the decoded JSON body, or raise DevelopError on another status."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, HA_URL + path, headers=headers, **kwargs) as response:
        text = await response.text()
        if response.status not in expect:
            raise DevelopError(f"{method} {path} answered {response.status}: {text[:500]}")
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text


async def wait_for_http(session: aiohttp.ClientSession, hass: asyncio.subprocess.Process) -> None:
    """Wait until Home Assistant's HTTP server answers on 127.0.0.1:8123 (its process must stay alive)."""
    async with asyncio.timeout(600):
        while True:
            if hass.returncode is not None:
                raise DevelopError(
                    f"Home Assistant exited ({hass.returncode}) while starting; "
                    f"{shown(HASS_CONSOLE)} ends with:\n{log_tail(HASS_CONSOLE)}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(HA_URL + "/", allow_redirects=False) as response:
                    if response.status in (200, 302):
                        return
            await asyncio.sleep(0.5)


async def is_onboarded(session: aiohttp.ClientSession) -> bool:
    """Return whether the UI opens normally (the index does not redirect to /onboarding.html)."""
    async with session.get(HA_URL + "/", allow_redirects=False) as response:
        return not (response.status == 302 and "onboarding" in response.headers.get("Location", ""))


async def onboard_user(session: aiohttp.ClientSession) -> str:
    """Create the owner dev/dev through the onboarding user step; return its authorization code."""
    body = {
        "client_id": CLIENT_ID,
        "name": USER_NAME,
        "username": USERNAME,
        "password": PASSWORD,
        "language": "en",
    }
    result = await request(session, "POST", "/api/onboarding/users", json=body)
    return str(result["auth_code"])


async def log_in(session: aiohttp.ClientSession) -> str:
    """Log in as dev/dev through the login flow (used when the token file was lost); return a code."""
    flow = await request(
        session,
        "POST",
        "/auth/login_flow",
        json={"client_id": CLIENT_ID, "handler": ["homeassistant", None], "redirect_uri": CLIENT_ID},
    )
    body = {"client_id": CLIENT_ID, "username": USERNAME, "password": PASSWORD}
    result = await request(session, "POST", f"/auth/login_flow/{flow['flow_id']}", json=body)
    if result.get("type") != "create_entry":
        raise DevelopError(f"could not log in as {USERNAME}/{PASSWORD}: {result}")
    return str(result["result"])


async def access_token(session: aiohttp.ClientSession, code: str) -> str:
    """Exchange an authorization code for a short-lived access token."""
    data = {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID}
    result = await request(session, "POST", "/auth/token", data=data)
    return str(result["access_token"])


async def websocket_command(
    session: aiohttp.ClientSession, token: str, commands: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run websocket commands one after the other after authenticating; return their result messages."""
    results = []
    async with session.ws_connect(HA_URL.replace("http", "ws", 1) + "/api/websocket") as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": token})
        if (answer := await ws.receive_json())["type"] != "auth_ok":
            raise DevelopError(f"websocket authentication failed: {answer}")
        for number, command in enumerate(commands, start=1):
            await ws.send_json({"id": number, **command})
            while (answer := await ws.receive_json()).get("id") != number:
                pass
            results.append(answer)
    return results


async def long_lived_token(session: aiohttp.ClientSession, token: str) -> str:
    """Create the long-lived token "scripts/develop" (replacing an old one of that name); return it."""
    create = {"type": "auth/long_lived_access_token", "client_name": TOKEN_NAME, "lifespan": 3650}
    (answer,) = await websocket_command(session, token, [create])
    if not answer["success"]:
        # A token of that name exists (its file was lost): delete it and create it again.
        (listing,) = await websocket_command(session, token, [{"type": "auth/refresh_tokens"}])
        old = [
            {"type": "auth/delete_refresh_token", "refresh_token_id": item["id"]}
            for item in listing["result"]
            if item.get("client_name") == TOKEN_NAME
        ]
        *_, answer = await websocket_command(session, token, [*old, create])
        if not answer["success"]:
            raise DevelopError(f"could not create a long-lived token: {answer}")
    return str(answer["result"])


async def ensure_token(session: aiohttp.ClientSession) -> str:
    """Return a working long-lived token: .dev/token, or a new one (onboarding the user if needed)."""
    if TOKEN_FILE.exists():
        token = TOKEN_FILE.read_text().strip()
        async with session.get(HA_URL + "/api/", headers={"Authorization": f"Bearer {token}"}) as response:
            if response.status == 200:
                return token
        say(f"{shown(TOKEN_FILE)} is not accepted: creating a new token")
    if await is_onboarded(session):
        code = await log_in(session)
    else:
        say(f"onboarding: creating the user {USERNAME}/{PASSWORD}")
        code = await onboard_user(session)
    token = await long_lived_token(session, await access_token(session, code))
    write_private(TOKEN_FILE, token + "\n")
    say(f"long-lived token saved to {shown(TOKEN_FILE)}")
    return token


async def wait_until_running(session: aiohttp.ClientSession, token: str) -> dict[str, Any]:
    """Fail if Home Assistant is in recovery or safe mode; wait until it is RUNNING; return its config."""
    async with asyncio.timeout(600):
        while True:
            config: dict[str, Any] = await request(session, "GET", "/api/config", token)
            if config.get("recovery_mode") or config.get("safe_mode"):
                raise DevelopError(
                    "Home Assistant started in recovery/safe mode and ignores configuration.yaml; "
                    f"{shown(HASS_LOG)} ends with:\n{log_tail(HASS_LOG)}"
                )
            if config.get("state") == "RUNNING":
                return config
            await asyncio.sleep(1)


async def ensure_farm(session: aiohttp.ClientSession, token: str) -> None:
    """Create the Print Farm entry through the config flow unless it exists."""
    entries = await request(session, "GET", "/api/config/config_entries/entry?domain=print_farm", token)
    if entries:
        return
    say("creating the farm through the config flow")
    flow = await request(
        session,
        "POST",
        "/api/config/config_entries/flow",
        token,
        json={"handler": "print_farm", "show_advanced_options": True},
    )
    if flow.get("type") != "form":
        raise DevelopError(f"the Print Farm config flow did not show its form: {flow}")
    body = {"discovery_host": HA_HOST, "discovery_port": DISCOVERY_PORT}
    result = await request(
        session, "POST", f"/api/config/config_entries/flow/{flow['flow_id']}", token, json=body
    )
    if result.get("type") != "create_entry":
        raise DevelopError(f"the Print Farm config flow did not create the entry: {result}")


async def ignore_country_repair(session: aiohttp.ClientSession, token: str) -> None:
    """Ignore the "country not configured" repair (onboarding's core_config step would have set it)."""
    (issues,) = await websocket_command(session, token, [{"type": "repairs/list_issues"}])
    if any(issue["issue_id"] == "country_not_configured" for issue in issues["result"]["issues"]):
        ignore = {"domain": "homeassistant", "issue_id": "country_not_configured", "ignore": True}
        await websocket_command(session, token, [{"type": "repairs/ignore_issue", **ignore}])


async def farm_printers(session: aiohttp.ClientSession, token: str) -> list[dict[str, Any]]:
    """Return every registered printer's details (GET /api/print_farm/printers/{id}), by id."""
    listing = await request(session, "GET", "/api/print_farm/printers", token)
    return [
        await request(session, "GET", f"/api/print_farm/printers/{item['id']}", token) for item in listing
    ]


async def ensure_printers(
    session: aiohttp.ClientSession, token: str, simulated: list[dict[str, Any]]
) -> None:
    """Register every simulated printer that is not registered yet (POST /api/print_farm/printers)."""
    registered = {printer["serial_number"] for printer in await farm_printers(session, token)}
    for printer in simulated:
        if printer["serial"] in registered:
            continue
        say(f"registering {printer['name']} ({printer['serial']})")
        body = {
            "name": printer["name"],
            "ip_address": printer["host"],
            "access_code": printer["access_code"],
            "serial_number": printer["serial"],
            "mqtt_port": printer["mqtt_port"],
            "ftps_port": printer["ftps_port"],
            # The A1's and P1's JPEG camera; the X1 and H2 have none (they stream RTSPS).
            **({"camera_port": printer["camera_port"]} if printer.get("camera_port") else {}),
        }
        await request(session, "POST", "/api/print_farm/printers", token, expect=(201,), json=body)


async def ensure_ottoejects_and_rack(
    session: aiohttp.ClientSession, token: str, simulated: list[dict[str, Any]]
) -> None:
    """Register the simulated OttoEjects and one rack if they are not there (on every start: idempotent)."""
    registered = await request(session, "GET", "/api/print_farm/ottoeject", token)
    names = {item["device_name"] for item in registered}
    for ejector in simulated:
        if ejector["name"] in names:
            continue
        say(f"registering {ejector['name']} ({ejector['host']}:{ejector['port']})")
        body = {
            "device_name": ejector["name"],
            "ip_address": ejector["host"],
            "port": ejector["port"],
            "api_key": ejector["api_key"],
        }
        await request(session, "POST", "/api/print_farm/ottoeject", token, expect=(201,), json=body)
    if not await request(session, "GET", "/api/print_farm/ottoracks", token):
        say(f"creating rack A ({SHELVES} shelves, empty plates on {len(EMPTY_PLATES)} of them)")
        body = {"name": "A", "number_of_shelves": SHELVES, "shelf_spacing_mm": 80, "bed_size": "256x256"}
        rack = await request(session, "POST", "/api/print_farm/ottoracks", token, expect=(201,), json=body)
        for shelf in EMPTY_PLATES:
            await request(
                session,
                "PUT",
                f"/api/print_farm/ottoracks/{rack['id']}/shelves/{shelf}",
                token,
                json={"has_plate": True, "plate_state": "empty"},
            )


async def ensure_lights_out(
    session: aiohttp.ClientSession, token: str, simulated: list[dict[str, Any]]
) -> None:
    """The OttoEject serves every printer (P1, P2, ... in the simulator's order) and stores on rack A."""
    ejectors = await request(session, "GET", "/api/print_farm/ottoeject", token)
    racks = await request(session, "GET", "/api/print_farm/ottoracks", token)
    if not ejectors or not racks:
        return
    ejector_id = ejectors[0]["id"]
    positions = {printer["serial"]: f"P{index + 1}" for index, printer in enumerate(simulated)}
    for printer in await farm_printers(session, token):
        position = positions.get(printer["serial_number"])
        if position is None or (printer.get("ottoeject_id"), printer.get("ottoeject_position")) == (
            ejector_id,
            position,
        ):
            continue
        say(f"{printer['name']}: its plates go to OttoEject {ejector_id}, where it is {position}")
        body = {"ottoeject_id": ejector_id, "ottoeject_position": position}
        await request(session, "PUT", f"/api/print_farm/printers/{printer['id']}", token, json=body)
    if racks[0].get("ottoeject_id") != ejector_id:
        await request(
            session,
            "PUT",
            f"/api/print_farm/ottoracks/{racks[0]['id']}",
            token,
            json={"ottoeject_id": ejector_id},
        )


async def queue_demo_jobs(session: aiohttp.ClientSession, token: str) -> None:
    """Queue the demo print a few times for any printer, to start by themselves (first run only)."""
    if await request(session, "GET", "/api/print_farm/print-jobs", token):
        return
    say(f"queueing {DEMO_JOBS} demo jobs for any printer: watch them print, eject, store and load")
    form = aiohttp.FormData()
    form.add_field("file", DEMO_FILE.read_bytes(), filename="demo.gcode")
    item = await request(session, "POST", "/api/print_farm/print-jobs/upload", token, data=form)
    for _ in range(DEMO_JOBS):
        body = {"print_item_id": item["print_item_id"], "printer_id": None, "auto_start": True}
        await request(session, "POST", "/api/print_farm/print-jobs", token, expect=(201,), json=body)


async def ensure_books(session: aiohttp.ClientSession, token: str) -> None:
    """Two spools, a product and its recipe, so that the production books have something to show."""
    spools = await request(session, "GET", "/api/print_farm/v1/spools", token)
    if spools["total"]:
        return
    say("adding two spools, a product and its recipe to the production books")
    for body in (
        {"name": "PLA Black", "material": "PLA", "color": "Black", "vendor": "Polymaker", "price": 24.99},
        {
            "name": "PETG Orange",
            "material": "PETG",
            "color": "Orange",
            "vendor": "Prusament",
            "price": 29.99,
            "remaining_grams": 180,
        },
    ):
        await request(session, "POST", "/api/print_farm/v1/spools", token, expect=(201,), json=body)
    product = await request(
        session,
        "POST",
        "/api/print_farm/v1/products",
        token,
        expect=(201,),
        json={"name": "Phone Stand", "sku": "PS-1"},
    )
    recipe = {
        "product_id": product["id"],
        "materials": [{"material": "PLA", "grams_per_unit": 45.5}],
        "print_hours_per_unit": 1.25,
        "labour_cost_per_unit": 120,
        "packaging_cost_per_unit": 35,
        "machine_cost_per_hour": 35,
    }
    await request(session, "POST", "/api/print_farm/v1/inventory/recipes", token, expect=(201,), json=recipe)


async def follow_simulator_ports(
    session: aiohttp.ClientSession,
    token: str,
    simulated: list[dict[str, Any]],
    saved: dict[str, dict[str, Any]],
) -> None:
    """Update registered printers whose simulator came up on another address or port than last time.

    The simulator uses 8883/990 when they are free and any free port otherwise (990 needs root), and
    does not remember its choice; PUT /api/print_farm/printers/{id} points the printer at the new one.
    """
    changed = {
        printer["serial"]: printer
        for printer in simulated
        if printer["serial"] in saved
        and (
            saved[printer["serial"]].get("host"),
            saved[printer["serial"]].get("mqtt_port"),
            saved[printer["serial"]].get("ftps_port"),
            saved[printer["serial"]].get("camera_port", 6000) if printer.get("camera_port") else None,
        )
        != (printer["host"], printer["mqtt_port"], printer["ftps_port"], printer.get("camera_port"))
    }
    if not changed:
        return
    for details in await farm_printers(session, token):
        if (printer := changed.get(details["serial_number"])) is not None:
            say(
                f"{printer['name']} now listens on MQTT {printer['mqtt_port']}, FTPS {printer['ftps_port']}: updating it"
            )
            body = {
                "ip_address": printer["host"],
                "mqtt_port": printer["mqtt_port"],
                "ftps_port": printer["ftps_port"],
                **({"camera_port": printer["camera_port"]} if printer.get("camera_port") else {}),
            }
            await request(session, "PUT", f"/api/print_farm/printers/{details['id']}", token, json=body)


async def wait_for_printers(
    session: aiohttp.ClientSession, token: str, timeout: float = 30
) -> list[dict[str, Any]]:
    """Wait (up to timeout seconds) until every registered printer has reported; return their details."""
    deadline = time.monotonic() + timeout
    while True:
        printers = await farm_printers(session, token)
        if time.monotonic() > deadline or all(
            printer["status"] not in ("OFFLINE", "UNKNOWN") for printer in printers
        ):
            return printers
        await asyncio.sleep(1)


async def bootstrap(
    hass: asyncio.subprocess.Process,
    simulated: list[dict[str, Any]],
    saved: dict[str, dict[str, Any]],
    ejectors: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Wait for Home Assistant, do the first run's setup if it is not done; return the printers."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await wait_for_http(session, hass)
        say(f"Home Assistant answers on {HA_URL} after {time.monotonic() - started:.1f} s")
        token = await ensure_token(session)
        config = await wait_until_running(session, token)
        say(f"Home Assistant {config.get('version')} is running after {time.monotonic() - started:.1f} s")
        if not await is_onboarded(session):
            raise DevelopError("the UI still shows onboarding")
        if not MARKER.exists():
            await ignore_country_repair(session, token)
            await ensure_farm(session, token)
            await ensure_printers(session, token, simulated)
            MARKER.write_text("onboarding, token, farm and printers are done; delete .dev/ to start over\n")
        elif "print_farm" not in config.get("components", []):
            say("warning: the print_farm integration is not loaded (entry deleted or failed): see the log")
        else:
            await follow_simulator_ports(session, token, simulated, saved)
        farm_loaded = "print_farm" in (await request(session, "GET", "/api/config", token)).get(
            "components", []
        )
        if farm_loaded:
            await ensure_ottoejects_and_rack(session, token, ejectors)
            await ensure_lights_out(session, token, simulated)
            await ensure_books(session, token)
            if not DEMO_QUEUED.exists():
                await queue_demo_jobs(session, token)
                DEMO_QUEUED.write_text(
                    "the demo jobs were queued once; delete this file to queue them again\n"
                )
        return await wait_for_printers(session, token)


async def wait_for_restart(hass: asyncio.subprocess.Process) -> None:
    """Wait until a restarted Home Assistant answers and runs normally (not in recovery mode)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await wait_for_http(session, hass)
        await wait_until_running(session, TOKEN_FILE.read_text().strip())


def print_summary(printers: list[dict[str, Any]], simulated: list[dict[str, Any]], control: str) -> None:
    """Print how to reach everything: URL, login, token, printers, logs and curl examples."""
    by_serial = {printer["serial"]: printer for printer in simulated}
    token = shown(TOKEN_FILE)
    lines = [
        "",
        "=" * 100,
        f"Home Assistant   {HA_URL}   login {USERNAME} / {PASSWORD}",
        f"API token        {token}   (Authorization: Bearer $(cat {token}))",
        "Printers:",
    ]
    for printer in printers:
        sim = by_serial.get(printer["serial_number"], {})
        ports = f"MQTT {sim['mqtt_port']}, FTPS {sim['ftps_port']}" if sim else "not simulated"
        if sim.get("camera_port"):
            ports += f", camera {sim['camera_port']}"
        lines.append(
            f"  id {printer['id']}  {printer['name']:<18} serial {printer['serial_number']}  "
            f"host {printer['ip_address']} ({ports})  {printer['status']}"
        )
    if not printers:
        lines.append("  none registered")
    lines += [
        f"Logs             {shown(HASS_LOG)}, {shown(SIM_LOG)}",
        f"Simulator API    {control}/printers, {control}/ottoejects  (see simulator/farm.py)",
        f"OttoEjects       {HA_URL}/api/print_farm/ottoeject   Racks {HA_URL}/api/print_farm/ottoracks",
    ]
    auth = f'-H "Authorization: Bearer $(cat {token})"'
    if printers:
        first = printers[0]["id"]
        lines += [
            "",
            f"Upload the demo G-code ({shown(DEMO_FILE)}, 20 simulated minutes) to printer {first} and start it:",
            f"  curl {auth} -F file=@{shown(DEMO_FILE)} {HA_URL}/api/print_farm/printers/{first}/upload",
            f"  curl {auth} -H 'Content-Type: application/json' -d '{{\"filename\":\"demo.gcode\"}}' "
            f"{HA_URL}/api/print_farm/printers/{first}/start-print",
        ]
    lines += [
        "",
        "The lights-out loop: the demo jobs (any printer) print, cool, are ejected, stored on rack A, and a",
        "fresh plate is loaded, by themselves. Watch it on the Print Farm device (Next job, Active workflows,",
        "Jobs completed today), the rack's shelves, the logbook (print_farm_workflow_* events), or:",
        f"  curl {auth} {HA_URL}/api/print_farm/orchestration/active-jobs",
        "Ctrl-C stops Home Assistant and the simulator.",
        "=" * 100,
    ]
    print("\n".join(lines), flush=True)


# --- supervision ----------------------------------------------------------------------------------


class Supervisor:
    """The two children, the signals, and the order in which things are started and stopped."""

    def __init__(self) -> None:
        """Nothing runs yet."""
        self.simulator: asyncio.subprocess.Process | None = None
        self.hass: asyncio.subprocess.Process | None = None
        self.stop_requested = asyncio.Event()
        self.signals = 0

    def on_signal(self, signum: int) -> None:
        """SIGINT/SIGTERM: stop in order; a second one kills the children at once."""
        self.signals += 1
        if self.signals == 1:
            print(flush=True)
            say(f"{signal.Signals(signum).name}: stopping")
            self.stop_requested.set()
            return
        for process in (self.hass, self.simulator):
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()

    async def start(self) -> None:
        """Start the simulator and Home Assistant, bootstrap, and print the summary."""
        saved = registered_printers_on_disk()
        started = time.monotonic()
        self.simulator, ready = await start_simulator()
        say(
            f"simulator ready in {time.monotonic() - started:.1f} s: {len(ready['printers'])} printers, "
            f"control API {ready['control']} (pid {self.simulator.pid}, log {shown(SIM_LOG)})"
        )
        self.hass = await start_hass()
        say(f"starting Home Assistant (pid {self.hass.pid}, log {shown(HASS_LOG)})")
        printers = await bootstrap(self.hass, ready["printers"], saved, ready.get("ottoejects", []))
        print_summary(printers, ready["printers"], ready["control"])

    async def first_of(self, *waits: Awaitable[Any]) -> asyncio.Future[Any]:
        """Wait for the stop request, a child's exit or one of waits; return the task that finished."""
        watchers: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.stop_requested.wait())]
        watchers += [asyncio.ensure_future(p.wait()) for p in (self.simulator, self.hass) if p is not None]
        extra = [asyncio.ensure_future(wait) for wait in waits]
        done, _ = await asyncio.wait([*watchers, *extra], return_when=asyncio.FIRST_COMPLETED)
        for watcher in watchers:
            watcher.cancel()  # the waits in extra go on
        return next(iter(done))

    def dead_child(self) -> tuple[str, int] | None:
        """Return the name and exit code of a child that exited, if any."""
        for name, process in (("Home Assistant", self.hass), ("the simulator", self.simulator)):
            if process is not None and process.returncode is not None:
                return name, process.returncode
        return None

    async def run(self) -> int:
        """Start everything, then wait for a signal or a death; stop everything; return the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.on_signal, signum)
        code = 0
        startup = asyncio.ensure_future(self.start())
        try:
            while True:
                finished = await self.first_of(startup) if not startup.done() else await self.first_of()
                if self.stop_requested.is_set():
                    break
                if finished is startup:
                    startup.result()  # raises what went wrong
                    continue
                dead = self.dead_child()
                if dead is None:
                    continue
                name, returncode = dead
                if name == "Home Assistant" and returncode == RESTART_EXIT_CODE and startup.done():
                    say("Home Assistant asked for a restart: starting it again")
                    self.hass = await start_hass(restart=True)
                    restart = asyncio.ensure_future(wait_for_restart(self.hass))
                    if await self.first_of(restart) is restart:
                        restart.result()
                        say(f"Home Assistant is back on {HA_URL}")
                    else:
                        restart.cancel()
                        with contextlib.suppress(asyncio.CancelledError, DevelopError):
                            await restart
                    continue
                say(f"{name} exited with code {returncode}: stopping the rest")
                log = HASS_LOG if name == "Home Assistant" else SIM_LOG
                say(f"{shown(log)} ends with:\n{log_tail(log)}")
                code = 1
                break
        except DevelopError as err:
            say(f"error: {err}")
            code = 1
        except (aiohttp.ClientError, OSError, ValueError, KeyError) as err:
            say(f"error: {type(err).__name__}: {err}")
            code = 1
        finally:
            if not startup.done():
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await startup
            if self.hass is not None:
                await stop_process(self.hass, "Home Assistant", 120)
            if self.simulator is not None:
                await stop_process(self.simulator, "the simulator", 30)
        say("stopped" if code == 0 else "stopped after an error")
        return code


def main() -> None:
    """Parse the arguments, prepare .dev/, and run until stopped."""
    parser = argparse.ArgumentParser(prog="scripts/develop", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reset", action="store_true", help="delete .dev/ first (users, token, printers)")
    args = parser.parse_args()
    try:
        if port_answers(HA_HOST, HA_PORT):
            raise DevelopError(f"something already listens on {HA_HOST}:{HA_PORT} (scripts/develop running?)")
        if args.reset and DEV.exists():
            say(f"--reset: deleting {shown(DEV)}")
            shutil.rmtree(DEV)
        check_frontend()
        prepare_files()
    except DevelopError as err:
        say(f"error: {err}")
        sys.exit(1)
    sys.exit(asyncio.run(Supervisor().run()))


if __name__ == "__main__":
    main()
