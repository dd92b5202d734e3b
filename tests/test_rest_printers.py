"""The Printers API mirror: every route, good and bad input, auth, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
import pytest

from simulator.control import SimulatorControl

from .helpers import setup_farm, wait_until

type ClientFactory = Callable[..., Awaitable[TestClient]]
API = "/api/print_farm/printers"


@pytest.fixture
async def farm(hass: HomeAssistant, sim_printer: dict[str, Any]) -> Any:
    return await setup_farm(hass, sim_printer, names=["Garage"])


@pytest.fixture
async def client(hass_client: ClientFactory, farm: Any) -> TestClient:
    return await hass_client()


@pytest.fixture
async def read_only_client(
    hass: HomeAssistant, aiohttp_client: Any, hass_read_only_access_token: str, farm: Any
) -> TestClient:
    return await aiohttp_client(
        hass.http.app, headers={"Authorization": f"Bearer {hass_read_only_access_token}"}
    )


def register_body(printer: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Attic X1",
        "brand": "Bambu Lab",
        "model": "X1C",
        "type": "FDM",
        "ip_address": printer["host"],
        "access_code": printer["access_code"],
        "serial_number": printer["serial"],
        "build_volume": {"width_mm": 256, "depth_mm": 256, "height_mm": 256},
        "filament": {"material": "PETG", "color": "FF0000FF"},
        "mqtt_port": printer["mqtt_port"],
        "ftps_port": printer["ftps_port"],
    }
    body.update(overrides)
    return body


async def test_list_get_status(client: TestClient, sim_printer: dict[str, Any]) -> None:
    response = await client.get(API)
    assert response.status == 200
    assert await response.json() == [
        {
            "id": 1,
            "name": "Garage",
            "status": "IDLE",
            "type": "FDM",
            # The idle simulator has nothing loaded (ams.tray_now 255: not the external spool), and
            # no filament is stored for it.
            "filament": {"material": "N/A", "color": "N/A"},
        }
    ]

    response = await client.get(f"{API}/1")
    assert response.status == 200
    body = await response.json()
    assert list(body) == [
        "id", "name", "brand", "model", "type", "status", "current_stage", "progress_percent",
        "remaining_time_minutes", "filament", "build_volume", "ip_address", "serial_number",
        "bed_temperature", "nozzle_temperature",
        "ottoeject_id", "ottoeject_position",  # extra keys (docs/API.md)
    ]  # fmt: skip
    assert (body["ottoeject_id"], body["ottoeject_position"]) == (None, None)
    assert body["filament"] == {
        "material": "N/A",
        "color": "N/A",
        "name": None,
        "source": "database_fallback",
    }
    assert body["id"] == 1
    assert body["model"] == "P1S"
    assert body["status"] == "IDLE"
    assert body["current_stage"] == "IDLE"
    assert body["serial_number"] == sim_printer["serial"]
    assert body["ip_address"] == sim_printer["host"]
    assert isinstance(body["bed_temperature"], float)
    assert sim_printer["access_code"] not in await (await client.get(f"{API}/1")).text()

    response = await client.get(f"{API}/1/status")
    assert await response.json() == {
        "id": 1,
        "name": "Garage",
        "brand": "Bambu Lab",
        "model": "P1S",
        "status": "IDLE",
        "current_stage": "IDLE",
        "progress_percent": 0,
        "remaining_time_minutes": 0,
    }


@pytest.mark.parametrize("path", [f"{API}/9", f"{API}/abc", f"{API}/9/status"])
async def test_unknown_printer_is_404(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert (await response.json())["error"] == "Not Found"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", f"{API}/9/pause", None),
        ("post", f"{API}/9/resume", None),
        ("post", f"{API}/9/stop", None),
        ("post", f"{API}/9/send-gcode", {"gcode": "G28"}),
        ("post", f"{API}/9/start-print", {"filename": "a.gcode"}),
        ("put", f"{API}/9", {"name": "x"}),
        ("delete", f"{API}/9", None),
    ],
)
async def test_unknown_printer_commands_are_404(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    response = await getattr(client, method)(path, json=body)
    assert response.status == 404


async def test_register_update_delete(
    hass: HomeAssistant, client: TestClient, farm: Any, sim_x1: dict[str, Any]
) -> None:
    response = await client.post(API, json=register_body(sim_x1))
    assert response.status == 201, await response.text()
    assert await response.json() == {
        "id": 2,
        "name": "Attic X1",
        "message": "Printer registered successfully",
    }
    assert len(farm.subentries) == 2

    response = await client.post(API, json=register_body(sim_x1))
    assert response.status == 409

    printer = farm.runtime_data.printer_by_id(2)
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] is not None)
    response = await client.put(
        f"{API}/2",
        json={"name": "Attic", "filament": {"material": "ABS", "color": "000000FF"}, "type": "FDM"},
    )
    assert response.status == 200
    body = await response.json()
    assert body["name"] == "Attic"
    assert body["message"] == "Printer updated successfully"
    assert body["build_volume"] == {"width_mm": 256, "depth_mm": 256, "height_mm": 256}
    assert body["model"] == "X1C"
    # The printer was not reconnected for a rename.
    assert farm.runtime_data.printer_by_id(2).client is printer.client

    response = await client.put(f"{API}/2", json={"access_code": "11111111"})
    assert response.status == 400
    assert "access code" in (await response.json())["message"]
    assert farm.subentries[printer.subentry.subentry_id].data["access_code"] == sim_x1["access_code"]

    response = await client.delete(f"{API}/2")
    assert response.status == 200
    assert await response.json() == {"message": "Printer deleted successfully"}
    assert len(farm.subentries) == 1
    assert (await client.get(f"{API}/2")).status == 404

    # Ids are never reused.
    response = await client.post(API, json=register_body(sim_x1))
    assert (await response.json())["id"] == 3


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"ip_address": ""}, 400),
        ({"mqtt_port": 70000}, 400),
        ({"build_volume": {"width_mm": "wide"}}, 400),
        ({"access_code": "00000000"}, 400),
        ({"serial_number": "01P00A000000009"}, 400),
        ({"mqtt_port": 1}, 502),
    ],
)
async def test_register_refuses_bad_input(
    client: TestClient, farm: Any, sim_x1: dict[str, Any], overrides: dict[str, Any], status: int
) -> None:
    response = await client.post(API, json=register_body(sim_x1, **overrides))
    assert response.status == status
    body = await response.json()
    assert set(body) == {"error", "message"}
    assert sim_x1["access_code"] not in str(body)
    assert len(farm.subentries) == 1


async def test_register_missing_fields_and_not_json(client: TestClient) -> None:
    response = await client.post(API, json={"name": "x"})
    assert response.status == 400
    response = await client.post(API, data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400


async def test_commands_and_print(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    response = await client.post(f"{API}/1/send-gcode", json={"gcode": "G0 Z150 F3000\\nM117 Bed Ready"})
    assert response.status == 202
    assert await response.json() == {"message": "G-code sent."}
    assert "M117 Bed Ready" in (await simulator.printer(sim_printer["serial"]))["gcode_lines"]

    response = await client.post(f"{API}/1/start-print", json={"filename": "missing.gcode.3mf"})
    assert response.status == 502
    response = await client.post(f"{API}/1/pause")
    assert response.status == 502  # nothing to pause: the printer says so

    content = b"; total layer number: 20\nG28\nG1 X10\n" * 100
    form = aiohttp.FormData()
    form.add_field("file", content, filename="../../cube part.gcode")
    form.add_field("remote_filename", "cube.gcode")
    response = await client.post(f"{API}/1/upload", data=form)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["filename"] == "cube.gcode"
    assert body["file_size"] == f"{len(content) / 1024:.2f} KB"
    assert body["upload_time"].endswith("Z")
    assert body["message"] == "File 'cube.gcode' uploaded successfully to printer 1."
    files = {item["name"]: item["size"] for item in (await simulator.printer(sim_printer["serial"]))["files"]}
    assert files["cube.gcode"] == len(content)

    response = await client.post(f"{API}/1/start-print", json={"filename": "cube.gcode", "useAms": False})
    assert response.status == 202
    assert await response.json() == {"message": "Start print command for cube.gcode sent."}
    printer = farm.runtime_data.printer_by_id(1)
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    for command in ("pause", "resume", "stop"):
        response = await client.post(f"{API}/1/{command}")
        assert response.status == 202, command
        assert await response.json() == {"message": f"{command.capitalize()} command sent to printer."}


async def test_upload_refusals(client: TestClient, hass: HomeAssistant) -> None:
    form = aiohttp.FormData()
    form.add_field("other", "x")
    response = await client.post(f"{API}/1/upload", data=form)
    assert response.status == 400
    form = aiohttp.FormData()
    form.add_field("file", b"MZ", filename="virus.exe")
    response = await client.post(f"{API}/1/upload", data=form)
    assert response.status == 400
    response = await client.post(f"{API}/1/upload", json={"file": "x"})
    assert response.status == 400
    uploads = hass.config.path("print_farm", "uploads")
    listing = await hass.async_add_executor_job(
        lambda: __import__("os").listdir(uploads) if __import__("os").path.isdir(uploads) else []
    )
    assert listing == []


async def _local_uploads(hass: HomeAssistant) -> list[str]:
    uploads = Path(hass.config.path("print_farm", "uploads"))
    return await hass.async_add_executor_job(lambda: sorted(p.name for p in uploads.glob("*")))


async def _printer_files(simulator: SimulatorControl, serial: str) -> list[str]:
    return [item["name"] for item in (await simulator.printer(serial))["files"]]


async def test_upload_too_large_is_413(
    hass: HomeAssistant,
    client: TestClient,
    farm: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
) -> None:
    """Past the max_upload_mb setting the upload stops with 413, and nothing is left anywhere."""
    await farm.runtime_data.async_update_settings({"max_upload_mb": 1})
    form = aiohttp.FormData()
    form.add_field("file", b"G28\n" + b"G1 X1\n" * (1024 * 1024 // 6 + 1), filename="big.gcode")
    response = await client.post(f"{API}/1/upload", data=form)
    assert response.status == 413, await response.text()
    assert await response.json() == {
        "error": "Payload Too Large",
        "message": "The file is larger than 1.00 MB.",
    }
    assert await _local_uploads(hass) == []
    assert "big.gcode" not in await _printer_files(simulator, sim_printer["serial"])
    # Just under the limit is taken.
    form = aiohttp.FormData()
    form.add_field("file", b"G28\n" * (1024 * 1024 // 4), filename="fits.gcode")
    assert (await client.post(f"{API}/1/upload", data=form)).status == 200


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../x.gcode", "x.gcode"),
        ("..\\..\\evil.gcode.3mf", "evil.gcode.3mf"),
        ("/etc/passwd.gcode", "passwd.gcode"),
        ("Bräcket <v2>|*?.gcode", "Bracket _v2-c483f7a1.gcode"),  # not ASCII: a hash keeps it apart
        (" .hidden.gcode", "hidden.gcode"),
    ],
)
async def test_upload_names_are_sanitised(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    sent: str,
    stored: str,
) -> None:
    """A path or odd characters in the file's name never reach the printer's storage as such."""
    before = set(await _printer_files(simulator, sim_printer["serial"]))
    form = aiohttp.FormData(quote_fields=False)  # the name as a browser sends it, not percent-encoded
    form.add_field("file", b"; total layer number: 1\nG28\n", filename=sent)
    response = await client.post(f"{API}/1/upload", data=form)
    assert response.status == 200, await response.text()
    assert (await response.json())["filename"] == stored
    assert set(await _printer_files(simulator, sim_printer["serial"])) - before == {stored}
    assert await _local_uploads(hass) == []


async def test_offline_printer_is_503(
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
    hass: HomeAssistant,
) -> None:
    printer = farm.runtime_data.printer_by_id(1)
    await simulator.offline(sim_printer["serial"])
    await wait_until(hass, lambda: not printer.client.online)
    response = await client.post(f"{API}/1/pause")
    assert response.status == 503
    assert (await (await client.get(f"{API}/1")).json())["status"] == "OFFLINE"
    await simulator.online(sim_printer["serial"])


async def test_auth(
    hass: HomeAssistant, hass_client_no_auth: ClientFactory, read_only_client: TestClient
) -> None:
    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(API)).status == 401
    assert (await anonymous.get("/api/print_farm/openapi.json")).status == 401
    assert (await read_only_client.get(API)).status == 200
    assert (await read_only_client.get(f"{API}/1")).status == 200
    for method, path in (
        ("post", API),
        ("post", f"{API}/1/pause"),
        ("post", f"{API}/1/send-gcode"),
        ("post", f"{API}/1/upload"),
        ("put", f"{API}/1"),
        ("delete", f"{API}/1"),
    ):
        response = await getattr(read_only_client, method)(path, json={})
        assert response.status == 403, (method, path)
        assert (await response.json())["error"] == "Forbidden"


async def test_v1_job_changes_need_an_admin(client: TestClient, read_only_client: TestClient) -> None:
    """A read-only user may read a job in Printernizer's shape but not rename or delete it."""
    form = aiohttp.FormData()
    form.add_field("file", b"; total layer number: 1\nG28\n", filename="cube.gcode")
    item = await (await client.post("/api/print_farm/print-jobs/upload", data=form)).json()
    job = await client.post(
        "/api/print_farm/print-jobs", json={"print_item_id": item["print_item_id"], "printer_id": 1}
    )
    assert job.status == 201
    path = f"/api/print_farm/v1/jobs/{(await job.json())['id']}"
    before = await (await read_only_client.get(path)).json()
    for response in (
        await read_only_client.put(path, json={"job_name": "renamed", "priority": 5}),
        await read_only_client.delete(path),
    ):
        assert response.status == 403
        assert (await response.json())["error"] == "Forbidden"
    assert await (await client.get(path)).json() == before


async def test_openapi_lists_every_route(hass: HomeAssistant, client: TestClient) -> None:
    response = await client.get("/api/print_farm/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    registered = {
        (route.resource.canonical.rstrip("/"), route.method.lower())
        for route in hass.http.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/print_farm")
        and route.method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert registered
    assert registered <= documented, registered - documented
    register = document["paths"]["/api/print_farm/printers"]["post"]
    schema = register["requestBody"]["content"]["application/json"]["schema"]
    assert {"name", "ip_address", "access_code", "serial_number"} <= set(schema["required"])


async def test_every_route_needs_authentication(
    hass: HomeAssistant, hass_client_no_auth: ClientFactory, farm: Any
) -> None:
    """Every registered Print Farm route answers 401 without a token, whatever its method."""
    anonymous = await hass_client_no_auth()
    routes = {
        (route.resource.canonical, route.method)
        for route in hass.http.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/print_farm")
        and route.method not in ("HEAD", "OPTIONS")
    }
    assert len(routes) > 20
    for path, method in sorted(routes):
        concrete = re.sub(r"\{[a-z_]+\}", "1", path)
        response = await anonymous.request(method, concrete, json={})
        assert response.status == 401, (method, path)
