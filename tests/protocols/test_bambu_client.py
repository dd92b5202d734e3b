"""The Bambu client against a simulated printer over real TLS sockets."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from custom_components.print_farm.protocols.bambu import (
    FIELD_CONNECTION,
    FIELD_ONLINE,
    BambuAuthError,
    BambuCertificateError,
    BambuClient,
    BambuCommandError,
    BambuConnectionError,
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


def record_connection(client: BambuClient) -> list[tuple[ConnectionState, float]]:
    """Every connection state the client goes through from now on, with the time it was told."""
    states: list[tuple[ConnectionState, float]] = []

    def changed(fields: frozenset[str]) -> None:
        if FIELD_CONNECTION in fields:
            states.append((client.connection, time.monotonic()))

    client.add_listener(changed)
    return states


async def test_wrong_access_code_stops_retrying(sim_printer: dict[str, Any]) -> None:
    # Attempts would follow 0.1 s, 0.3 s, 0.7 s and 1.1 s after a refusal if the client retried.
    client = make_client(sim_printer, access_code="00000000", reconnect_delay=(0.1, 0.4))
    states = record_connection(client)
    client.start()
    try:
        with pytest.raises(BambuAuthError):
            await client.wait_for_first_report(10)
        with pytest.raises(TimeoutError):
            await wait_for(client, lambda c: c.connection is not ConnectionState.AUTH_FAILED, timeout=1.5)
        assert [state for state, _ in states] == [ConnectionState.CONNECTING, ConnectionState.AUTH_FAILED]
    finally:
        await client.stop()


async def test_access_code_changed_while_connected_stops_the_reconnects(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    client = make_client(sim_printer, reconnect_delay=(0.1, 0.4))
    client.start()
    try:
        await client.wait_for_first_report(10)
        states = record_connection(client)
        await simulator.set_access_code(sim_printer["serial"], "87654321")
        await simulator.restart_broker(sim_printer["serial"])  # the next login uses the old code
        await wait_for(client, lambda c: c.connection is ConnectionState.AUTH_FAILED)
        with pytest.raises(TimeoutError):
            await wait_for(client, lambda c: c.connection is not ConnectionState.AUTH_FAILED, timeout=1.5)
        assert [state for state, _ in states[-2:]] == [
            ConnectionState.CONNECTING,
            ConnectionState.AUTH_FAILED,
        ]
        assert not client.online
        with pytest.raises(BambuConnectionError):
            await client.pause()
    finally:
        await client.stop()


async def test_reconnects_back_off_to_the_longest_wait(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    client = make_client(sim_printer, reconnect_delay=(0.2, 0.8))
    client.start()
    try:
        await client.wait_for_first_report(10)
        states = record_connection(client)
        await simulator.offline(sim_printer["serial"])  # every attempt is refused at once
        await wait_for(
            client, lambda c: sum(state is ConnectionState.CONNECTING for state, _ in states) >= 5, timeout=8
        )
        lost = next(at for state, at in states if state is ConnectionState.DISCONNECTED)
        attempts = [lost] + [at for state, at in states if state is ConnectionState.CONNECTING]
        waits = [later - earlier for earlier, later in itertools.pairwise(attempts)]
        # 0.2 s, doubling, then 0.8 s each time: never shorter, and the longest wait is not doubled.
        for wait, planned in zip(waits, (0.2, 0.4, 0.8, 0.8, 0.8), strict=True):
            assert planned * 0.9 <= wait < 1.5, waits
        await simulator.online(sim_printer["serial"])
        await wait_for(client, lambda c: c.online, timeout=5)
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
        await wait_for(client, lambda c: c.fields["gcode_state"] is not None and c.version is not None)
        assert client.online
        assert client.fields["gcode_state"] == "IDLE"
        assert client.fields["bed_temp"] == 23.0
        seen: list[frozenset[str]] = []
        client.add_listener(seen.append)
        # Each delta carries one key (the target, then the temperature moving toward it): each
        # changes that one field, and every other field keeps its value.
        await client.send_gcode("M140 S60")
        await wait_for(client, lambda c: c.fields["bed_target"] == 60)
        await simulator.advance(sim_printer["serial"], 10)
        await wait_for(client, lambda c: c.fields["bed_temp"] != 23.0)
        assert seen == [frozenset({"bed_target"}), frozenset({"bed_temp"})]
        assert (client.fields["gcode_state"], client.fields["nozzle_temp"]) == ("IDLE", 24.0)
        await simulator.put_file(sim_printer["serial"], "cube.gcode", b"; total layer number: 10\nG28\n")
        await client.start_print("cube.gcode")
        await wait_for(client, lambda c: c.fields["gcode_state"] in ("PREPARE", "RUNNING"))
        await simulator.advance(sim_printer["serial"], 5 * 60)
        await wait_for(client, lambda c: (c.fields["progress"] or 0) > 0)
        assert (client.fields["gcode_file"], client.fields["total_layers"]) == ("cube.gcode", 10)
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


async def test_another_clients_answers_do_not_answer_our_command(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    serial = sim_printer["serial"]
    client = make_client(sim_printer)
    client.start()
    try:
        await client.wait_for_first_report(10)
        await simulator.set_latency(serial, 1)  # our command's own answer comes a second later
        command = asyncio.create_task(client.send_gcode("M400"))
        await asyncio.sleep(0)  # let it publish: it is now waiting for its answer
        (sequence,) = client._pending
        # Bambu Studio's refused pause that happens to carry our number, then a refused G-code
        # command of another client: both reach us before our own answer, and neither is it.
        await simulator.foreign_answer(serial, "pause", sequence, "failed", "the printer is not printing")
        await simulator.foreign_answer(serial, "gcode_line", str(int(sequence) + 1), "failed", "busy")
        await command  # our own answer: success
        assert (await simulator.printer(serial))["gcode_lines"] == ["M400"]
    finally:
        await client.stop()


async def test_sequence_ids_start_from_a_random_number_per_client(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    for _ in range(2):
        client = make_client(sim_printer)
        client.start()
        try:
            await client.wait_for_first_report(10)
            await client.send_gcode("M400")
        finally:
            await client.stop()
    commands = (await simulator.printer(sim_printer["serial"]))["commands"]
    sent = [c["request"]["print"]["sequence_id"] for c in commands if "print" in c["request"]]
    assert len(sent) == len(set(sent)) == 2
    assert "1" not in sent


@pytest.mark.parametrize(
    ("model", "url"),
    [
        ("P1S", "file:///sdcard/cube.gcode.3mf"),
        ("X1C", "file:///sdcard/cube.gcode.3mf"),
        ("H2D", "ftp:///cube.gcode.3mf"),
    ],
)
async def test_project_file_url_follows_the_model(simulator: SimulatorControl, model: str, url: str) -> None:
    printer = await simulator.add_printer(model=model)
    client = make_client(printer)
    client.start()
    try:
        await client.wait_for_first_report(10)
        await wait_for(client, lambda c: c.version is not None)
        assert client.model == model
        await simulator.put_file(printer["serial"], "cube.gcode.3mf", b"; total layer number: 10\nG28\n")
        await client.start_print("cube.gcode.3mf")  # the simulated H2D refuses file:///sdcard/
        commands = (await simulator.printer(printer["serial"]))["commands"]
        (sent,) = [c["request"]["print"] for c in commands if "print" in c["request"]]
        assert (sent["command"], sent["url"]) == ("project_file", url)
    finally:
        await client.stop()
        await simulator.remove_printer(printer["serial"])


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
