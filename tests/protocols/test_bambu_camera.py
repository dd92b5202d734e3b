"""The A1/P1 JPEG camera against a simulated P1S: login, pinned TLS, frames, refusals, bounds."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image
import pytest

from custom_components.print_farm.protocols.bambu import (
    BambuAuthError,
    BambuCamera,
    BambuCameraError,
    BambuCertificateError,
    BambuTimeoutError,
    fetch_frame,
)
from custom_components.print_farm.protocols.bambu.camera import login_packet
from simulator.control import SimulatorControl


def camera_of(printer: dict[str, Any], **options: Any) -> BambuCamera:
    return BambuCamera(
        printer["host"],
        printer["serial"],
        options.pop("access_code", printer["access_code"]),
        port=printer["camera_port"],
        fingerprint=options.pop("fingerprint", printer["fingerprint"]),
        **options,
    )


async def counters(simulator: SimulatorControl, printer: dict[str, Any]) -> dict[str, int]:
    return dict((await simulator.printer(printer["serial"]))["camera"])


async def wait_for_clients(simulator: SimulatorControl, printer: dict[str, Any], clients: int) -> None:
    async with asyncio.timeout(5):
        while (await counters(simulator, printer))["clients"] != clients:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # the simulator's counters: a process of its own, polled


def test_login_packet_layout() -> None:
    packet = login_packet("bblp", "12345678")
    assert len(packet) == 80
    assert packet[:16] == bytes.fromhex("40000000 00300000 00000000 00000000")
    assert packet[16:48] == b"bblp".ljust(32, b"\0")
    assert packet[48:80] == b"12345678".ljust(32, b"\0")


async def test_frames_are_jpeg_images_that_change(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    async with camera_of(sim_printer) as camera:
        first = await camera.read_frame()
        second = await camera.read_frame()
        assert (await counters(simulator, sim_printer))["clients"] == 1
    for frame in (first, second):
        image = Image.open(io.BytesIO(frame))
        assert image.format == "JPEG"
        assert image.size == (320, 180)
    assert first != second
    await wait_for_clients(simulator, sim_printer, 0)  # closed when done: the printer stops sending


async def test_wrong_code_is_refused_without_showing_it(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    camera = camera_of(sim_printer, access_code="87654321", timeout=5)
    await camera.open()
    async with asyncio.timeout(3):  # refused at once, not after the timeout
        with pytest.raises(BambuAuthError) as caught:
            await camera.read_frame()
    assert "87654321" not in str(caught.value)
    assert "87654321" not in repr(camera)
    assert not camera.is_open
    assert (await counters(simulator, sim_printer))["refused"] == 1


async def test_another_certificate_gets_no_login(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    with pytest.raises(BambuCertificateError):
        await fetch_frame(
            sim_printer["host"],
            sim_printer["serial"],
            sim_printer["access_code"],
            port=sim_printer["camera_port"],
            fingerprint="00" * 32,
        )
    seen = await counters(simulator, sim_printer)
    assert (seen["logins"], seen["refused"]) == (0, 0)  # the code never left


async def test_a_frame_over_the_bound_closes_the_connection(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    camera = camera_of(sim_printer, max_frame=1000)  # the simulator's frames are a few kB
    await camera.open()
    with pytest.raises(BambuCameraError):
        await camera.read_frame()
    assert not camera.is_open
    await wait_for_clients(simulator, sim_printer, 0)


async def test_a_silent_peer_times_out(socket_enabled: None) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts TCP, never speaks TLS

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(3):
            with pytest.raises(BambuTimeoutError):
                await fetch_frame("127.0.0.1", "01P00A000000001", "12345678", port=port, timeout=0.5)
    finally:
        server.close()


async def test_a_camera_that_sends_nothing_times_out(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    await simulator.set_camera_fault(sim_printer["serial"], "silent")
    camera = camera_of(sim_printer, timeout=0.5)
    await camera.open()
    async with asyncio.timeout(3):
        with pytest.raises(BambuTimeoutError):
            await camera.read_frame()
    assert not camera.is_open
    await wait_for_clients(simulator, sim_printer, 0)


async def test_a_frame_that_is_no_jpeg_is_refused(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    await simulator.set_camera_fault(sim_printer["serial"], "not_jpeg")
    camera = camera_of(sim_printer)
    await camera.open()
    with pytest.raises(BambuCameraError, match="not a JPEG"):
        await camera.read_frame()
    assert not camera.is_open
    await wait_for_clients(simulator, sim_printer, 0)
