"""The Moonraker client against a simulated OttoEject: a real Moonraker in front of the Klipper stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from custom_components.print_farm.protocols.moonraker import (
    EjectorState,
    EjectorStatus,
    MoonrakerAuthError,
    MoonrakerBusyError,
    MoonrakerClient,
    MoonrakerConnectionError,
    MoonrakerMacroError,
    MoonrakerNotReadyError,
    MoonrakerUnknownMacroError,
    macro_script,
)
from simulator.control import SimulatorControl

TIMEOUT = 15.0
POLL = 0.05  # Moonraker is polled by design; every wait below is bounded by TIMEOUT


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def ottoeject(simulator: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    """A fresh OttoEject (printers P1 and P2, six slots, 20 s macros), Klipper ready."""
    info = await simulator.add_ottoeject()
    yield info
    await simulator.remove_ottoeject(info["id"])


@pytest.fixture
async def client(session: aiohttp.ClientSession, ottoeject: dict[str, Any]) -> AsyncIterator[MoonrakerClient]:
    moonraker = make_client(session, ottoeject)
    yield moonraker
    await moonraker.close()


def make_client(session: aiohttp.ClientSession, ottoeject: dict[str, Any], **kwargs: Any) -> MoonrakerClient:
    kwargs.setdefault("api_key", ottoeject["api_key"])
    return MoonrakerClient(session, ottoeject["host"], ottoeject["port"], **kwargs)


async def wait_for_status(
    client: MoonrakerClient, condition: Callable[[EjectorStatus], bool], timeout: float = TIMEOUT
) -> EjectorStatus:
    """Poll the status until condition holds (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            if condition(status := await client.status()):
                return status
            await asyncio.sleep(POLL)


async def device_runs(simulator: SimulatorControl, ottoeject: dict[str, Any], macro: str) -> None:
    """Wait until the device itself runs macro (the script went through Moonraker to Klipper)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if (await simulator.ottoeject(ottoeject["id"]))["running"] == macro:
                return
            await asyncio.sleep(POLL)


async def status_as_if_ready(client: MoonrakerClient, monkeypatch: pytest.MonkeyPatch) -> EjectorStatus:
    """The status when /server/info still said ready (a race): Klipper's own route answers."""

    async def stale_info() -> dict[str, Any]:
        return {"klippy_connected": True, "klippy_state": "ready"}

    with monkeypatch.context() as patch:
        patch.setattr(client, "server_info", stale_info)
        return await client.status()


async def scripts(simulator: SimulatorControl, ottoeject: dict[str, Any]) -> list[str]:
    return [entry["script"] for entry in (await simulator.ottoeject(ottoeject["id"]))["scripts"]]


async def test_online_when_klipper_ready(client: MoonrakerClient) -> None:
    status = await client.status()
    assert status == EjectorStatus(EjectorState.ONLINE, "ready", "Printer is ready", None, None)
    assert (await client.server_info())["moonraker_version"] == "0.11.0"


async def test_macros_are_the_devices_gcode_macros(
    client: MoonrakerClient, ottoeject: dict[str, Any]
) -> None:
    macros = await client.macros()
    assert macros == ottoeject["macros"]
    assert {"OTTOEJECT_HOME", "PARK_OTTOEJECT", "EJECT_FROM_P2", "LOAD_ONTO_P1"} <= set(macros)
    assert "STORE_TO_SLOT_6" in macros
    assert "GRAB_FROM_SLOT_7" not in macros


async def test_ejecting_while_a_macro_runs_then_acknowledged(
    simulator: SimulatorControl, client: MoonrakerClient, ottoeject: dict[str, Any]
) -> None:
    run = asyncio.create_task(client.run_macro("eject_from_p1"))
    await device_runs(simulator, ottoeject, "EJECT_FROM_P1")
    status = await client.status()
    assert status.state is EjectorState.EJECTING
    assert status.current_macro == "EJECT_FROM_P1"
    assert status.macro_started is not None
    assert not run.done()

    await simulator.advance_ottoeject(ottoeject["id"], 20)
    outcome = await asyncio.wait_for(run, TIMEOUT)
    assert outcome.acknowledged
    assert outcome.response == {"result": "ok"}
    assert outcome.detail is None
    # Answered when its commands ran; its last move runs out a moment later (as on Klipper).
    assert (await client.status()).state is EjectorState.EJECTING
    await simulator.advance_ottoeject(ottoeject["id"], 1)
    status = await client.status()
    assert status.state is EjectorState.ONLINE
    assert status.current_macro is None
    assert await scripts(simulator, ottoeject) == ["EJECT_FROM_P1"]


async def test_macro_outlasting_the_wait_is_not_sent_again(
    simulator: SimulatorControl, session: aiohttp.ClientSession, ottoeject: dict[str, Any]
) -> None:
    client = make_client(session, ottoeject, ack_timeout=0.5)
    try:
        outcome = await client.run_macro("EJECT_FROM_P2")
        assert not outcome.acknowledged
        assert outcome.response is None
        assert outcome.detail is not None
        assert "EJECT_FROM_P2" in outcome.detail

        await device_runs(simulator, ottoeject, "EJECT_FROM_P2")
        status = await client.status()
        assert status.state is EjectorState.EJECTING
        assert status.current_macro == "EJECT_FROM_P2"
        assert status.macro_started is not None
        # While it runs, another macro is refused, and nothing is sent.
        with pytest.raises(MoonrakerBusyError):
            await client.run_macro("PARK_OTTOEJECT")

        await simulator.advance_ottoeject(ottoeject["id"], 21)  # the macro, then its last move
        status = await wait_for_status(client, lambda s: s.state is EjectorState.ONLINE)
        assert status.current_macro is None
        assert status.macro_started is None
        assert await scripts(simulator, ottoeject) == ["EJECT_FROM_P2"]
    finally:
        await client.close()


async def test_macro_outlasting_the_wait_then_the_next_one(
    simulator: SimulatorControl, session: aiohttp.ClientSession, ottoeject: dict[str, Any]
) -> None:
    """Seen running, then idle: the macro is over and the next one goes, once."""
    client = make_client(session, ottoeject, ack_timeout=0.2)
    try:
        assert not (await client.run_macro("OTTOEJECT_HOME")).acknowledged
        await device_runs(simulator, ottoeject, "OTTOEJECT_HOME")
        assert (await client.status()).state is EjectorState.EJECTING  # seen running
        await simulator.advance_ottoeject(ottoeject["id"], 21)  # the macro, then its last move
        status = await wait_for_status(client, lambda s: s.state is EjectorState.ONLINE)
        assert status.current_macro is None
        # The next macro can go, once.
        await simulator.set_macro_seconds(ottoeject["id"], 0)
        assert (await client.run_macro("PARK_OTTOEJECT")).acknowledged
        assert await scripts(simulator, ottoeject) == ["OTTOEJECT_HOME", "PARK_OTTOEJECT"]
    finally:
        await client.close()


async def test_macro_parameters_are_sent_and_validated(
    simulator: SimulatorControl, client: MoonrakerClient, ottoeject: dict[str, Any]
) -> None:
    await simulator.set_macro_seconds(ottoeject["id"], 0)
    outcome = await client.run_macro("STORE_TO_SLOT_3", {"speed": 2, "mode": "soft", "z": 0.5})
    assert outcome.acknowledged
    for bad in ({"x": "1\nM112"}, {"x": "1;M112"}, {"x": "a b"}, {"x": True}, {"bad key": 1}, {"x": ""}):
        with pytest.raises(ValueError, match="parameter"):
            await client.run_macro("STORE_TO_SLOT_3", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="macro name"):
        await client.run_macro("STORE_TO_SLOT_3\nM112")
    assert await scripts(simulator, ottoeject) == ["STORE_TO_SLOT_3 SPEED=2 MODE=soft Z=0.5"]
    assert macro_script("park_ottoeject") == "PARK_OTTOEJECT"


async def test_unknown_macro_is_refused_without_sending(
    simulator: SimulatorControl, client: MoonrakerClient, ottoeject: dict[str, Any]
) -> None:
    with pytest.raises(MoonrakerUnknownMacroError):
        await client.run_macro("EJECT_FROM_P3")
    with pytest.raises(MoonrakerUnknownMacroError):
        await client.run_macro("M112")
    assert await scripts(simulator, ottoeject) == []


async def test_wrong_api_key_is_an_auth_error(
    session: aiohttp.ClientSession, ottoeject: dict[str, Any]
) -> None:
    client = make_client(session, ottoeject, api_key="0123456789abcdef0123456789abcdef")
    with pytest.raises(MoonrakerAuthError):
        await client.status()
    with pytest.raises(MoonrakerAuthError):
        await client.macros()
    with pytest.raises(MoonrakerAuthError):
        await client.run_macro("OTTOEJECT_HOME")
    assert "0123456789abcdef" not in repr(client)


async def test_missing_api_key_when_not_trusted(
    simulator: SimulatorControl, session: aiohttp.ClientSession
) -> None:
    info = await simulator.add_ottoeject(trust_loopback=False)
    try:
        with pytest.raises(MoonrakerAuthError):
            await make_client(session, info, api_key=None).status()
        assert (await make_client(session, info).status()).state is EjectorState.ONLINE
    finally:
        await simulator.remove_ottoeject(info["id"])


async def test_offline_when_moonraker_is_down(
    simulator: SimulatorControl, client: MoonrakerClient, ottoeject: dict[str, Any]
) -> None:
    await simulator.stop_moonraker(ottoeject["id"])
    status = await client.status()
    assert status.state is EjectorState.OFFLINE
    assert status.klippy_state is None
    assert status.message
    with pytest.raises(MoonrakerConnectionError):
        await client.run_macro("OTTOEJECT_HOME")

    await simulator.start_moonraker(ottoeject["id"])
    assert (await client.status()).state is EjectorState.ONLINE


@pytest.mark.parametrize(
    ("klippy", "http_status", "message"),
    [
        # Moonraker has not registered Klipper's routes yet: 404.
        ("never_connected", 404, "404"),
        # Klipper's routes stay registered, but Klipper is gone: 503.
        ("disconnected", 503, "Klippy Host not connected"),
    ],
)
async def test_offline_without_klipper(
    simulator: SimulatorControl,
    session: aiohttp.ClientSession,
    client: MoonrakerClient,
    ottoeject: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    klippy: str,
    http_status: int,
    message: str,
) -> None:
    await simulator.set_klippy(ottoeject["id"], klippy)
    url = f"http://{ottoeject['host']}:{ottoeject['port']}/printer/objects/query?webhooks"
    async with session.get(url, headers={"X-Api-Key": ottoeject["api_key"]}) as response:
        assert response.status == http_status
    status = await client.status()
    assert status.state is EjectorState.OFFLINE
    assert status.klippy_state == "disconnected"
    status = await status_as_if_ready(client, monkeypatch)
    assert status.state is EjectorState.OFFLINE
    assert status.message is not None
    assert message in status.message
    with pytest.raises(MoonrakerNotReadyError):
        await client.macros()
    with pytest.raises(MoonrakerNotReadyError):
        await client.run_macro("OTTOEJECT_HOME")

    await simulator.set_klippy(ottoeject["id"], "ready")
    assert (await client.status()).state is EjectorState.ONLINE
    assert await scripts(simulator, ottoeject) == []


async def test_offline_while_klipper_starts(
    simulator: SimulatorControl, client: MoonrakerClient, ottoeject: dict[str, Any]
) -> None:
    await simulator.set_klippy(ottoeject["id"], "startup")
    status = await client.status()
    assert status.state is EjectorState.OFFLINE
    assert status.klippy_state == "startup"
    await simulator.set_klippy(ottoeject["id"], "ready")
    assert (await client.status()).state is EjectorState.ONLINE


@pytest.mark.parametrize(
    ("state", "words"), [("shutdown", "Shutdown due to"), ("error", "configuration error")]
)
async def test_issue_when_klipper_shut_down_or_in_error(
    simulator: SimulatorControl, client: MoonrakerClient, ottoeject: dict[str, Any], state: str, words: str
) -> None:
    await simulator.set_klippy(ottoeject["id"], state)
    status = await client.status()
    assert status.state is EjectorState.ISSUE
    assert status.klippy_state == state
    assert status.message is not None
    assert words in status.message
    with pytest.raises(MoonrakerNotReadyError):
        await client.run_macro("OTTOEJECT_HOME")

    await simulator.set_klippy(ottoeject["id"], "ready")  # a restart
    assert (await client.status()).state is EjectorState.ONLINE
    assert await scripts(simulator, ottoeject) == []


async def test_klipper_error_during_the_macro(
    simulator: SimulatorControl, client: MoonrakerClient, ottoeject: dict[str, Any]
) -> None:
    run = asyncio.create_task(client.run_macro("GRAB_FROM_SLOT_1"))
    await device_runs(simulator, ottoeject, "GRAB_FROM_SLOT_1")
    await simulator.set_klippy(ottoeject["id"], "shutdown")
    with pytest.raises(MoonrakerMacroError, match="Shutdown due to webhooks request"):
        await asyncio.wait_for(run, TIMEOUT)
    status = await client.status()
    assert status.state is EjectorState.ISSUE
    assert status.current_macro is None


async def test_close_drops_a_macro_still_running(
    simulator: SimulatorControl, session: aiohttp.ClientSession, ottoeject: dict[str, Any]
) -> None:
    client = make_client(session, ottoeject, ack_timeout=0.2)
    assert not (await client.run_macro("LOAD_ONTO_P1")).acknowledged
    await device_runs(simulator, ottoeject, "LOAD_ONTO_P1")
    await client.close()
    assert client.current_macro is None
    # The device carries on with the macro; it was sent once.
    assert (await simulator.ottoeject(ottoeject["id"]))["running"] == "LOAD_ONTO_P1"
    assert await scripts(simulator, ottoeject) == ["LOAD_ONTO_P1"]


async def test_abandoned_macro_never_seen_running_is_released() -> None:
    """A macro whose answer was lost and that no poll ever saw running does not keep the robot EJECTING."""
    import time

    from custom_components.print_farm.protocols.moonraker.client import _RunningMacro

    async with aiohttp.ClientSession() as session:
        client = MoonrakerClient(session, "127.0.0.1", 1, ack_timeout=1)
        macro = _RunningMacro("OTTOEJECT_HOME", "OTTOEJECT_HOME", time.time(), abandoned=True)
        client._macro = macro
        client._observe(False)  # idle, but only just sent: still counted as running
        assert client.current_macro == "OTTOEJECT_HOME"
        macro.started -= 5  # well past twice the acknowledgement wait
        client._observe(False)
        assert client.current_macro is None
        await client.close()
