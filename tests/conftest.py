"""Fixtures: the integration enabled, blocking calls fatal, and a simulated farm on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import logging
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest

from simulator.control import SimulatorControl, SimulatorProcess

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/print_farm in every Home Assistant test."""


@pytest.fixture(autouse=True)
def fail_on_blocking_call(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test during which Home Assistant logged a blocking call in the event loop."""
    caplog.set_level(logging.WARNING, logger="homeassistant.util.loop")
    yield
    blocking = [
        record.getMessage() for record in caplog.records if "Detected blocking call" in record.getMessage()
    ]
    assert not blocking, "blocking call in the event loop:\n" + "\n".join(blocking)


@pytest.fixture(scope="session")
def simulator_process() -> Iterator[SimulatorProcess]:
    """One simulator process for the session (manual clock, no SSDP); tests add their own printers."""
    with SimulatorProcess(printers=0, clock="manual", announce_port=0) as process:
        yield process


@pytest.fixture
async def simulator(
    simulator_process: SimulatorProcess, socket_enabled: None
) -> AsyncIterator[SimulatorControl]:
    """The control API of the session's simulator (sockets allowed, to 127.0.0.1 only)."""
    async with SimulatorControl(simulator_process.ready["control"]) as control:
        yield control


@pytest.fixture
async def sim_printer(simulator: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    """A fresh simulated P1S (delta reports) on 127.0.0.1, removed after the test."""
    printer = await simulator.add_printer(model="P1S")
    yield printer
    await simulator.remove_printer(printer["serial"])


@pytest.fixture
async def sim_x1(simulator: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    """A fresh simulated X1C (full reports) on 127.0.0.1, removed after the test."""
    printer = await simulator.add_printer(model="X1C")
    yield printer
    await simulator.remove_printer(printer["serial"])


def printer_subentry_data(printer: dict[str, Any]) -> dict[str, Any]:
    """The subentry data the config flow would store for a simulated printer."""
    return {
        "host": printer["host"],
        "serial": printer["serial"],
        "access_code": printer["access_code"],
        "mqtt_port": printer["mqtt_port"],
        "ftps_port": printer["ftps_port"],
        "fingerprint": printer["fingerprint"],
        "model": printer["model"],
        "firmware": None,
    }


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Enable the entities that are disabled by default (for snapshots of every entity)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield
