"""The Bambu client against a simulated printer over real TLS sockets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from custom_components.print_farm.protocols.bambu import (
    FIELD_ONLINE,
    BambuAuthError,
    BambuCertificateError,
    BambuClient,
    BambuCommandError,
    BambuSerialError,
    BambuTimeoutError,
    ConnectionState,
    probe,
)
from simulator.control import SimulatorControl


def make_client(printer: dict[str, Any], **kwargs: Any) -> BambuClient:
    return BambuClient(
        asyncio.get_running_loop(),
        printer["host"],
        kwargs.pop("serial", printer["serial"]),
        kwargs.pop("access_code", printer["access_code"]),
        port=printer["mqtt_port"],
        fingerprint=kwargs.pop("fingerprint", printer["fingerprint"]),
        **kwargs,
    )


async def wait_for(client: BambuClient, condition: Any, timeout: float = 10) -> None:
    """Wait until condition(client) holds, woken by the client's own change notifications."""
    changed = asyncio.Event()
    remove = client.add_listener(lambda fields: changed.set())
    try:
        async with asyncio.timeout(timeout):
            while not condition(client):
                await changed.wait()
                changed.clear()
    finally:
        remove()


async def test_probe_reads_model_firmware_and_pins_fingerprint(sim_printer: dict[str, Any]) -> None:
    fingerprint, version = await probe(
        asyncio.get_running_loop(),
        sim_printer["host"],
        sim_printer["serial"],
        sim_printer["access_code"],
        port=sim_printer["mqtt_port"],
    )
    assert fingerprint == sim_printer["fingerprint"]
    assert version.model == "P1S"
    assert version.firmware


async def test_wrong_access_code_stops_retrying(sim_printer: dict[str, Any]) -> None:
    client = make_client(sim_printer, access_code="00000000")
    client.start()
    try:
        with pytest.raises(BambuAuthError):
            await client.wait_for_first_report(10)
        assert client.connection is ConnectionState.AUTH_FAILED
    finally:
        await client.stop()


async def test_wrong_serial_is_detected_by_certificate(sim_printer: dict[str, Any]) -> None:
    with pytest.raises(BambuSerialError):
        await probe(
            asyncio.get_running_loop(),
            sim_printer["host"],
            "01P00A999999999",
            sim_printer["access_code"],
            port=sim_printer["mqtt_port"],
        )


async def test_changed_certificate_is_refused_before_login(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    new_fingerprint = await simulator.replace_certificate(sim_printer["serial"])
    client = make_client(sim_printer)
    client.start()
    try:
        with pytest.raises(BambuCertificateError) as caught:
            await client.wait_for_first_report(10)
        assert caught.value.fingerprint == new_fingerprint
        assert client.connection is ConnectionState.CERTIFICATE_CHANGED
        assert client.presented_fingerprint == new_fingerprint
    finally:
        await client.stop()


async def test_full_report_then_deltas_merge(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    client = make_client(sim_printer)
    client.start()
    try:
        await client.wait_for_first_report(10)
        await wait_for(client, lambda c: c.fields["gcode_state"] is not None)
        assert client.online
        assert client.fields["gcode_state"] == "IDLE"
        assert client.fields["bed_temp"] is not None
        await simulator.put_file(sim_printer["serial"], "cube.gcode", b"; total layer number: 10\nG28\n")
        seen: list[frozenset[str]] = []
        client.add_listener(seen.append)
        await client.start_print("cube.gcode")
        await wait_for(client, lambda c: c.fields["gcode_state"] in ("PREPARE", "RUNNING"))
        await simulator.advance(sim_printer["serial"], 5 * 60)
        await wait_for(client, lambda c: (c.fields["progress"] or 0) > 0)
        # Delta reports changed some fields; the untouched ones kept their values.
        assert client.fields["gcode_file"] or client.fields["subtask_name"]
        assert client.fields["bed_temp"] is not None
        assert all(fields for fields in seen)
        await simulator.advance(sim_printer["serial"], 3 * 3600)
        await wait_for(client, lambda c: c.fields["gcode_state"] == "FINISH")
        assert client.fields["progress"] == 100
    finally:
        await client.stop()


async def test_commands_are_acknowledged(simulator: SimulatorControl, sim_printer: dict[str, Any]) -> None:
    client = make_client(sim_printer)
    client.start()
    try:
        await client.wait_for_first_report(10)
        await client.send_gcode("G28\nM400")
        info = await simulator.printer(sim_printer["serial"])
        assert "G28" in "\n".join(info["gcode_lines"])
        with pytest.raises(BambuCommandError):
            await client.start_print("missing.gcode.3mf")
        with pytest.raises(BambuCommandError):
            await client.resume()  # nothing is paused
        await simulator.put_file(sim_printer["serial"], "part.gcode", b"G28\n")
        await client.start_print("part.gcode")
        await wait_for(client, lambda c: c.fields["gcode_state"] in ("PREPARE", "RUNNING"))
        await client.pause()
        await wait_for(client, lambda c: c.fields["gcode_state"] == "PAUSE")
        await client.resume()
        await wait_for(client, lambda c: c.fields["gcode_state"] in ("PREPARE", "RUNNING"))
        await client.stop_print()
        await wait_for(client, lambda c: c.fields["gcode_state"] == "FAILED")
    finally:
        await client.stop()


async def test_slow_acknowledgement_times_out(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    client = make_client(sim_printer, ack_timeout=0.5)
    client.start()
    try:
        await client.wait_for_first_report(10)
        await simulator.set_latency(sim_printer["serial"], 3)
        with pytest.raises(BambuTimeoutError):
            await client.send_gcode("M400")
    finally:
        await client.stop()


async def test_reconnects_after_broker_restart(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    client = make_client(sim_printer)
    client.start()
    try:
        await client.wait_for_first_report(10)
        states: list[ConnectionState] = []
        client.add_listener(lambda fields: states.append(client.connection))
        await simulator.restart_broker(sim_printer["serial"])
        await wait_for(client, lambda c: ConnectionState.DISCONNECTED in states and c.online, timeout=20)
        assert client.connection is ConnectionState.CONNECTED
    finally:
        await client.stop()


async def test_quiet_printer_is_probed_and_stays_online(sim_printer: dict[str, Any]) -> None:
    client = make_client(sim_printer)
    client.start()
    try:
        await client.wait_for_first_report(10)
        await wait_for(client, lambda c: c.version is not None)
        client.version = client._thread_version = None  # so that the probe's answer shows as a change
        before = client._last_message
        client.check_watchdog(time.monotonic() + 31)  # quiet for half the watchdog time: asked
        await wait_for(client, lambda c: c.version is not None)
        assert client._last_message > before
        assert client.online
    finally:
        await client.stop()


async def test_watchdog_marks_silent_printer_offline(sim_printer: dict[str, Any]) -> None:
    client = make_client(sim_printer)
    client.start()
    try:
        await client.wait_for_first_report(10)
        changes: list[frozenset[str]] = []
        client.add_listener(changes.append)
        client.check_watchdog(time.monotonic() + 30)
        assert client.online
        client.check_watchdog(time.monotonic() + 61)
        assert not client.online
        assert FIELD_ONLINE in changes[-1]
        # The next report brings it back.
        client.request_full_report(force=True)
        await wait_for(client, lambda c: c.online)
    finally:
        await client.stop()
