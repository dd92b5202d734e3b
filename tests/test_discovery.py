"""Discovery: every model is heard by its real DevModel; a printer whose address went to another printer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import random
import socket
from types import MappingProxyType
from typing import Any

from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.config_entries import SOURCE_USER, ConfigSubentry, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import pytest_socket

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.protocols.bambu.tls import fetch_fingerprint
from custom_components.print_farm.runtime.discovery import async_last_heard
from simulator.control import SimulatorControl, start_simulator
from simulator.printer import MODELS, model_spec
from simulator.ssdp import announce, notify_message

from .conftest import printer_subentry_data
from .helpers import wait_until

# What each model announces as DevModel (public reports), independent of the simulator's table.
REAL_DEVMODEL = {
    "X1C": "3DPrinter-X1-Carbon",
    "X1": "3DPrinter-X1",
    "X1E": "C13",
    "P1P": "C11",
    "P1S": "C12",
    "A1": "N2S",
    "A1 mini": "N1",
    "H2D": "O1D",
}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _loopback_hosts(count: int) -> list[str]:
    """Distinct loopback addresses besides 127.0.0.1 (a printer, another printer, an address nobody has)."""
    return [f"127.0.0.{last}" for last in random.sample(range(10, 250), count)]


async def _farm(hass: HomeAssistant, port: int, *subentries: ConfigSubentryData) -> MockConfigEntry:
    """The farm listening for announcements on 127.0.0.1:port, with the given printer subentries."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Print Farm",
        data={"discovery_host": "127.0.0.1", "discovery_port": port},
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _printer_at(printer: dict[str, Any], host: str) -> dict[str, Any]:
    """The printer's subentry data, but with its address pointing at host."""
    return {**printer_subentry_data(printer), "host": host}


def _announce(printer: dict[str, Any], port: int, host: str | None = None) -> None:
    """The simulator's NOTIFY for the printer, from host (its own address unless given) to 127.0.0.1:port."""
    host = host or printer["host"]
    spec = model_spec(printer["model"])
    message = notify_message(
        host=host, serial=printer["serial"], model_code=spec.ssdp_code, name="Garage", firmware=spec.firmware
    )
    announce(message, host, port)


async def _heard(hass: HomeAssistant, serial: str, host: str) -> None:
    """Let the loop read the datagram already queued on loopback, then what hearing it started."""
    async with asyncio.timeout(5):
        # Turns of the loop, no sleeping: the datagram is already in the socket's queue.
        while (printer := async_last_heard(hass, serial)) is None or printer.host != host:  # noqa: ASYNC110
            await asyncio.sleep(0)
    await hass.async_block_till_done()


@pytest.fixture
async def misplaced(simulator: SimulatorControl) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any], str]]:
    """A printer, another printer on another address with the same ports, and an address nobody has."""
    hosts = _loopback_hosts(3)
    real_host, other_host, empty_host = hosts
    # Printers have addresses of their own here: still loopback, never beyond this machine.
    pytest_socket.socket_allow_hosts(["127.0.0.1", *hosts])
    real = await simulator.add_printer(model="P1S", host=real_host)
    other = await simulator.add_printer(
        model="P1S", host=other_host, mqtt_port=real["mqtt_port"], ftps_port=real["ftps_port"]
    )
    yield real, other, empty_host
    await simulator.remove_printer(other["serial"])
    await simulator.remove_printer(real["serial"])


async def test_every_model_is_heard_by_its_real_devmodel(hass: HomeAssistant, socket_enabled: None) -> None:
    """Each simulated model announces what the real one announces, and the flow names its model."""
    farm_port = _free_udp_port()
    entry = await _farm(hass, farm_port)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inbox:
        inbox.bind(("127.0.0.1", 0))
        inbox.setblocking(False)
        announced: dict[str, str] = {}  # serial -> DevModel
        async with start_simulator(announce_port=inbox.getsockname()[1]) as sim:
            printers = {name: await sim.control.add_printer(model=name) for name in MODELS}
            serials = {printer["serial"]: name for name, printer in printers.items()}
            async with asyncio.timeout(20):
                while announced.keys() < serials.keys():
                    datagram, sender = await loop.sock_recvfrom(inbox, 4096)
                    headers = dict(
                        line.split(": ", 1) for line in datagram.decode().split("\r\n")[1:] if ": " in line
                    )
                    announced[headers["USN"]] = headers["DevModel.bambu.com"]
                    # Passed on as it came to the farm's listener.
                    inbox.sendto(datagram, ("127.0.0.1", farm_port))
    assert {serials[serial]: code for serial, code in announced.items()} == REAL_DEVMODEL
    for serial in serials:
        await _heard(hass, serial, "127.0.0.1")

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "printer"), context={"source": SOURCE_USER}
    )
    assert result["step_id"] == "user"
    labels = {
        option["value"]: option["label"]
        for option in result["data_schema"].schema["discovered"].config["options"]
    }
    for serial, name in serials.items():
        assert f"({name}, {serial}," in labels[serial]
    assert not any("?" in label for label in labels.values())


async def test_another_printer_at_the_address_is_not_a_changed_certificate(
    hass: HomeAssistant,
    hass_client: Any,
    misplaced: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    """The repair names the printer found, pins nothing, and moves the printer to where it was heard."""
    real, other, _ = misplaced
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    port = _free_udp_port()
    entry = await _farm(hass, port)
    # Heard before it was added: no announcement comes while it fails, so only the repair moves it.
    _announce(real, port)
    await _heard(hass, real["serial"], real["host"])
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(_printer_at(real, other["host"])),
            subentry_type="printer",
            title="Garage",
            unique_id=real["serial"],
        ),
    )
    await hass.async_block_till_done()
    printer = next(iter(entry.runtime_data.printers.values()))
    subentry_id = printer.subentry.subentry_id
    await wait_until(hass, lambda: printer.client.connection == "wrong_printer", timeout=30)

    registry = ir.async_get(hass)
    issue = registry.async_get_issue(DOMAIN, f"wrong_printer_{subentry_id}")
    assert issue is not None
    assert issue.translation_key == "wrong_printer"
    assert issue.translation_placeholders["found_serial"] == other["serial"]
    assert registry.async_get_issue(DOMAIN, f"certificate_changed_{subentry_id}") is None
    assert entry.subentries[subentry_id].data["fingerprint"] == real["fingerprint"]

    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": f"wrong_printer_{subentry_id}"}
    )
    flow = await response.json()
    assert flow["step_id"] == "address"
    assert [field["name"] for field in flow["data_schema"]] == ["host"]  # no certificate to trust
    assert flow["description_placeholders"]["heard"] == real["host"]
    assert flow["description_placeholders"]["found_serial"] == other["serial"]
    # The other printer's address again: refused, nothing changes.
    response = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={"host": other["host"]})
    result = await response.json()
    assert result["errors"] == {"base": "wrong_serial"}
    assert entry.subentries[subentry_id].data["host"] == other["host"]
    response = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={"host": real["host"]})
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()

    assert entry.subentries[subentry_id].data["host"] == real["host"]
    assert entry.subentries[subentry_id].data["fingerprint"] == real["fingerprint"]
    await wait_until(hass, lambda: printer.client.online, timeout=30)
    assert registry.async_get_issue(DOMAIN, f"wrong_printer_{subentry_id}") is None


@pytest.mark.parametrize("failure", ["wrong_printer", "disconnected"])
async def test_a_failing_printer_follows_its_announcement(
    hass: HomeAssistant, misplaced: tuple[dict[str, Any], dict[str, Any], str], failure: str
) -> None:
    """Heard at a new address while its own fails (another printer answers, or nothing): it moves there."""
    real, other, empty_host = misplaced
    port = _free_udp_port()
    stored_host = other["host"] if failure == "wrong_printer" else empty_host
    entry = await _farm(
        hass,
        port,
        ConfigSubentryData(
            data=_printer_at(real, stored_host),
            subentry_type="printer",
            title="Garage",
            unique_id=real["serial"],
        ),
    )
    printer = next(iter(entry.runtime_data.printers.values()))
    await wait_until(hass, lambda: printer.client.connection == failure, timeout=30)
    # A NOTIFY naming its serial from an address where it does not answer moves nothing.
    _announce(real, port, host=empty_host if failure == "wrong_printer" else other["host"])
    await _heard(hass, real["serial"], empty_host if failure == "wrong_printer" else other["host"])
    assert printer.subentry.data["host"] == stored_host

    _announce(real, port)
    await _heard(hass, real["serial"], real["host"])  # the check and the move are tracked tasks
    assert printer.subentry.data["host"] == real["host"]
    assert printer.subentry.data["fingerprint"] == real["fingerprint"]
    await wait_until(hass, lambda: printer.client.online, timeout=30)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"wrong_printer_{printer.subentry.subentry_id}") is None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _second_address(printer: dict[str, Any], host: str) -> AsyncIterator[None]:
    """The printer also answers at host (a printer on both Ethernet and Wi-Fi)."""
    tasks: set[asyncio.Task[None]] = set()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            printer["host"], printer["mqtt_port"]
        )
        for task in (_pipe(reader, upstream_writer), _pipe(upstream_reader, writer)):
            tasks.add(asyncio.create_task(task))

    server = await asyncio.start_server(forward, host, printer["mqtt_port"])
    try:
        yield
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_working_printer_is_never_moved(
    hass: HomeAssistant, misplaced: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    """Heard at another address where it answers too, a connected printer stays where it is."""
    real, _, second_host = misplaced
    port = _free_udp_port()
    entry = await _farm(
        hass,
        port,
        ConfigSubentryData(
            data=printer_subentry_data(real),
            subentry_type="printer",
            title="Garage",
            unique_id=real["serial"],
        ),
    )
    printer = next(iter(entry.runtime_data.printers.values()))
    await wait_until(hass, lambda: printer.client.online, timeout=30)
    async with _second_address(real, second_host):
        # The other address would pass the check: only the printer's working connection keeps it.
        seen = await hass.async_add_executor_job(
            fetch_fingerprint, second_host, real["mqtt_port"], real["serial"]
        )
        assert seen == real["fingerprint"]
        _announce(real, port, host=second_host)
        await _heard(hass, real["serial"], second_host)
    assert printer.subentry.data["host"] == real["host"]
    assert printer.client.online
