"""What survives a crash or a full disk: atomic fact files, books changed only once saved, no upload leftovers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.storage import Store
import homeassistant.util.file as ha_file
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.print_farm.const import DOMAIN
from custom_components.print_farm.rules.books.runs import Books
from custom_components.print_farm.rules.books.schema import RECIPE_CREATE, SPOOL_CREATE
from custom_components.print_farm.rules.jobs import JobError
from custom_components.print_farm.runtime.items import read_metadata, remove_leftovers
from custom_components.print_farm.runtime.production import STORAGE_KEY

from .fileinfo.test_zip_bounds import _shared_data_bomb

V1 = "/api/print_farm/v1"
RUNS = f"{V1}/production-runs"
FACT_FILES = {f"{DOMAIN}.{name}" for name in ("printers", "ottoejects", "racks", "jobs", "production")}


@pytest.fixture
def disk_writes(hass: HomeAssistant) -> Iterator[None]:
    """Store writes take Home Assistant's real path (its JSON writer, atomic or not) to the test's config folder.

    The test harness replaces `Store._async_write_data` with a dict; this puts the real write back.
    """

    async def write(store: Store[Any], path: str, data: dict[str, Any]) -> None:
        await hass.async_add_executor_job(store._write_data, store.path, data)

    with patch.object(Store, "_async_write_data", write):
        yield


async def _set_up(hass: HomeAssistant) -> MockConfigEntry:
    entry = MockConfigEntry(domain=DOMAIN, title="Print Farm", data={"discovery_port": 0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def farm(hass: HomeAssistant, socket_enabled: None, disk_writes: None) -> MockConfigEntry:
    return await _set_up(hass)


@pytest.fixture
async def client(hass_client: Any, farm: MockConfigEntry) -> TestClient:
    return await hass_client()


async def _body(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _run_ready_to_complete(client: TestClient) -> tuple[str, str]:
    """A spool holding 850 g and a run in progress that used 140 g of it: (run id, spool id)."""
    spool = await _body(
        await client.post(
            f"{V1}/spools",
            json={"name": "PLA Black", "material": "PLA", "remaining_grams": 850, "net_weight_grams": 1000},
        ),
        201,
    )
    run = await _body(await client.post(RUNS, json={"status": "in_progress"}), 201)
    material = await _body(
        await client.post(
            f"{RUNS}/{run['id']}/materials", json={"spool_id": spool["id"], "estimated_weight_grams": 135}
        ),
        201,
    )
    await _body(
        await client.patch(
            f"{RUNS}/{run['id']}/materials/{material['id']}",
            json={"spool_weight_before_grams": 850, "spool_weight_after_grams": 710},
        ),
        200,
    )
    return run["id"], spool["id"]


def _on_disk(hass: HomeAssistant) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(hass.config.path(".storage", STORAGE_KEY)).read_text())["data"]
    return data


class _FullDiskOnce:
    """The atomic writer's file cannot be written, once: what a full disk does inside Home Assistant's writer."""

    def __init__(self) -> None:
        self.failed = False
        self.original = ha_file.AtomicWriter

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise OSError(28, "No space left on device")
        return self.original(*args, **kwargs)


async def test_failed_save_changes_nothing_and_a_retry_completes_once(
    hass: HomeAssistant, client: TestClient, farm: MockConfigEntry
) -> None:
    """A completion whose save fails answers 503 and changes nothing; the same request then completes, once."""
    run_id, spool_id = await _run_ready_to_complete(client)
    books = farm.runtime_data.production
    full_disk = _FullDiskOnce()
    with patch.object(ha_file, "AtomicWriter", full_disk):
        # Home Assistant's Store logs a failed write and returns: the books must notice all the same.
        body = await _body(await client.post(f"{RUNS}/{run_id}/complete"), 503)
        assert full_disk.failed
        assert body["error"] == "Service Unavailable"
        assert "Could not save the books" in body["message"]
        assert "nothing was changed" in body["message"]

        assert books.books.runs[run_id].status == "in_progress"
        assert books.books.spools[spool_id].remaining_grams == 850
        assert books.books.material_used_grams == 0
        assert (await _body(await client.get(f"{RUNS}/{run_id}"), 200))["status"] == "in_progress"
        assert (await _body(await client.get(f"{V1}/spools/{spool_id}"), 200))["remaining_grams"] == 850.0
        stored = _on_disk(hass)
        assert [run["status"] for run in stored["runs"]] == ["in_progress"]
        assert stored["material_used_grams"] == "0"

        done = await _body(await client.post(f"{RUNS}/{run_id}/complete"), 200)
    assert done["spools_updated"][0]["deducted"] == 140.0
    assert (await _body(await client.get(f"{V1}/spools/{spool_id}"), 200))["remaining_grams"] == 710.0
    stored = _on_disk(hass)
    assert [run["status"] for run in stored["runs"]] == ["completed"]
    assert [spool["remaining_grams"] for spool in stored["spools"]] == ["710.000"]
    assert books.books.material_used_grams == 140
    await _body(await client.post(f"{RUNS}/{run_id}/complete"), 409)  # once only
    assert books.books.spools[spool_id].remaining_grams == 710


async def test_fact_files_are_written_atomically(
    hass: HomeAssistant, socket_enabled: None, disk_writes: None
) -> None:
    """Every file the farm keeps goes through Home Assistant's atomic writer (a crash leaves old or new, whole)."""
    created: list[Store[Any]] = []
    original_init = Store.__init__

    def record(store: Store[Any], *args: Any, **kwargs: Any) -> None:
        original_init(store, *args, **kwargs)
        created.append(store)

    with patch.object(Store, "__init__", record):
        await _set_up(hass)
    ours = {store.key: store for store in created if store.key.startswith(f"{DOMAIN}.")}
    assert set(ours) >= FACT_FILES

    written: dict[str, str] = {}
    atomic, plain = ha_file.write_utf8_file_atomic, ha_file.write_utf8_file

    def spy(kind: str, writer: Any) -> Any:
        def write(filename: str, *args: Any, **kwargs: Any) -> None:
            written[Path(filename).name] = kind
            writer(filename, *args, **kwargs)

        return write

    with (
        patch("homeassistant.helpers.json.write_utf8_file_atomic", spy("atomic", atomic)),
        patch("homeassistant.helpers.json.write_utf8_file", spy("plain", plain)),
    ):
        for store in ours.values():
            await store.async_save({"probe": True})
    assert written == dict.fromkeys(ours, "atomic")


async def test_leftover_uploads_removed_at_setup(hass: HomeAssistant, socket_enabled: None) -> None:
    """Temporary files of uploads cut short by a hard kill are gone after setup; nothing else is touched."""
    folder = Path(hass.config.path(DOMAIN))
    leftovers = [
        folder / "uploads" / ".upload-0123456789abcdef0123456789abcdef",
        folder / "files" / ".7-cube.gcode.3mf.partial",
    ]
    kept = [
        folder / "files" / "7-cube.gcode.3mf",
        folder / "files" / "8-.upload-0123456789abcdef0123456789abcdef",
        folder / "uploads" / "notes.txt",
        folder / "uploads" / ".upload-not-ours",
        folder / ".upload-0123456789abcdef0123456789abcdef",  # not in the uploads folder
    ]
    for path in (*leftovers, *kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"G28\n")
    await _set_up(hass)
    assert [path.name for path in leftovers if path.exists()] == []
    assert all(path.exists() for path in kept)


def test_remove_leftovers_without_folders(tmp_path: Path) -> None:
    """A farm that never received a file has neither folder: nothing to do, nothing raised."""
    assert remove_leftovers(tmp_path / "print_farm") == 0


def test_shared_data_upload_is_refused(tmp_path: Path) -> None:
    """The upload turns the reader's refusal of an archive whose entries share data into a 400."""
    path = tmp_path / "bomb.gcode.3mf"
    path.write_bytes(_shared_data_bomb(16, 1))
    with pytest.raises(JobError) as raised:
        read_metadata(path, "bomb.gcode.3mf")
    assert raised.value.status == 400
    assert "overlap" in str(raised.value)


def test_books_copy_is_independent() -> None:
    """Every operation on a copy of the books leaves the books themselves as they were."""
    books = Books(lambda: datetime(2024, 1, 15, 10, tzinfo=UTC))
    spool = books.add_spool(SPOOL_CREATE({"name": "PLA", "material": "PLA", "remaining_grams": 850}))
    product = books.add_product({"name": "Stand"})
    recipe = books.add_recipe(
        RECIPE_CREATE({"product_id": product.id, "materials": [{"material": "PLA", "grams_per_unit": 10}]})
    )
    run = books.add_run({"status": "in_progress"})
    item = books.add_item(run.id, {"product_id": product.id, "quantity": 2})
    material = books.add_material(run.id, {"spool_id": spool.id, "estimated_weight_grams": Decimal(135)})
    before = books.to_stored()

    twin = books.copy()
    twin.update_item(run.id, item.id, {"successful_quantity": 2})
    twin.update_material(run.id, material.id, {"actual_weight_grams": Decimal(140)})
    twin.add_item(run.id, {"product_id": product.id, "quantity": 1})
    twin.complete_run(run.id)
    twin.adjust_spool(spool.id, delta_grams=Decimal(-10))
    twin.update_recipe(recipe.id, {"materials": [{"material": "PETG", "grams_per_unit": 5}]})
    twin.update_product(product.id, {"name": "Phone stand"})
    twin.add_run({"status": "pending"})
    assert books.to_stored() == before
    assert twin.to_stored() != before
    assert twin.runs[run.id].status == "completed"


async def test_the_action_says_a_failed_save_is_not_the_callers_mistake(
    hass: HomeAssistant, client: TestClient, farm: MockConfigEntry
) -> None:
    """The completion action, when the save fails: a translated error that invites a retry, nothing changed."""
    run_id, spool_id = await _run_ready_to_complete(client)
    with patch.object(ha_file, "AtomicWriter", _FullDiskOnce()), pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "complete_production_run", {"run_id": run_id}, blocking=True, return_response=True
        )
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "production_not_saved"
    assert farm.runtime_data.production.books.spools[spool_id].remaining_grams == 850
    await hass.services.async_call(
        DOMAIN, "complete_production_run", {"run_id": run_id}, blocking=True, return_response=True
    )
    assert farm.runtime_data.production.books.spools[spool_id].remaining_grams == 710
