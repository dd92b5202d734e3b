"""The Moonraker client's refusals: a device busy with someone else's macro, lines that cannot be sent, a hung server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import math
from typing import Any

import aiohttp
import pytest

from custom_components.print_farm.protocols.moonraker import (
    EjectorState,
    MoonrakerBusyError,
    MoonrakerClient,
    MoonrakerConnectionError,
)
from simulator.control import SimulatorControl

from .test_moonraker_client import device_runs, make_client, scripts


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def ottoeject(simulator: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    info = await simulator.add_ottoeject()
    yield info
    await simulator.remove_ottoeject(info["id"])


async def test_a_macro_another_client_started_makes_the_device_busy(
    simulator: SimulatorControl, session: aiohttp.ClientSession, ottoeject: dict[str, Any]
) -> None:
    """Mainsail (another client) runs a macro: this client does not queue one behind it."""
    other = make_client(session, ottoeject, ack_timeout=0.1)
    ours = make_client(session, ottoeject)
    try:
        assert not (await other.run_macro("OTTOEJECT_HOME")).acknowledged
        await device_runs(simulator, ottoeject, "OTTOEJECT_HOME")
        assert ours.current_macro is None  # ours sent nothing: only the device says it is busy
        assert (await ours.status()).state is EjectorState.EJECTING
        with pytest.raises(MoonrakerBusyError, match="the device is running a macro"):
            await ours.run_macro("PARK_OTTOEJECT")
        assert await scripts(simulator, ottoeject) == ["OTTOEJECT_HOME"]
    finally:
        await other.close()
        await ours.close()


@pytest.mark.parametrize(
    ("params", "marker", "reason"),
    [
        ({"SPEED": math.nan}, None, "parameter SPEED must be a finite number"),
        ({"SPEED": math.inf}, None, "parameter SPEED must be a finite number"),
        (None, "pf-step=1-home-1\nM112", "a marker is one printable line"),
        (None, "pf-step=1-home-1\x00", "a marker is one printable line"),
    ],
    ids=["nan", "infinity", "marker-newline", "marker-control"],
)
async def test_what_cannot_be_one_gcode_line_is_refused_before_anything_is_sent(
    simulator: SimulatorControl,
    session: aiohttp.ClientSession,
    ottoeject: dict[str, Any],
    params: dict[str, float] | None,
    marker: str | None,
    reason: str,
) -> None:
    client = make_client(session, ottoeject)
    try:
        with pytest.raises(ValueError, match=reason):
            await client.run_macro("OTTOEJECT_HOME", params, marker=marker)
        assert client.current_macro is None
        assert await scripts(simulator, ottoeject) == []
    finally:
        await client.close()


async def test_a_moonraker_that_never_answers_is_offline_not_waited_for(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """A hung Moonraker (the port accepts, nothing answers): the status says so within the request timeout."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keep the connection open, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = MoonrakerClient(session, "127.0.0.1", port, request_timeout=0.2)
    try:
        status = await client.status()
        assert (status.state, status.klippy_state) == (EjectorState.OFFLINE, None)
        assert status.message == f"Moonraker at 127.0.0.1:{port} did not answer GET /server/info in time"
        with pytest.raises(MoonrakerConnectionError, match="did not answer"):
            await client.run_macro("OTTOEJECT_HOME")
        assert client.current_macro is None
        assert accepted  # it was reached, and waited for no longer than the timeout
    finally:
        await client.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
