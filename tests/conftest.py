"""Fixtures: the integration enabled, blocking calls fatal, and a simulated farm on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import functools
import logging
import os
from pathlib import Path
import sys
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest

from simulator.control import SimulatorControl, SimulatorProcess

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/print_farm in every Home Assistant test."""


_PACKAGE = f"{os.sep}custom_components{os.sep}print_farm{os.sep}"


def _ours_on_stack() -> bool:
    """Whether the integration's code made the call (not the tests' own scaffolding)."""
    frame = sys._getframe(2)
    while frame is not None:
        if _PACKAGE in frame.f_code.co_filename:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _detect_blocking_calls() -> None:
    """Install Home Assistant's blocking-call detector, including the checks it skips under tests.

    Home Assistant only installs it when it boots for real, and under tests it leaves out open(),
    os.listdir(), Path.read_text() and the like, because its own test harness makes them. Here every
    call on its list is checked whenever it runs inside a running event loop, and reported (logged,
    not raised) as Home Assistant does; the ones it leaves out under tests are reported when the
    integration's own code is on the stack (test scaffolding may read and write its files).
    """
    from homeassistant import block_async_io
    from homeassistant.util.loop import raise_for_blocking_call

    for blocking in block_async_io._BLOCKING_CALLS:
        original = blocking.original_func

        def guarded(*args: Any, _original: Any = original, _blocking: Any = blocking, **kwargs: Any) -> Any:
            if asyncio._get_running_loop() is not None and (not _blocking.skip_for_tests or _ours_on_stack()):
                raise_for_blocking_call(
                    _original,
                    check_allowed=_blocking.check_allowed,
                    strict=False,
                    strict_core=False,
                    args=args,
                    kwargs=kwargs,
                )
            return _original(*args, **kwargs)

        setattr(blocking.object, blocking.function, functools.wraps(original)(guarded))


_detect_blocking_calls()


@pytest.fixture(autouse=True)
def fail_on_blocking_call(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test during which Home Assistant logged a blocking call in the event loop."""
    caplog.set_level(logging.DEBUG, logger="homeassistant.util.loop")
    yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    blocking = [record.getMessage() for record in records if "Detected blocking call" in record.getMessage()]
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
        # The X1 and H2 have no JPEG camera port (they stream RTSPS): the default then.
        **({"camera_port": printer["camera_port"]} if printer.get("camera_port") else {}),
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


@pytest.fixture
async def sim_ejector(simulator: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    """A fresh simulated OttoEject (real Moonraker + Klipper stand-in), removed after the test."""
    ejector = await simulator.add_ottoeject(macro_seconds=20)
    yield ejector
    await simulator.remove_ottoeject(ejector["id"])


@pytest.fixture(autouse=True)
def isolated_config_dir(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Give each Home Assistant test its own config folder (uploads, stored print files)."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("hass").config.config_dir = str(tmp_path / "config")


@pytest.fixture
async def farm(hass: Any, sim_printer: dict[str, Any]) -> Any:
    """The farm set up with one simulated P1S, reported and ready (modules may override it)."""
    from .helpers import setup_farm

    return await setup_farm(hass, sim_printer)


@pytest.fixture
async def client(hass_client: Any, farm: Any) -> Any:
    """An administrator's REST client of the farm."""
    return await hass_client()
