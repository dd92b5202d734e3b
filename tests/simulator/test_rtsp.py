"""The simulated X1C's RTSPS camera, played by PyAV (ffmpeg) as Home Assistant's stream plays it."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
import hashlib
import socket
import ssl
from typing import Any

import av
import av.error
import pytest

from simulator.control import SimulatorControl
from simulator.rtsp import MAX_PAYLOAD, packetize

TIMEOUT = 15.0


@pytest.fixture
async def x1c(control: SimulatorControl) -> AsyncIterator[dict[str, Any]]:
    """A fresh X1C on 127.0.0.1, removed after the test."""
    printer = await control.add_printer("X1C")
    yield printer
    await control.remove_printer(printer["serial"])


def url(printer: dict[str, Any], code: str | None = None) -> str:
    return f"rtsps://bblp:{code or printer['access_code']}@127.0.0.1:{printer['rtsp_port']}/streaming/live/1"


def first_frame(source: str, options: dict[str, str]) -> tuple[int, int, bool]:
    """Size and keyframe flag of the first picture PyAV decodes from source."""
    with av.open(source, options=options, timeout=TIMEOUT) as container:
        for frame in container.decode(video=0):
            return frame.width, frame.height, frame.key_frame
    raise AssertionError("no frame")


async def counters(control: SimulatorControl, printer: dict[str, Any]) -> dict[str, int]:
    return dict((await control.printer(printer["serial"]))["rtsp"])


async def test_pyav_plays_the_x1c_camera_once_liveview_is_on(
    control: SimulatorControl, x1c: dict[str, Any]
) -> None:
    port = x1c["rtsp_port"]
    assert isinstance(port, int)
    with pytest.raises(ConnectionRefusedError):  # liveview off: nothing listens
        await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), TIMEOUT)

    await control.set_liveview(x1c["serial"], True)
    state = (await control.printer(x1c["serial"]))["state"]
    assert state["ipcam"]["rtsp_url"] == f"rtsps://127.0.0.1:{port}/streaming/live/1"
    # ffmpeg plays rtsps over TCP only (RTP interleaved), whatever rtsp_transport says.
    for options in ({"rtsp_transport": "tcp"}, {}):
        assert await asyncio.to_thread(first_frame, url(x1c), options) == (320, 180, True)
    async with asyncio.timeout(5):
        while (seen := await counters(control, x1c))["clients"]:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.05)
    assert seen["plays"] == 2
    assert seen["frames"] > 0
    frames = seen["frames"]
    await asyncio.sleep(0.5)
    assert (await counters(control, x1c))["frames"] == frames  # nobody plays: nothing is encoded

    # The printer's own certificate, as on its MQTT port.
    der = await asyncio.to_thread(peer_certificate, port)
    assert hashlib.sha256(der).hexdigest() == x1c["fingerprint"]
    fingerprint = await control.replace_certificate(x1c["serial"])  # and a new one at once
    der = await asyncio.to_thread(peer_certificate, port)
    assert hashlib.sha256(der).hexdigest() == fingerprint != x1c["fingerprint"]

    await control.set_liveview(x1c["serial"], False)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), TIMEOUT)


def peer_certificate(port: int) -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


async def test_a_wrong_access_code_is_refused(control: SimulatorControl, x1c: dict[str, Any]) -> None:
    await control.set_liveview(x1c["serial"], True)
    with pytest.raises(av.error.HTTPUnauthorizedError):
        await asyncio.to_thread(first_frame, url(x1c, "00000000"), {"rtsp_transport": "tcp"})
    seen = await counters(control, x1c)
    assert seen["refused"] == 1  # asked for credentials (401), then refused the wrong ones (401)
    assert (seen["plays"], seen["frames"]) == (0, 0)

    await control.set_access_code(x1c["serial"], "13572468")  # read at every request
    with pytest.raises(av.error.HTTPUnauthorizedError):
        await asyncio.to_thread(first_frame, url(x1c), {"rtsp_transport": "tcp"})
    frame = await asyncio.to_thread(first_frame, url(x1c, "13572468"), {"rtsp_transport": "tcp"})
    assert frame == (320, 180, True)


async def request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lines: list[str]
) -> tuple[str, dict[str, str]]:
    """Send one RTSP request; its answer's status line and headers (lower-case names)."""
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    async with asyncio.timeout(TIMEOUT):
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:] if line)
    }
    if length := int(headers.get("content-length", "0")):
        await reader.readexactly(length)
    return head[0], headers


async def test_udp_is_refused_so_clients_fall_back_to_tcp(
    control: SimulatorControl, x1c: dict[str, Any]
) -> None:
    await control.set_liveview(x1c["serial"], True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", x1c["rtsp_port"], ssl=context)
    try:
        base = f"rtsps://127.0.0.1:{x1c['rtsp_port']}/streaming/live/1"
        basic = "Authorization: Basic " + base64.b64encode(f"bblp:{x1c['access_code']}".encode()).decode()
        status, headers = await request(reader, writer, [f"OPTIONS {base} RTSP/1.0", "CSeq: 1"])
        assert status == "RTSP/1.0 200 OK"
        assert "SETUP" in headers["public"]
        status, headers = await request(reader, writer, [f"DESCRIBE {base} RTSP/1.0", "CSeq: 2"])
        assert status == "RTSP/1.0 401 Unauthorized"
        assert headers["www-authenticate"].startswith("Digest ")
        udp = "Transport: RTP/AVP;unicast;client_port=5000-5001"
        status, _ = await request(reader, writer, [f"SETUP {base}/trackID=1 RTSP/1.0", "CSeq: 3", basic, udp])
        assert status == "RTSP/1.0 461 Unsupported Transport"
        tcp = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"
        status, headers = await request(
            reader, writer, [f"SETUP {base}/trackID=1 RTSP/1.0", "CSeq: 4", basic, tcp]
        )
        assert status == "RTSP/1.0 200 OK"
        assert headers["transport"] == "RTP/AVP/TCP;unicast;interleaved=0-1"
        assert headers["cseq"] == "4"
        status, _ = await request(reader, writer, [f"GET_PARAMETER {base} RTSP/1.0", "CSeq: 5", basic])
        assert status == "RTSP/1.0 200 OK"  # the keep-alive
    finally:
        writer.close()
    assert (await counters(control, x1c))["refused"] == 0  # asking for credentials is no refusal


def test_big_nal_units_are_cut_into_fu_a_fragments() -> None:
    nal = bytes([0x65]) + bytes(range(256)) * 12  # an IDR slice of 3073 bytes
    payloads = list(packetize(nal, last=True))
    assert len(payloads) == 3
    assert all(len(payload) <= MAX_PAYLOAD for payload, _ in payloads)
    assert [marker for _, marker in payloads] == [False, False, True]
    assert [payload[0] for payload, _ in payloads] == [0x60 | 28] * 3  # FU indicator: NRI 3, type 28
    assert [payload[1] for payload, _ in payloads] == [0x80 | 5, 5, 0x40 | 5]  # start, middle, end
    assert bytes([0x65]) + b"".join(payload[2:] for payload, _ in payloads) == nal
    assert list(packetize(b"\x68\xce\x0f\xc8", last=False)) == [(b"\x68\xce\x0f\xc8", False)]
