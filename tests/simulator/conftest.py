"""Fixtures for the simulator's own tests: one simulator process per session, one printer per test."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from simulator.control import SimulatorControl, SimulatorProcess


@pytest.fixture(autouse=True)
def _real_sockets(socket_enabled: None) -> None:
    """Talk to the simulator over real sockets (pytest-socket still limits them to 127.0.0.1)."""


@pytest.fixture(scope="session")
def simulator_process() -> Iterator[SimulatorProcess]:
    """A simulator on the manual clock, without printers or SSDP, shared by the session."""
    with SimulatorProcess(printers=0, clock="manual", announce_port=0) as process:
        yield process


@pytest.fixture
async def control(simulator_process: SimulatorProcess) -> AsyncIterator[SimulatorControl]:
    """A control API client for the shared simulator."""
    async with SimulatorControl(simulator_process.ready["control"]) as client:
        yield client


@pytest.fixture
async def p1s(control: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    """A fresh P1S on 127.0.0.1, removed after the test."""
    printer = await control.add_printer("P1S")
    yield printer
    await control.remove_printer(printer["serial"])
