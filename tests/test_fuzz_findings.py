"""What the API fuzz test (tests/test_fuzz_api.py) found, each pinned by a focused test."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
import pytest

from .test_openapi_schemas import GCODE, PREFIX


@pytest.fixture
async def job(client: TestClient) -> int:
    """A print item, a job of it on printer 1, and a rack: what the bodies below name."""
    form = aiohttp.FormData()
    form.add_field("file", GCODE, filename="part.gcode")
    item = (await (await client.post(f"{PREFIX}/print-jobs/upload", data=form)).json())["print_item_id"]
    response = await client.post(f"{PREFIX}/print-jobs", json={"print_item_id": item, "printer_id": 1})
    assert response.status == 201
    rack = {"name": "Rack", "number_of_shelves": 2, "shelf_spacing_mm": 80, "bed_size": "256x256"}
    assert (await client.post(f"{PREFIX}/ottoracks", json=rack)).status == 201
    return int((await response.json())["id"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        # The fuzz case: a job of print item `true` was created, and listed with "print_item_id": true.
        ("post", "/print-jobs", {"print_item_id": True, "printer_id": None}),
        ("post", "/print-jobs", {"print_item_id": 1, "printer_id": True}),
        ("post", "/print-jobs", {"print_item_id": 1, "printer_id": 1, "ottoeject_id": True}),
        ("post", "/print-jobs", {"print_item_id": 1, "printer_id": 1, "priority": True}),
        ("post", "/print-jobs", {"print_item_id": 1, "printer_id": 1, "plate": True}),
        ("put", "/print-jobs/{job}", {"priority": True}),
        ("put", "/print-jobs/{job}", {"printer_id": True}),
        ("post", "/print-jobs/{job}/move", {"position": True}),
        ("put", "/v1/jobs/{job}", {"priority": True}),
        ("put", "/printers/1", {"ottoeject_id": True}),
        ("put", "/ottoracks/1", {"ottoeject_id": True}),
        (
            "post",
            "/ottoracks",
            {
                "name": "B",
                "number_of_shelves": 2,
                "shelf_spacing_mm": 80,
                "bed_size": "256x256",
                "ottoeject_id": True,
            },
        ),
    ],
)
async def test_a_boolean_is_not_an_integer(
    client: TestClient, job: int, method: str, path: str, body: dict[str, Any]
) -> None:
    """JSON true is refused where the document declares an integer (Python's True is 1), and nothing changes."""
    before = await (await client.get(f"{PREFIX}/print-jobs")).json()
    racks = await (await client.get(f"{PREFIX}/ottoracks")).json()
    response = await client.request(method, PREFIX + path.format(job=job), json=body)
    assert response.status == 400, await response.text()
    # Refused by the body's schema, at the field that is true (not looked up as id 1 first).
    assert (
        f"@ data['{next(key for key, value in body.items() if value is True)}']"
        in (await response.json())["message"]
    )
    assert await (await client.get(f"{PREFIX}/print-jobs")).json() == before
    assert await (await client.get(f"{PREFIX}/ottoracks")).json() == racks


async def test_integers_are_still_taken(client: TestClient, job: int) -> None:
    response = await client.put(f"{PREFIX}/print-jobs/{job}", json={"priority": 100, "printer_id": 1})
    assert response.status == 200, await response.text()
    response = await client.put(f"{PREFIX}/v1/jobs/{job}", json={"priority": 1})
    assert (await response.json())["priority"] == 1
    assert (await client.post(f"{PREFIX}/print-jobs/{job}/move", json={"position": 1})).status == 200
    assert (await client.put(f"{PREFIX}/print-jobs/{job}", json={"priority": 101})).status == 400
    assert (await client.put(f"{PREFIX}/print-jobs/{job}", json={"priority": 2.0})).status == 400
