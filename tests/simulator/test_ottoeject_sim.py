"""The simulated OttoEject: a real Moonraker 0.11.0 driving the Klipper stand-in over its unix socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.control import SimulatorControl, SimulatorError, start_simulator

TIMEOUT = 15.0


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def otto(control: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    info = await control.add_ottoeject(trust_loopback=False)
    yield info
    await control.remove_ottoeject(info["id"])


async def moonraker(
    http: aiohttp.ClientSession,
    otto: dict[str, Any],
    method: str,
    path: str,
    body: Any = None,
    api_key: str | None = "",
) -> tuple[int, Any]:
    """One request to the OttoEject's Moonraker with its API key (or another, or none)."""
    key = otto["api_key"] if api_key == "" else api_key
    headers = {"X-Api-Key": key} if key else {}
    url = f"http://{otto['host']}:{otto['port']}{path}"
    async with http.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def poll(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until check() holds, asking every 20 ms (bounded by TIMEOUT)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def running(control: SimulatorControl, otto: dict[str, Any]) -> str | None:
    return (await control.ottoeject(otto["id"]))["running"]


async def script_count(control: SimulatorControl, otto: dict[str, Any]) -> int:
    return len((await control.ottoeject(otto["id"]))["scripts"])


async def klippy_state(http: aiohttp.ClientSession, otto: dict[str, Any]) -> str:
    return str((await moonraker(http, otto, "GET", "/server/info"))[1]["result"]["klippy_state"])


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def script(http: aiohttp.ClientSession, otto: dict[str, Any], text: str) -> tuple[int, Any]:
    return await moonraker(http, otto, "POST", "/printer/gcode/script", {"script": text})


async def idle_state(http: aiohttp.ClientSession, otto: dict[str, Any]) -> str:
    _, body = await moonraker(http, otto, "GET", "/printer/objects/query?idle_timeout")
    return str(body["result"]["status"]["idle_timeout"]["state"])


async def test_ottoeject_is_listed_and_removed(control: SimulatorControl) -> None:
    info = await control.add_ottoeject(name="Robot", printers=["A1", "x2"], slots=2, macro_seconds=5)
    assert info["name"] == "Robot"
    assert info["host"] == "127.0.0.1"
    assert info["api_key"]
    assert info["macros"] == [
        "OTTOEJECT_HOME",
        "PARK_OTTOEJECT",
        "EJECT_FROM_A1",
        "LOAD_ONTO_A1",
        "EJECT_FROM_X2",
        "LOAD_ONTO_X2",
        "STORE_TO_SLOT_1",
        "GRAB_FROM_SLOT_1",
        "STORE_TO_SLOT_2",
        "GRAB_FROM_SLOT_2",
    ]
    assert info["id"] in [o["id"] for o in await control.ottoejects()]
    details = await control.ottoeject(info["id"])
    assert details["klippy_state"] == "ready"
    assert details["moonraker_running"]
    assert details["scripts"] == []
    assert details["running"] is None
    await control.remove_ottoeject(info["id"])
    with pytest.raises(SimulatorError) as err:
        await control.ottoeject(info["id"])
    assert err.value.status == 404


async def test_bad_requests_are_refused(control: SimulatorControl) -> None:
    for options in (
        {"printers": "P1"},
        {"slots": -1},
        {"macro_seconds": "x"},
        {"host": "10.0.0.1"},
        {"color": 1},
    ):
        with pytest.raises(SimulatorError) as err:
            await control.add_ottoeject(**options)
        assert err.value.status == 400
    with pytest.raises(SimulatorError) as err:
        await control.advance_ottoeject(999, 1)
    assert err.value.status == 404


async def test_real_moonraker_in_front_of_the_stand_in(
    http: aiohttp.ClientSession, otto: dict[str, Any]
) -> None:
    status, body = await moonraker(http, otto, "GET", "/server/info")
    assert status == 200
    info = body["result"]
    assert info["moonraker_version"] == "0.11.0"
    assert info["klippy_connected"]
    assert info["klippy_state"] == "ready"
    assert not info["failed_components"]
    assert info["warnings"] == []
    status, body = await moonraker(http, otto, "GET", "/printer/info")
    assert body["result"]["state"] == "ready"
    assert body["result"]["software_version"].endswith("-sim")
    status, body = await moonraker(http, otto, "GET", "/printer/objects/list")
    assert {"webhooks", "idle_timeout", "print_stats", "toolhead", "gcode_macro OTTOEJECT_HOME"} <= set(
        body["result"]["objects"]
    )
    # Without a key, or with a wrong one, Moonraker refuses (loopback is not trusted here).
    assert (await moonraker(http, otto, "GET", "/server/info", api_key=None))[0] == 401
    assert (await moonraker(http, otto, "GET", "/server/info", api_key="nope"))[0] == 401


async def test_loopback_is_trusted_by_default(control: SimulatorControl, http: aiohttp.ClientSession) -> None:
    info = await control.add_ottoeject()
    try:
        status, body = await moonraker(http, info, "GET", "/server/info", api_key=None)
        assert status == 200
        assert body["result"]["klippy_state"] == "ready"
        assert (await moonraker(http, info, "GET", "/server/info", api_key="wrong"))[0] == 401
    finally:
        await control.remove_ottoeject(info["id"])


async def test_given_api_key_is_moonrakers(control: SimulatorControl, http: aiohttp.ClientSession) -> None:
    key = "feedfacecafebeef0123456789abcdef"
    info = await control.add_ottoeject(api_key=key, trust_loopback=False)
    try:
        assert info["api_key"] == key
        assert (await moonraker(http, info, "GET", "/server/info"))[0] == 200
    finally:
        await control.remove_ottoeject(info["id"])


async def test_script_is_answered_when_the_macro_has_run(
    control: SimulatorControl, http: aiohttp.ClientSession, otto: dict[str, Any]
) -> None:
    assert await idle_state(http, otto) == "Idle"
    request = asyncio.create_task(script(http, otto, "EJECT_FROM_P1"))
    await poll(lambda: _is(running(control, otto), "EJECT_FROM_P1"))
    assert await idle_state(http, otto) == "Printing"
    await control.advance_ottoeject(otto["id"], 19)
    assert await idle_state(http, otto) == "Printing"
    assert not request.done()
    advanced = await control.advance_ottoeject(otto["id"], 1)
    assert advanced == {"time": 20.0, "running": None, "idle_timeout": "Printing"}
    assert await asyncio.wait_for(request, TIMEOUT) == (200, {"result": "ok"})
    # As on Klipper, idle_timeout leaves "Printing" a moment after the answer (the last move runs).
    assert await idle_state(http, otto) == "Printing"
    advanced = await control.advance_ottoeject(otto["id"], 0.5)
    assert advanced == {"time": 20.5, "running": None, "idle_timeout": "Ready"}
    assert await idle_state(http, otto) == "Ready"
    details = await control.ottoeject(otto["id"])
    assert details["scripts"] == [{"time": 0.0, "script": "EJECT_FROM_P1"}]


async def test_scripts_queue_behind_the_running_one(
    control: SimulatorControl, http: aiohttp.ClientSession, otto: dict[str, Any]
) -> None:
    await control.set_macro_seconds(otto["id"], 10)
    first = asyncio.create_task(script(http, otto, "OTTOEJECT_HOME"))
    await poll(lambda: _is(running(control, otto), "OTTOEJECT_HOME"))
    second = asyncio.create_task(script(http, otto, "STORE_TO_SLOT_2\nPARK_OTTOEJECT"))
    await poll(lambda: _is(script_count(control, otto), 2))
    await control.advance_ottoeject(otto["id"], 10)
    assert await asyncio.wait_for(first, TIMEOUT) == (200, {"result": "ok"})
    assert (await control.ottoeject(otto["id"]))["running"] == "STORE_TO_SLOT_2"
    await control.advance_ottoeject(otto["id"], 10)
    assert (await control.ottoeject(otto["id"]))["running"] == "PARK_OTTOEJECT"
    assert not second.done()
    await control.advance_ottoeject(otto["id"], 10)
    assert await asyncio.wait_for(second, TIMEOUT) == (200, {"result": "ok"})
    _, body = await moonraker(http, otto, "GET", "/printer/objects/query?toolhead=homed_axes")
    assert body["result"]["status"]["toolhead"] == {"homed_axes": "xyz"}


async def test_unknown_command_is_a_klipper_error(
    control: SimulatorControl, http: aiohttp.ClientSession, otto: dict[str, Any]
) -> None:
    status, body = await script(http, otto, "EJECT_FROM_P9")
    assert status == 400
    assert body["error"]["message"] == 'Unknown command:"EJECT_FROM_P9"'
    assert [entry["script"] for entry in (await control.ottoeject(otto["id"]))["scripts"]] == [
        "EJECT_FROM_P9"
    ]


async def test_klippy_states_as_moonraker_reports_them(
    control: SimulatorControl, http: aiohttp.ClientSession, otto: dict[str, Any]
) -> None:
    async def server_info() -> dict[str, Any]:
        return dict((await moonraker(http, otto, "GET", "/server/info"))[1]["result"])

    ident = otto["id"]
    assert (await control.set_klippy(ident, "shutdown"))["klippy_state"] == "shutdown"
    assert (await server_info())["klippy_state"] == "shutdown"
    status, body = await script(http, otto, "OTTOEJECT_HOME")
    assert status == 400
    assert "Shutdown" in body["error"]["message"]
    _, body = await moonraker(http, otto, "GET", "/printer/objects/query?webhooks")
    assert body["result"]["status"]["webhooks"]["state"] == "shutdown"

    await control.set_klippy(ident, "ready")
    assert (await server_info())["klippy_state"] == "ready"

    await control.set_klippy(ident, "error")
    assert (await server_info())["klippy_state"] == "error"
    _, body = await moonraker(http, otto, "GET", "/printer/objects/list")
    assert "gcode_macro OTTOEJECT_HOME" not in body["result"]["objects"]

    details = await control.set_klippy(ident, "disconnected")
    assert details["klippy_state"] == "disconnected"
    assert not details["klipper_connected"]
    info = await server_info()
    assert not info["klippy_connected"]
    assert info["klippy_state"] == "disconnected"
    assert (await moonraker(http, otto, "GET", "/printer/objects/list"))[0] == 503

    await control.set_klippy(ident, "never_connected")
    assert not (await server_info())["klippy_connected"]
    assert (await moonraker(http, otto, "GET", "/printer/objects/list"))[0] == 404

    await control.set_klippy(ident, "ready")
    assert (await server_info())["klippy_state"] == "ready"
    assert (await moonraker(http, otto, "GET", "/printer/objects/list"))[0] == 200
    with pytest.raises(SimulatorError) as err:
        await control.set_klippy(ident, "sleeping")
    assert err.value.status == 400


async def test_emergency_stop_and_firmware_restart_through_moonraker(
    control: SimulatorControl, http: aiohttp.ClientSession, otto: dict[str, Any]
) -> None:
    assert (await moonraker(http, otto, "POST", "/printer/emergency_stop"))[0] == 200
    assert (await control.ottoeject(otto["id"]))["klippy_state"] == "shutdown"
    assert (await moonraker(http, otto, "POST", "/printer/firmware_restart"))[0] == 200
    await poll(lambda: _is(klippy_state(http, otto), "ready"))


async def test_moonraker_stops_and_starts(
    control: SimulatorControl, http: aiohttp.ClientSession, otto: dict[str, Any]
) -> None:
    details = await control.stop_moonraker(otto["id"])
    assert not details["moonraker_running"]
    with pytest.raises(aiohttp.ClientConnectionError):
        await moonraker(http, otto, "GET", "/server/info")
    details = await control.start_moonraker(otto["id"])
    assert details["moonraker_running"]
    status, body = await moonraker(http, otto, "GET", "/server/info")  # the same API key
    assert status == 200
    assert body["result"]["klippy_state"] == "ready"


async def test_command_line_ottoejects_on_the_realtime_clock(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """--ottoejects: one per 127.0.2.x, the same API key after a restart; macros end in real time."""
    state_dir = tmp_path / "sim"
    async with start_simulator(
        printers=0, ottoejects=1, state_dir=state_dir, clock="realtime", time_scale=60
    ) as sim:
        (otto,) = sim.ottoejects  # started ready (the simulator waits for Moonraker to say so)
        assert otto["host"] == "127.0.2.1"  # tests may only connect to 127.0.0.1
        assert {"EJECT_FROM_P1", "EJECT_FROM_P2"} <= set(otto["macros"])
        key = otto["api_key"]
        # 20 simulated seconds at 60x: answered within a couple of real seconds.
        extra = await sim.control.add_ottoeject()
        assert await asyncio.wait_for(script(http, extra, "EJECT_FROM_P1"), TIMEOUT) == (
            200,
            {"result": "ok"},
        )
        assert (await sim.control.ottoeject(extra["id"]))["time"] >= 20
    assert sim.process.returncode == 0  # SIGTERM is a clean stop, Moonraker included
    async with start_simulator(printers=0, ottoejects=1, state_dir=state_dir) as sim:
        assert sim.ottoejects[0]["api_key"] == key
        assert (await sim.control.ottoeject(sim.ottoejects[0]["id"]))["moonraker_running"]
