"""Every stated field of ../shared/fixtures/expected.json, reproduced from the real slicer files."""

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.print_farm.fileinfo import FileInfo, read_file_info

from ..conftest import SHARED_FIXTURES

EXPECTED_FILE = SHARED_FIXTURES / "expected.json"
MISSING = f"{SHARED_FIXTURES} is absent (real slicer files are kept outside the repository; see its README)"


def _entries() -> list[Any]:
    if not EXPECTED_FILE.exists():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=MISSING), id="no-shared-fixtures")]
    expected = json.loads(EXPECTED_FILE.read_text())
    return [
        pytest.param(name, fields, id=name) for name, fields in expected.items() if not name.startswith("_")
    ]


def _value(info: FileInfo, field: str) -> Any:
    if field == "plates":
        return len(info.plates)
    return getattr(info, field)


@pytest.mark.parametrize(("name", "fields"), _entries())
def test_expected_fields(name: str, fields: dict[str, Any]) -> None:
    """Stated fields match (times within 1 s, grams and mm within 0.01); unstated ones are None or justified."""
    info = read_file_info(SHARED_FIXTURES / name)
    for field, expected in fields.items():
        if field.startswith("_"):
            continue
        value = _value(info, field)
        if expected is None:
            # Not stated in the file: None, or a value the reader justifies (see JUSTIFIED).
            assert value is None or (name, field) in JUSTIFIED, (
                f"{name}: {field} should be None, got {value!r}"
            )
            continue
        if field == "estimated_time_s":
            assert value is not None, f"{name}: {field} not found"
            assert abs(value - expected) <= 1, f"{name}: {field} {value} != {expected}"
        elif field in ("filament_g", "filament_mm"):
            assert value is not None, f"{name}: {field} not found"
            assert abs(value - expected) <= 0.01, f"{name}: {field} {value} != {expected}"
        else:
            assert value == expected, f"{name}: {field} {value!r} != {expected!r}"


# Fields expected.json leaves null that the reader fills from what the file does state.
JUSTIFIED = {
    # Metadata/plate_1.gcode's header: "; total filament length [mm] : 9729.36" (slice_info.config
    # says used_m="9.73" for the same filament).
    ("3mf/test.gcode.3mf", "filament_mm"),
}


@pytest.mark.skipif(not EXPECTED_FILE.exists(), reason=MISSING)
def test_justified_values() -> None:
    """The values filled in where expected.json says null are the ones the files state."""
    info = read_file_info(SHARED_FIXTURES / "3mf/test.gcode.3mf")
    assert info.filament_mm == 9729.36
    assert info.plates[0].filaments[0].mm == 9730.0  # used_m="9.73"


@pytest.mark.skipif(not EXPECTED_FILE.exists(), reason=MISSING)
def test_three_tools_and_robustness_notes() -> None:
    """The notes of expected.json: per-tool grams; garbage lists neither crash nor produce totals."""
    info = read_file_info(SHARED_FIXTURES / "gcode/full_m73_layers_0.2mm_PLA_MK3SMMU2S_11m.gcode")
    assert [tool.grams for tool in info.filament_per_tool] == [1.2, 0.0, 0.29]
    assert [tool.mm for tool in info.filament_per_tool] == [400.85, 0.0, 98.63]
    assert info.materials == ["PLA"]  # tool 1 used nothing

    # mm "1, 2, 3, 0.00, 0.00" against cm3 "1, 2, , , 0.00": 1 mm of filament is not 1 cm3,
    # so those lengths are not believed; grams "27, 4, 5, 5.23, 1.46" do not add up to the total.
    info = read_file_info(SHARED_FIXTURES / "gcode/mmu_attribute_test.gcode")
    assert info.filament_mm is None
    assert info.filament_g == 13.17
    assert all(tool.grams is None for tool in info.filament_per_tool)
    assert info.nozzle_diameter_mm == 0.4  # "0.4,0.4,0.4,porkchop,0.4"
    assert len(info.thumbnails) == 5
    assert sum(thumbnail.data is not None for thumbnail in info.thumbnails) == 2


@pytest.mark.skipif(not EXPECTED_FILE.exists(), reason=MISSING)
def test_fixture_details() -> None:
    """Other fields of the real files, as their headers state them."""
    info = read_file_info(SHARED_FIXTURES / "3mf/test.gcode.3mf")
    assert info.file_format == "gcode.3mf"
    assert info.printer_model == "Bambu Lab P1S"
    assert info.materials == ["PLA"]
    assert info.colors == ["#00AE42"]
    assert info.layer_height_mm == 0.12
    plate = info.plates[0]
    assert (plate.index, plate.estimated_time_s, plate.weight_g, plate.layer_count) == (1, 9038, 29.49, 658)
    assert plate.thumbnail is not None
    assert (plate.thumbnail.width, plate.thumbnail.height) == (512, 512)
    assert plate.thumbnail.data is not None
    assert plate.thumbnail.data.startswith(b"\x89PNG")

    info = read_file_info(SHARED_FIXTURES / "gcode/mini_cube_ps2.8.1.bgcode")
    assert info.file_format == "bgcode"
    assert [(t.width, t.height, t.format) for t in info.thumbnails] == [(16, 16, "qoi"), (313, 173, "qoi")]
    assert info.printer_model == "MK4S"

    info = read_file_info(SHARED_FIXTURES / "gcode/vase.gcode")
    assert (info.layer_count, info.layer_count_source) == (334, "counted")
    assert info.printer_model == "ENDER3V2"
    assert info.first_layer_height_mm == 0.3
