"""The printers' cameras through Home Assistant: JPEG frames over pinned TLS, RTSPS behind liveview."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from typing import Any
import zipfile

from homeassistant.components import camera
from homeassistant.components.camera import CameraEntityFeature
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import ATTR_SUPPORTED_FEATURES
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from syrupy.assertion import SnapshotAssertion

from custom_components.print_farm.const import DOMAIN
from simulator.control import SimulatorControl

from .conftest import printer_subentry_data
from .helpers import JOBS_API, farm_entry, queue_job, setup_farm, wait_until

CAMERA = "camera.printer_1_camera"


async def camera_counters(simulator: SimulatorControl, printer: dict[str, Any]) -> dict[str, int]:
    return dict((await simulator.printer(printer["serial"]))["camera"])


async def wait_for_clients(simulator: SimulatorControl, printer: dict[str, Any], clients: int) -> None:
    async with asyncio.timeout(5):
        while (await camera_counters(simulator, printer))["clients"] != clients:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # the simulator's counters: a process of its own, polled


def jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()  # the whole image decodes
    return image


async def test_still_read_through_home_assistant_then_closed(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    await setup_farm(hass, sim_printer)
    seen = await camera_counters(simulator, sim_printer)
    assert (seen["accepts"], seen["logins"]) == (0, 0)  # nobody watched: not even a TCP connection

    image = await camera.async_get_image(hass, CAMERA)
    assert image.content_type == "image/jpeg"
    assert jpeg(image.content).size == (320, 180)
    await wait_for_clients(simulator, sim_printer, 0)  # closed after the still

    # A second still right after: the same frame, no second connection (the P1 takes ~2 clients).
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/{CAMERA}")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert await response.read() == image.content
    seen = await camera_counters(simulator, sim_printer)
    assert (seen["accepts"], seen["logins"], seen["clients"]) == (1, 1, 0)


async def read_parts(response: Any, count: int) -> list[bytes]:
    """The next `count` JPEG frames of an MJPEG response."""
    body = b""
    async with asyncio.timeout(10):
        while body.count(b"--frameboundary") < count + 1:
            body += await response.content.readany()
    parts = body.split(b"--frameboundary")[1 : count + 1]
    return [part.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n") for part in parts]


async def test_viewers_and_stills_share_one_connection(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    await setup_farm(hass, sim_printer)
    client = await hass_client()
    first = await client.get(f"/api/camera_proxy_stream/{CAMERA}")
    assert first.status == 200
    assert first.content_type == "multipart/x-mixed-replace"
    frames = await read_parts(first, 2)
    assert frames[0] != frames[1]  # two frames, both real pictures
    for frame in frames:
        jpeg(frame)
    assert hass.states.get(CAMERA).state == "streaming"
    reported = hass.states.get(CAMERA).last_reported  # (the State object is updated in place)

    second = await client.get(f"/api/camera_proxy_stream/{CAMERA}")
    for frame in await read_parts(second, 2):
        jpeg(frame)
    jpeg((await camera.async_get_image(hass, CAMERA)).content)  # the feed's latest frame
    seen = await camera_counters(simulator, sim_printer)
    assert (seen["accepts"], seen["logins"], seen["clients"]) == (1, 1, 1)
    assert hass.states.get(CAMERA).last_reported == reported  # no state write per viewer

    first.close()
    for frame in await read_parts(second, 2):  # the other viewer goes on
        jpeg(frame)
    assert hass.states.get(CAMERA).state == "streaming"
    second.close()
    await wait_for_clients(simulator, sim_printer, 0)
    await wait_until(hass, lambda: hass.states.get(CAMERA).state == "idle")
    assert (await camera_counters(simulator, sim_printer))["logins"] == 1


async def test_removing_the_camera_closes_a_live_view(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    entity_registry: er.EntityRegistry,
) -> None:
    await setup_farm(hass, sim_printer)
    response = await (await hass_client()).get(f"/api/camera_proxy_stream/{CAMERA}")
    await read_parts(response, 1)
    assert (await camera_counters(simulator, sim_printer))["clients"] == 1
    entity_registry.async_update_entity(CAMERA, disabled_by=er.RegistryEntryDisabler.USER)
    await hass.async_block_till_done()
    assert hass.states.get(CAMERA) is None
    await wait_for_clients(simulator, sim_printer, 0)  # the viewer is still there; the printer is free
    async with asyncio.timeout(5):
        while await response.content.readany():  # the response ends too
            pass
    response.close()


async def test_an_offline_printer_errors_at_once(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    await simulator.offline(sim_printer["serial"])
    entry = farm_entry(sim_printer)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(CAMERA).state == "unavailable"
    async with asyncio.timeout(1):
        with pytest.raises(HomeAssistantError, match="Printer 1 cannot be reached"):
            await camera.async_get_image(hass, CAMERA)
    assert (await camera_counters(simulator, sim_printer))["accepts"] == 0
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_camera_that_closes_at_once_is_an_error_not_a_hang(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await setup_farm(hass, sim_printer)
    # A printer with as many camera clients as it takes closes like one refusing the code.
    await simulator.set_camera_fault(sim_printer["serial"], "full")
    async with asyncio.timeout(8):  # within Home Assistant's 10 s, with our own reason
        with pytest.raises(
            HomeAssistantError,
            match=r"closed before the first frame \(wrong access code or too many viewers\)",
        ) as caught:
            await camera.async_get_image(hass, CAMERA)
        response = await (await hass_client()).get(f"/api/camera_proxy/{CAMERA}")
    assert response.status == 500  # Home Assistant's answer to a camera that gives no image
    assert sim_printer["access_code"] not in str(caught.value)
    assert (await camera_counters(simulator, sim_printer))["turned_away"] == 2
    await wait_for_clients(simulator, sim_printer, 0)
    assert sim_printer["access_code"] not in caplog.text


async def test_camera_type_follows_the_model_the_printer_reports(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Print Farm",
        data={"discovery_host": "127.0.0.1", "discovery_port": 0},
        subentries_data=[
            ConfigSubentryData(
                data={**printer_subentry_data(sim_printer), "model": None},  # not known at setup
                subentry_type="printer",
                title="Printer 1",
                unique_id=sim_printer["serial"],
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    printer = entry.runtime_data.printer_by_id(1)
    await wait_until(hass, lambda: printer.model == "P1S")
    assert "liveview" not in hass.states.get(CAMERA).attributes  # a P1S has a JPEG camera, no RTSPS
    jpeg((await camera.async_get_image(hass, CAMERA)).content)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_still_has_one_deadline_within_home_assistants(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    await setup_farm(hass, sim_printer)
    # Each step stays within its own 5 s (a 4 s handshake, then no frame): together they would not.
    await simulator.set_camera_fault(sim_printer["serial"], "slow")
    started = time.monotonic()
    with pytest.raises(HomeAssistantError, match="sent no picture: no frame within 8 s"):
        await camera.async_get_image(hass, CAMERA)
    assert 7.5 < time.monotonic() - started < 9.5
    await wait_for_clients(simulator, sim_printer, 0)


async def test_a_printer_named_by_host_name_streams_from_its_reported_ip(
    hass: HomeAssistant, simulator: SimulatorControl, sim_x1: dict[str, Any]
) -> None:
    # go2rtc checks the certificate of a host name (and the printers' fail), not of an IP address.
    await setup_farm(hass, {**sim_x1, "host": "localhost"})
    await simulator.set_liveview(sim_x1["serial"], True)
    await wait_until(hass, lambda: liveview(hass) == "on")
    assert await camera.async_get_stream_source(hass, CAMERA) == (
        f"rtsps://bblp:{sim_x1['access_code']}@127.0.0.1:{sim_x1['rtsp_port']}/streaming/live/1"
    )


def liveview(hass: HomeAssistant) -> str:
    return str(hass.states.get(CAMERA).attributes["liveview"])


async def test_x1_stream_follows_lan_liveview_and_keeps_the_code_to_itself(
    hass: HomeAssistant,
    hass_client: Any,
    simulator: SimulatorControl,
    sim_x1: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert await async_setup_component(hass, "stream", {})
    entry = await setup_farm(hass, sim_x1)
    entity = camera.get_camera_from_entity_id(hass, CAMERA)
    state = hass.states.get(CAMERA)
    assert state.attributes[ATTR_SUPPORTED_FEATURES] == 0  # no stream to offer while liveview is off
    assert state.attributes["liveview"] == "off"
    assert not entity.use_stream_for_stills
    assert await camera.async_get_stream_source(hass, CAMERA) is None

    # Some firmware puts the credentials in the address it reports.
    code = sim_x1["access_code"]
    await simulator.set_liveview(sim_x1["serial"], True, with_code=True)
    await wait_until(hass, lambda: liveview(hass) == "on")
    assert hass.states.get(CAMERA).attributes[ATTR_SUPPORTED_FEATURES] == CameraEntityFeature.STREAM
    assert entity.use_stream_for_stills  # stills come from the stream: the X1 has no JPEG port
    source = f"rtsps://bblp:{code}@127.0.0.1:{sim_x1['rtsp_port']}/streaming/live/1"
    assert await camera.async_get_stream_source(hass, CAMERA) == source
    url = await camera.async_request_stream(hass, CAMERA, "hls")  # the stream integration runs it
    assert entity.stream is not None
    assert entity.stream.source == source
    assert code not in url
    printer = entry.runtime_data.printer_by_id(1)
    assert f"bblp:{code}@" in printer.client.state.raw["ipcam"]["rtsp_url"]  # the leak is there to find
    diagnostics = json.dumps(await get_diagnostics_for_config_entry(hass, hass_client, entry))
    assert "streaming/live/1" not in diagnostics  # the printer's LAN address is redacted too
    assert code not in diagnostics
    assert code not in json.dumps(dict(hass.states.get(CAMERA).attributes))
    await entity.stream.stop()
    assert code not in caplog.text

    await simulator.set_liveview(sim_x1["serial"], False)
    await wait_until(hass, lambda: liveview(hass) == "off")
    assert hass.states.get(CAMERA).attributes[ATTR_SUPPORTED_FEATURES] == 0
    assert await camera.async_get_stream_source(hass, CAMERA) is None
    assert entity.stream is None  # the stream stopped with liveview


async def test_a_new_access_code_reaches_the_running_stream(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_x1: dict[str, Any]
) -> None:
    assert await async_setup_component(hass, "stream", {})
    entry = await setup_farm(hass, sim_x1)
    await simulator.set_liveview(sim_x1["serial"], True)
    await wait_until(hass, lambda: liveview(hass) == "on")
    entity = camera.get_camera_from_entity_id(hass, CAMERA)
    stream = await entity.async_create_stream()
    assert stream is not None
    source = f"rtsps://bblp:{sim_x1['access_code']}@127.0.0.1:{sim_x1['rtsp_port']}/streaming/live/1"
    assert stream.source == source
    client = entry.runtime_data.printer_by_id(1).client

    await simulator.set_access_code(sim_x1["serial"], "24681357")
    response = await (await hass_client()).put("/api/print_farm/printers/1", json={"access_code": "24681357"})
    assert response.status == 200, await response.text()
    assert entry.runtime_data.printer_by_id(1).client is not client  # a new MQTT connection
    await wait_until(hass, lambda: stream.source != source)
    assert entity.stream is stream
    assert stream.source == f"rtsps://bblp:24681357@127.0.0.1:{sim_x1['rtsp_port']}/streaming/live/1"


@pytest.mark.parametrize(("model", "serial"), [("P1S", "01P00A000000131"), ("X1C", "00M00A000000132")])
async def test_camera_and_picture_snapshot(
    hass: HomeAssistant,
    simulator: SimulatorControl,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    model: str,
    serial: str,
) -> None:
    printer = await simulator.add_printer(model=model, serial=serial, access_code="12345678")
    try:
        entry = await setup_farm(hass, printer, names=["Workshop"])
        entries = [
            entity
            for entity in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
            if entity.domain in ("camera", "image")
        ]
        assert sorted(entity.domain for entity in entries) == ["camera", "image"]
        for entity_entry in entries:
            state = hass.states.get(entity_entry.entity_id)
            assert state is not None
            attributes = {
                key: value
                for key, value in state.attributes.items()
                if key not in ("access_token", "entity_picture")  # new at every run
            }
            shown = {
                "entity_id": entity_entry.entity_id,
                "unique_id": entity_entry.unique_id,
                "translation_key": entity_entry.translation_key,
                "original_name": entity_entry.original_name,
                "supported_features": entity_entry.supported_features,
                "state": state.state,
                "attributes": attributes,
            }
            assert shown == snapshot(name=f"{model}-{entity_entry.domain}")
    finally:
        await simulator.remove_printer(printer["serial"])


def plate_3mf(color: str) -> bytes:
    """A one-plate .gcode.3mf whose plate picture is a square of one colour."""
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(picture, format="PNG")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "Metadata/slice_info.config",
            '<?xml version="1.0" encoding="UTF-8"?>\n<config>\n  <plate>\n'
            '    <metadata key="index" value="1"/>\n    <metadata key="prediction" value="600"/>\n'
            '    <filament id="1" type="PLA" color="#00AE42" used_m="1.00" used_g="3.00"/>\n'
            "  </plate>\n</config>\n",
        )
        archive.writestr(
            "Metadata/plate_1.gcode",
            "; HEADER_BLOCK_START\n; BambuStudio 02.00.00.00\n; total estimated time: 10m 0s\n"
            "; total layer number: 10\n; HEADER_BLOCK_END\nG28\n",
        )
        archive.writestr("Metadata/plate_1.png", picture.getvalue())
    return buffer.getvalue()


async def test_job_picture_follows_the_job(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    picture = "image.printer_1_job_picture"
    entry = await setup_farm(hass, sim_printer)
    client = await hass_client()
    assert hass.states.get(picture).state == "unknown"  # no job, no picture
    assert (await client.get(f"/api/image_proxy/{picture}")).status == 500  # Home Assistant's "no image"

    async def start(name: str, color: str) -> None:
        job_id = await queue_job(client, name, plate_3mf(color))
        response = await client.post(f"{JOBS_API}/{job_id}/start")
        assert response.status == 202, await response.text()
        await hass.async_block_till_done()

    async def shown() -> tuple[int, int, int]:
        response = await client.get(f"/api/image_proxy/{picture}")
        assert response.status == 200
        assert response.content_type == "image/png"
        image = Image.open(io.BytesIO(await response.read()))
        assert image.size == (64, 64)
        pixel = image.convert("RGB").getpixel((0, 0))
        assert isinstance(pixel, tuple)
        return pixel[0], pixel[1], pixel[2]

    await start("red.gcode.3mf", "red")
    assert await shown() == (255, 0, 0)
    first = hass.states.get(picture).state
    assert first != "unknown"
    assert await hass.config_entries.async_reload(entry.entry_id)  # a restart: the same job, the same time
    await hass.async_block_till_done()
    assert hass.states.get(picture).state == first

    printer = entry.runtime_data.printer_by_id(1)
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    await simulator.advance(sim_printer["serial"], 3600)
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] == "FINISH")
    assert (await client.post(f"{JOBS_API}/1/complete")).status == 200
    await hass.async_block_till_done()
    assert hass.states.get(picture).state == "unknown"  # the job ended: no picture
    assert (await client.post("/api/print_farm/printers/1/bed-clear")).status == 200

    await start("blue.gcode.3mf", "blue")
    assert await shown() == (0, 0, 255)
    assert hass.states.get(picture).state not in ("unknown", first)

    # The stored file is gone: no picture, and no time that promises one.
    jobs = entry.runtime_data.jobs
    job = jobs.store.active_job(1)
    assert job is not None
    assert job.print_item_id is not None
    jobs.items.path(jobs.store.items[job.print_item_id]).unlink()
    assert (await client.get(f"/api/image_proxy/{picture}")).status == 500
    assert hass.states.get(picture).state == "unknown"


async def test_camera_port_set_through_rest(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    printer = entry.runtime_data.printer_by_id(1)
    mqtt = printer.client
    client = await hass_client()
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    response = await client.put("/api/print_farm/printers/1", json={"camera_port": closed_port})
    assert response.status == 200, await response.text()
    assert next(iter(entry.subentries.values())).data["camera_port"] == closed_port
    assert printer.client is mqtt  # the MQTT connection stays
    with pytest.raises(HomeAssistantError, match="camera sent no picture"):
        await camera.async_get_image(hass, CAMERA)

    # Nothing to test on the printer for the camera port: it is saved even while MQTT is down.
    await simulator.offline(sim_printer["serial"])
    response = await client.put(
        "/api/print_farm/printers/1", json={"camera_port": sim_printer["camera_port"]}
    )
    assert response.status == 200, await response.text()
    assert printer.client is mqtt
    await simulator.online(sim_printer["serial"])
    await wait_until(hass, lambda: printer.client.online)
    jpeg((await camera.async_get_image(hass, CAMERA)).content)

    for key in ("camera_port", "mqtt_port", "ftps_port"):
        for bad in (0, 65536, True, "6000", 6000.9, 6000.0, None):
            response = await client.put("/api/print_farm/printers/1", json={key: bad})
            assert response.status == 400, (key, bad)
            assert "error" in await response.json()
    assert next(iter(entry.subentries.values())).data["camera_port"] == sim_printer["camera_port"]


async def test_camera_port_reconfigured_without_reaching_the_printer(
    hass: HomeAssistant, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    entry = await setup_farm(hass, sim_printer)
    subentry_id = next(iter(entry.subentries))
    mqtt = entry.runtime_data.printer_by_id(1).client
    await simulator.offline(sim_printer["serial"])
    result = await entry.start_subentry_reconfigure_flow(hass, "printer", subentry_id)
    assert result["step_id"] == "reconfigure"
    form = {
        "host": sim_printer["host"],
        "serial": sim_printer["serial"],
        "advanced": {
            "mqtt_port": sim_printer["mqtt_port"],
            "ftps_port": sim_printer["ftps_port"],
            "camera_port": 6001,
        },
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry_id].data["camera_port"] == 6001
    assert entry.subentries[subentry_id].data["access_code"] == sim_printer["access_code"]
    await hass.async_block_till_done()
    assert entry.runtime_data.printer_by_id(1).client is mqtt  # no MQTT reconnection for it


async def rtsp_clients(simulator: SimulatorControl, printer: dict[str, Any]) -> int:
    return int((await simulator.printer(printer["serial"]))["rtsp"]["clients"])


async def test_x1_stills_and_hls_come_from_the_printers_rtsps_stream(
    hass: HomeAssistant, hass_client: Any, simulator: SimulatorControl, sim_x1: dict[str, Any]
) -> None:
    assert await async_setup_component(hass, "stream", {})
    await setup_farm(hass, sim_x1)
    await simulator.set_liveview(sim_x1["serial"], True)
    await wait_until(hass, lambda: liveview(hass) == "on")
    assert await rtsp_clients(simulator, sim_x1) == 0  # nobody watches: nothing encoded
    entity = camera.get_camera_from_entity_id(hass, CAMERA)
    client = await hass_client()
    url = await camera.async_request_stream(hass, CAMERA, "hls")  # the frontend's camera/stream
    try:
        async with asyncio.timeout(30):  # the playlist waits for the first whole segment
            response = await client.get(url.replace("master_playlist", "playlist"))
        assert response.status == 200, await response.text()
        playlist = await response.text()
        assert "#EXTINF" in playlist
        segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
        response = await client.get(url.rsplit("/", 1)[0] + "/" + segment)
        assert response.status == 200
        assert len(await response.read()) > 0

        # A still goes through the same stream: the simulator's picture, decoded from H.264.
        image = await camera.async_get_image(hass, CAMERA)
        assert image.content_type == "image/jpeg"
        assert jpeg(image.content).size == (320, 180)
        response = await client.get(f"/api/camera_proxy/{CAMERA}")
        assert response.status == 200
        jpeg(await response.read())
        assert await rtsp_clients(simulator, sim_x1) == 1  # one RTSPS session for them all
    finally:
        assert entity.stream is not None
        for output in entity.stream.outputs().values():  # as the viewer leaving: HLS's idle timer too
            await entity.stream.remove_provider(output)  # the last one stops the stream
    async with asyncio.timeout(5):
        while await rtsp_clients(simulator, sim_x1):  # noqa: ASYNC110 (the simulator's own process)
            await asyncio.sleep(0.05)
