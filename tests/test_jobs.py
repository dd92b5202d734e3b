"""Print items and jobs: upload, the queue, a whole print on a simulated printer, events, restarts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from unittest.mock import patch
import zipfile

import aiohttp
from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events, async_mock_service

from custom_components.print_farm.rules.files import format_size
from simulator.control import SimulatorControl

from .helpers import GCODE, wait_until

API = "/api/print_farm/print-jobs"


def gcode_3mf() -> bytes:
    """A one-plate .gcode.3mf as Bambu Studio writes it (written here, small)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "Metadata/slice_info.config",
            '<?xml version="1.0" encoding="UTF-8"?>\n<config>\n  <plate>\n'
            '    <metadata key="index" value="1"/>\n    <metadata key="prediction" value="1800"/>\n'
            '    <metadata key="weight" value="12.34"/>\n'
            '    <filament id="1" type="PLA" color="#00AE42" used_m="4.10" used_g="12.34"/>\n'
            "  </plate>\n</config>\n",
        )
        archive.writestr(
            "Metadata/plate_1.gcode",
            "; HEADER_BLOCK_START\n; BambuStudio 02.00.00.00\n; model printing time: 28m 0s; total estimated time: 30m 0s\n"
            "; total layer number: 60\n; HEADER_BLOCK_END\nG28\n",
        )
    return buffer.getvalue()


async def upload(client: TestClient, content: bytes = GCODE, name: str = "cube.gcode") -> Any:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name)
    return await client.post(f"{API}/upload", data=form)


async def test_upload_reads_metadata(hass: HomeAssistant, client: TestClient) -> None:
    response = await upload(client)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body == {
        "print_item_id": 1,
        "filename": "cube.gcode",
        "file_size": format_size(len(GCODE)),
        "estimated_print_time": 46,
        "layer_count": 2,
        "filament_used": "4.5g",
        "message": "File uploaded and parsed successfully",
    }
    item = await (await client.get("/api/print_farm/print-items/1")).json()
    assert item["slicer"] == "PrusaSlicer"
    stored = Path(hass.config.path("print_farm", "files", "1-cube.gcode"))
    assert await hass.async_add_executor_job(stored.read_bytes) == GCODE


async def test_upload_refusals_leave_nothing(hass: HomeAssistant, client: TestClient, farm: Any) -> None:
    form = aiohttp.FormData()
    form.add_field("comment", "no file")
    assert (await client.post(f"{API}/upload", data=form)).status == 400
    assert (await upload(client, b"MZ", "tool.exe")).status == 400
    hass.config_entries.async_update_entry(farm, options={"max_upload_mb": 1})
    response = await upload(client, GCODE * 5000)  # 1.2 MB
    assert response.status == 413
    # A broken multipart body: the stream ends in the middle of the file.
    broken = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="half.gcode"\r\n\r\nG28\nG1 X1\n'
    )
    response = await client.post(
        f"{API}/upload", data=broken, headers={"Content-Type": "multipart/form-data; boundary=XyZ"}
    )
    assert response.status == 400
    # Reading the metadata fails: neither the file nor the item stays.
    source = Path(hass.config.path("incoming.gcode"))
    await hass.async_add_executor_job(source.write_bytes, GCODE)
    with (
        patch("custom_components.print_farm.runtime.items.read_metadata", side_effect=OSError("disk full")),
        pytest.raises(OSError, match="disk full"),
    ):
        await farm.runtime_data.jobs.items.async_add(source, "x.gcode", move=False)
    files = Path(hass.config.path("print_farm"))
    left = await hass.async_add_executor_job(lambda: [p.name for p in files.rglob("*") if p.is_file()])
    assert left == [], left
    assert farm.runtime_data.jobs.store.items == {}


async def test_job_crud(hass: HomeAssistant, client: TestClient) -> None:
    # Job processing off: the auto_start job below stays queued for this test of the routes.
    assert (
        await client.put("/api/print_farm/v1/settings", json={"job_processing_enabled": False})
    ).status == 200
    await upload(client)
    for bad, status in (
        ({"print_item_id": 1, "printer_id": 1, "priority": 0}, 400),
        ({"print_item_id": 1, "printer_id": 1, "priority": "high"}, 400),
        ({"print_item_id": 9, "printer_id": 1}, 404),
        ({"print_item_id": 1, "printer_id": 9}, 404),
        ({"print_item_id": 1, "printer_id": 1, "ottoeject_id": 4}, 404),
        ({"printer_id": 1}, 400),
    ):
        assert (await client.post(API, json=bad)).status == status, bad
    response = await client.post(
        API, json={"print_item_id": 1, "printer_id": 1, "auto_start": True, "priority": 2}
    )
    assert response.status == 201
    body = await response.json()
    assert body["status"] == "QUEUED"
    assert body["priority"] == 2
    assert body["auto_start"] is True
    assert body["created_at"].endswith("Z")
    assert body["message"] == "Print job created successfully"
    assert hass.states.get("sensor.print_farm_queued_jobs").state == "1"

    listing = await (await client.get(API)).json()
    assert listing == [
        {
            "id": 1, "print_item_id": 1, "printer_id": 1, "ottoeject_id": None, "status": "QUEUED", "priority": 2,
            "progress_percent": 0, "estimated_remaining_time": None, "created_at": body["created_at"], "started_at": None,
            "orchestration_status": "waiting", "production_run_id": None, "cost": None,
        }
    ]  # fmt: skip
    detail = await (await client.get(f"{API}/1")).json()
    assert detail["print_item"] == {
        "id": 1, "filename": "cube.gcode", "file_size": format_size(len(GCODE)),
        "estimated_print_time": 46, "layer_count": 2, "filament_used": "4.5g",
    }  # fmt: skip
    assert detail["printer"] == {"id": 1, "name": "Printer 1", "brand": "Bambu Lab", "model": "P1S"}
    assert detail["ottoeject"] is None
    assert detail["completed_at"] is None

    response = await client.put(f"{API}/1", json={"priority": 5})
    assert await response.json() == {
        "id": 1,
        "priority": 5,
        "status": "QUEUED",
        "message": "Print job updated successfully",
    }
    assert (await client.put(f"{API}/1", json={"priority": -1})).status == 400
    assert (await client.put(f"{API}/7", json={"priority": 1})).status == 404
    assert (await client.delete("/api/print_farm/print-items/1")).status == 409

    # Only a printing job can be completed: this one never started.
    assert (await client.post(f"{API}/1/complete")).status == 409
    cancelled = async_capture_events(hass, "print_farm_job_cancelled")
    response = await client.delete(f"{API}/1")
    assert await response.json() == {"message": "Print job cancelled successfully"}
    await hass.async_block_till_done()
    assert [event.data["job"]["status"] for event in cancelled] == ["CANCELLED"]
    assert (await client.get(f"{API}/1")).status == 404  # cancelled and removed, as the seed says
    assert (await client.delete(f"{API}/1")).status == 404
    assert (await client.delete("/api/print_farm/print-items/1")).status == 200  # no job uses it now
    assert (await client.get(f"{API}/99")).status == 404


async def test_whole_print_from_a_3mf(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    """Done criterion: a .gcode.3mf uploaded through REST prints on a simulated printer and ends COMPLETED."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "trigger": {"platform": "event", "event_type": "print_farm_job_finished"},
                "action": {
                    "service": "test.automation",
                    "data_template": {"job": "{{ trigger.event.data.job.id }}"},
                },
            }
        },
    )
    calls = async_mock_service(hass, "test", "automation")
    events = async_capture_events(hass, "print_farm_job_started")
    response = await upload(client, gcode_3mf(), "bracket.gcode.3mf")
    assert response.status == 200
    item = await response.json()
    assert item["estimated_print_time"] == 30
    await client.post(API, json={"print_item_id": item["print_item_id"], "printer_id": 1})
    response = await client.post(f"{API}/1/start")
    assert response.status == 202, await response.text()
    details = await simulator.printer(sim_printer["serial"])
    assert "bracket.gcode.3mf" in [entry["name"] for entry in details["files"]]
    # The project's green PLA is in the simulated AMS's fourth tray (unit 0, slot 3).
    start = next(
        command["request"]["print"]
        for command in details["commands"]
        if command["request"].get("print", {}).get("command") == "project_file"
    )
    assert (start["ams_mapping"], start["use_ams"]) == ([3], True)
    assert events[0].data["job"]["status"] == "PRINTING"
    printer = farm.runtime_data.printer_by_id(1)
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    assert hass.states.get("sensor.printer_1_current_job").state == "1"
    await simulator.advance(sim_printer["serial"], 600)
    await wait_until(hass, lambda: (printer.client.fields["progress"] or 0) > 0)
    job = await (await client.get(f"{API}/1")).json()
    assert job["status"] == "PRINTING"
    assert job["progress_percent"] > 0
    # The print finishes: the job waits at 100 % for its plate to come off the printer.
    removal = async_capture_events(hass, "print_farm_workflow_awaiting_removal")
    await simulator.advance(sim_printer["serial"], 3600)
    await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[1].stage == "awaiting_removal")
    job = await (await client.get(f"{API}/1")).json()
    assert (job["status"], job["orchestration_status"], job["progress_percent"]) == (
        "PRINTING",
        "awaiting_removal",
        100,
    )
    assert job["completed_at"] is None
    assert [(event.data["job_id"], event.data["filename"]) for event in removal] == [(1, "bracket.gcode.3mf")]
    assert calls == []
    assert hass.states.get("binary_sensor.printer_1_bed_clear").state == "off"

    # Not started again until the bed is known clear.
    await client.post(API, json={"print_item_id": item["print_item_id"], "printer_id": 1})
    response = await client.post(f"{API}/2/start")
    assert response.status == 409
    # A person takes the plate off: the job completes.
    assert (await client.post("/api/print_farm/printers/1/bed-clear")).status == 200
    job = await (await client.get(f"{API}/1")).json()
    assert (job["status"], job["orchestration_status"], job["progress_percent"]) == (
        "COMPLETED",
        "completed",
        100,
    )
    assert job["completed_at"]
    await hass.async_block_till_done()
    assert [call.data["job"] for call in calls] == [1]
    state = hass.states.get("event.print_farm_print_job")
    assert state.attributes["event_type"] == "finished"
    assert hass.states.get("binary_sensor.printer_1_bed_clear").state == "on"
    assert (await client.post(f"{API}/2/start")).status == 202
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    cancelled = async_capture_events(hass, "print_farm_job_cancelled")
    assert (await client.delete(f"{API}/2")).status == 200
    assert [event.data["job"]["status"] for event in cancelled] == ["CANCELLED"]
    assert (await client.get(f"{API}/2")).status == 404
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] not in ("PREPARE", "RUNNING"))
    assert sorted(farm.runtime_data.jobs.store.jobs) == [1]  # the stopped print is not a job again


async def test_failed_print_fails_the_job(
    hass: HomeAssistant,
    client: TestClient,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    farm: Any,
) -> None:
    item = await (await upload(client)).json()
    await client.post(API, json={"print_item_id": item["print_item_id"], "printer_id": 1})
    failed = async_capture_events(hass, "print_farm_job_failed")
    assert (await client.post(f"{API}/1/start")).status == 202
    printer = farm.runtime_data.printer_by_id(1)
    await wait_until(hass, lambda: printer.client.fields["gcode_state"] in ("PREPARE", "RUNNING"))
    await simulator.fail(sim_printer["serial"], 117473282)
    await wait_until(hass, lambda: farm.runtime_data.jobs.store.jobs[1].status == "FAILED")
    assert failed[0].data["job"]["status"] == "FAILED"


async def test_jobs_survive_restart(hass: HomeAssistant, client: TestClient, farm: Any) -> None:
    await upload(client)
    await client.post(API, json={"print_item_id": 1, "printer_id": 1, "priority": 3})
    assert await hass.config_entries.async_unload(farm.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(farm.entry_id)
    await hass.async_block_till_done()
    job = farm.runtime_data.jobs.store.jobs[1]
    assert (job.status, job.priority) == ("QUEUED", 3)
    assert farm.runtime_data.jobs.store.items[1].layer_count == 2
    await client.post(API, json={"print_item_id": 1, "printer_id": 1})
    assert max(farm.runtime_data.jobs.store.jobs) == 2


async def test_rack_shelf_checks_jobs(client: TestClient, hass: HomeAssistant, farm: Any) -> None:
    """Once jobs exist, a shelf's job must be one of them."""
    rack = await client.post(
        "/api/print_farm/ottoracks",
        json={"name": "A", "number_of_shelves": 2, "shelf_spacing_mm": 80, "bed_size": "256x256"},
    )
    assert rack.status == 201
    body = {"has_plate": True, "plate_state": "with_print", "print_job_id": 1}
    assert (await client.put("/api/print_farm/ottoracks/1/shelves/1", json=body)).status == 400
    await upload(client)
    await client.post(API, json={"print_item_id": 1, "printer_id": 1})
    assert (await client.put("/api/print_farm/ottoracks/1/shelves/1", json=body)).status == 200
    shelf = (await (await client.get("/api/print_farm/ottoracks/1")).json())["shelves"][0]
    assert shelf["print_job"] == {"id": 1, "filename": "cube.gcode", "completed_at": None}


async def test_job_actions(
    hass: HomeAssistant, tmp_path: Path, simulator: SimulatorControl, sim_printer: dict[str, Any], farm: Any
) -> None:
    """The same operations as actions: add a file from an allowed folder, queue, start, cancel, clear the bed."""
    from homeassistant.exceptions import ServiceValidationError
    from homeassistant.helpers import device_registry as dr

    folder = tmp_path / "prints"
    await hass.async_add_executor_job(lambda: folder.mkdir())
    await hass.async_add_executor_job((folder / "gear.gcode").write_bytes, GCODE)
    hass.config.allowlist_external_dirs = {str(folder)}
    device = dr.async_get(hass).async_get_device(identifiers={("print_farm", sim_printer["serial"])})
    item = await hass.services.async_call(
        "print_farm",
        "add_print_item",
        {"path": str(folder / "gear.gcode")},
        blocking=True,
        return_response=True,
    )
    assert item["print_item_id"] == 1
    assert item["layer_count"] == 2
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "print_farm", "add_print_item", {"path": "/etc/hostname"}, blocking=True
        )
    job = await hass.services.async_call(
        "print_farm",
        "create_job",
        {"device_id": device.id, "print_item_id": 1},
        blocking=True,
        return_response=True,
    )
    assert job["status"] == "QUEUED"
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call("print_farm", "start_job", {"job_id": 42}, blocking=True)
    assert caught.value.translation_key == "job_refused"
    started = await hass.services.async_call(
        "print_farm", "start_job", {"job_id": 1}, blocking=True, return_response=True
    )
    assert started["status"] == "PRINTING"
    cancelled = await hass.services.async_call(
        "print_farm", "cancel_job", {"job_id": 1}, blocking=True, return_response=True
    )
    assert cancelled["status"] == "CANCELLED"
    assert hass.states.get("binary_sensor.printer_1_bed_clear").state == "off"
    await hass.services.async_call("print_farm", "mark_bed_clear", {"device_id": device.id}, blocking=True)
    assert hass.states.get("binary_sensor.printer_1_bed_clear").state == "on"


async def test_a_job_names_the_plate_it_prints(hass: HomeAssistant, client: TestClient) -> None:
    item = await (await upload(client, gcode_3mf(), "bracket.gcode.3mf")).json()
    body = {"print_item_id": item["print_item_id"], "printer_id": 1}
    response = await client.post(API, json={**body, "plate": 2})
    assert response.status == 400
    assert "1 plate(s), not 2" in (await response.json())["message"]
    assert (await client.post(API, json={**body, "plate": 0})).status == 400
    created = await client.post(API, json={**body, "plate": 1})
    assert created.status == 201
    detail = await (await client.get(f"{API}/{(await created.json())['id']}")).json()
    assert detail["plate"] == 1
