"""The project's own sample files, one per supported slicer family (always run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custom_components.print_farm.fileinfo import FileInfo, read_file_info, read_thumbnail

from .helpers import SAMPLES


def _read(name: str) -> FileInfo:
    return read_file_info(SAMPLES / name)


def test_prusaslicer_two_tools() -> None:
    info = _read("prusaslicer_2.8_two_tools.gcode")
    assert (info.file_format, info.slicer, info.slicer_version) == ("gcode", "PrusaSlicer", "2.8.1")
    assert info.estimated_time_s == 3723  # normal mode, not silent
    assert (info.layer_count, info.layer_count_source) == (4, "counted")  # ;LAYER_CHANGE, not BEFORE_/AFTER_
    assert info.filament_g == 0.47
    assert info.filament_mm == 155.6
    assert [(t.tool, t.grams, t.mm, t.material, t.color) for t in info.filament_per_tool] == [
        (0, 0.36, 120.5, "PLA", "#FF0000"),
        (1, 0.11, 35.1, "PETG", "#00FF00"),
    ]
    assert info.materials == ["PLA", "PETG"]
    assert info.colors == ["#FF0000", "#00FF00"]
    assert (info.layer_height_mm, info.first_layer_height_mm, info.object_height_mm) == (0.2, 0.2, 0.8)
    assert info.nozzle_diameter_mm == 0.4
    assert info.printer_model == "XL2IS"
    assert info.plates == []


def test_thumbnails_two_largest_kept_others_readable() -> None:
    path = SAMPLES / "prusaslicer_2.8_two_tools.gcode"
    info = read_file_info(path)
    assert [(t.width, t.height, t.format) for t in info.thumbnails] == [
        (16, 16, "png"),
        (32, 24, "png"),
        (4, 4, "qoi"),
    ]
    kept = [t for t in info.thumbnails if t.data is not None]
    assert [(t.width, t.height) for t in kept] == [(16, 16), (32, 24)]
    assert all(t.data is not None and t.data.startswith(b"\x89PNG") and t.size == len(t.data) for t in kept)
    qoi = info.thumbnails[2]
    assert qoi.data is None
    assert qoi.encoding == "gcode-base64"
    assert read_thumbnail(path, qoi).startswith(b"qoif")
    assert read_thumbnail(str(path), kept[0]) == kept[0].data


def test_superslicer_stated_layers_and_percent_first_layer() -> None:
    info = _read("superslicer_2.5.gcode")
    assert (info.slicer, info.slicer_version) == ("SuperSlicer", "2.5.59.2")
    assert (info.layer_count, info.layer_count_source) == (3, "stated")
    assert (info.estimated_time_s, info.filament_g, info.filament_mm) == (1540, 3.77, 1234.56)
    assert info.first_layer_height_mm == 0.25  # 125% of 0.2
    assert (info.materials, info.colors, info.printer_model) == (["PETG"], ["#29B2B2"], "VORON_V2_350")


def test_orcaslicer() -> None:
    info = _read("orcaslicer_2.1.gcode")
    assert (info.slicer, info.slicer_version) == ("OrcaSlicer", "2.1.1")
    assert info.estimated_time_s == 750
    assert (info.layer_count, info.layer_count_source) == (3, "stated")
    assert (info.filament_g, info.filament_mm) == (1.53, 512.34)
    assert (info.first_layer_height_mm, info.object_height_mm) == (0.25, 0.65)
    assert info.printer_model == "Voron 2.4 300"
    assert [(t.width, t.height, t.data is not None) for t in info.thumbnails] == [(32, 24, True)]


def test_bambu_studio_header() -> None:
    info = _read("bambustudio_1.9.gcode")
    assert (info.slicer, info.slicer_version) == ("BambuStudio", "01.09.07.52")
    assert info.estimated_time_s == 4200  # "total estimated time: 1h 10m 0s", not the model time
    assert (info.layer_count, info.layer_count_source) == (4, "stated")
    assert (info.filament_g, info.filament_mm) == (12.5, 4100.2)
    # "; filament: 1,3": slots 1 and 3 are used (tools 0 and 2)
    assert [(t.tool, t.material, t.color) for t in info.filament_per_tool] == [
        (0, "PLA", "#FFFFFF"),
        (2, "PLA", "#FF0000"),
    ]
    assert info.materials == ["PLA"]
    assert info.colors == ["#FFFFFF", "#FF0000"]
    assert info.printer_model == "Bambu Lab X1 Carbon"


def test_cura_marlin() -> None:
    info = _read("cura_5.6_marlin.gcode")
    assert (info.slicer, info.slicer_version) == ("Cura", "5.6.0")
    assert (info.estimated_time_s, info.layer_count, info.layer_count_source) == (6666, 3, "stated")
    assert info.filament_mm == 1234.56  # ";Filament used: 1.23456m"
    assert info.filament_g is None
    assert (info.layer_height_mm, info.object_height_mm) == (0.2, 0.6)
    assert info.printer_model == "Creality Ender-3 Pro"


def test_cura_griffin() -> None:
    info = _read("cura_4.13_griffin.gcode")
    assert (info.slicer, info.slicer_version) == ("Cura", "4.13.1")
    assert (info.estimated_time_s, info.layer_count) == (5400, 100)
    assert info.filament_mm is None  # Griffin states a volume (mm3), not a length
    assert (info.nozzle_diameter_mm, info.object_height_mm, info.printer_model) == (
        0.4,
        20.27,
        "Ultimaker S5",
    )


def test_simplify3d() -> None:
    info = _read("simplify3d_4.1.gcode")
    assert (info.slicer, info.slicer_version) == ("Simplify3D", "4.1.2")
    assert info.estimated_time_s == 720  # "0 hours 12 minutes"
    assert (info.filament_mm, info.filament_g) == (401.1, 1.2)
    assert (info.layer_count, info.layer_count_source) == (3, "counted")  # "; layer N, Z = ..." lines
    assert (info.layer_height_mm, info.first_layer_height_mm, info.nozzle_diameter_mm) == (0.2, 0.25, 0.4)
    assert info.materials == ["PLA"]


def test_ideamaker() -> None:
    info = _read("ideamaker_4.4.gcode")
    assert (info.slicer, info.slicer_version) == ("ideaMaker", "4.4.1.6210")
    assert info.estimated_time_s == 1530
    assert info.filament_mm == 612.4
    assert (info.layer_count, info.layer_count_source) == (3, "counted")
    assert info.materials == ["PLA"]  # the PVA extruder used nothing
    assert info.printer_model == "Raise3D Pro3"


def test_kisslicer() -> None:
    info = _read("kisslicer_1.6.gcode")
    assert (info.slicer, info.slicer_version) == ("KISSlicer", "1.6.3.8")
    assert (info.estimated_time_s, info.filament_mm) == (1530, 456.7)
    assert (info.layer_count, info.layer_count_source) == (3, "counted")
    assert (info.layer_height_mm, info.first_layer_height_mm, info.nozzle_diameter_mm) == (0.2, 0.3, 0.4)


def test_slic3r_two_extruders() -> None:
    info = _read("slic3r_1.3_two_extruders.gcode")
    assert (info.slicer, info.slicer_version) == ("Slic3r", "1.3.0")
    assert info.filament_mm == 624.6
    assert [(t.tool, t.mm) for t in info.filament_per_tool] == [(0, 523.4), (1, 101.2)]
    assert (info.estimated_time_s, info.layer_count, info.filament_g) == (None, None, None)
    assert info.colors == ["#FFFFFF", "#000000"]


def test_layer_count_from_markers_only(tmp_path: Path) -> None:
    """Without a stated count, markers are counted; without markers either, None (never 0)."""
    text = (SAMPLES / "cura_5.6_marlin.gcode").read_text().replace(";LAYER_COUNT:3\n", "")
    (tmp_path / "cura.gcode").write_text(text)
    info = read_file_info(tmp_path / "cura.gcode")
    assert (info.layer_count, info.layer_count_source) == (3, "counted")
    assert read_file_info(tmp_path / "cura.gcode", count_layers=False).layer_count is None

    bambu = (SAMPLES / "bambustudio_1.9.gcode").read_text().replace("; total layer number: 4\n", "")
    (tmp_path / "bambu.gcode").write_text(bambu)
    assert read_file_info(tmp_path / "bambu.gcode").layer_count == 4  # "; CHANGE_LAYER"

    (tmp_path / "none.gcode").write_text(text.replace(";LAYER:", ";L:"))
    info = read_file_info(tmp_path / "none.gcode")
    assert (info.layer_count, info.layer_count_source) == (None, None)


def test_crlf_and_bom(tmp_path: Path) -> None:
    text = (SAMPLES / "prusaslicer_2.8_two_tools.gcode").read_text()
    (tmp_path / "crlf.gcode").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    info = read_file_info(tmp_path / "crlf.gcode")
    assert (info.estimated_time_s, info.layer_count, info.filament_g, info.filament_mm) == (
        3723,
        4,
        0.47,
        155.6,
    )
    assert sum(t.data is not None for t in info.thumbnails) == 2


@pytest.mark.parametrize("name", sorted(path.name for path in SAMPLES.iterdir()))
def test_json_dict_is_plain_json(name: str) -> None:
    data = read_file_info(SAMPLES / name).to_json_dict()
    text = json.dumps(data)  # no bytes anywhere
    assert json.loads(text) == data
    assert {
        "slicer",
        "slicer_version",
        "estimated_time_s",
        "layer_count",
        "filament_g",
        "filament_mm",
        "plates",
    } <= set(data)
