"""Sliced 3MF (.gcode.3mf): a multi-plate archive built here with zipfile."""

from __future__ import annotations

from pathlib import Path
import zipfile

import pytest

from custom_components.print_farm.fileinfo import FileInfoError, read_file_info, read_thumbnail

from .helpers import png

SLICE_INFO = """<?xml version="1.0" encoding="UTF-8"?>
<config>
  <header>
    <header_item key="X-BBL-Client-Type" value="slicer"/>
    <header_item key="X-BBL-Client-Version" value="02.01.00.59"/>
  </header>
  <plate>
    <metadata key="index" value="1"/>
    <metadata key="printer_model_id" value="C12"/>
    <metadata key="nozzle_diameters" value="0.4"/>
    <metadata key="prediction" value="3600"/>
    <metadata key="weight" value="10.50"/>
    <object identify_id="80" name="Cube &amp; Co" skipped="false" />
    <filament id="1" tray_info_idx="GFA00" type="PLA" color="#FF0000" used_m="3.40" used_g="10.50" />
    <layer_filament_lists>
      <layer_filament_list filament_list="0" layer_ranges="0 99" />
    </layer_filament_lists>
  </plate>
  <plate>
    <metadata key="index" value="2"/>
    <metadata key="printer_model_id" value="C12"/>
    <metadata key="weight" value="5.25"/>
    <filament id="2" type="PETG" color="#00AE42FF" used_m="1.20" used_g="3.75" />
    <filament id="4" type="PLA" color="#000000" used_m="0.50" used_g="1.50" />
  </plate>
  <plate>
    <metadata key="index" value="3"/>
    <metadata key="prediction" value="600"/>
    <metadata key="weight" value="1.00"/>
    <filament id="1" type="PLA" color="#FF0000" used_m="0.33" used_g="1.00" />
    <layer_filament_lists>
      <layer_filament_list filament_list="0" layer_ranges="0 20" />
      <layer_filament_list filament_list="0" layer_ranges="21 41" />
    </layer_filament_lists>
  </plate>
</config>
"""

PLATE_1_GCODE = (
    """; HEADER_BLOCK_START
; BambuStudio 02.01.00.59
; model printing time: 55m 0s; total estimated time: 1h 0m 0s
; total layer number: 100
; total filament length [mm] : 3400.12
; total filament volume [cm^3] : 8178.92
; total filament weight [g] : 10.50
; filament_density: 1.26
; filament_diameter: 1.75
; max_z_height: 20.00
; filament: 1
; HEADER_BLOCK_END

; CONFIG_BLOCK_START
; filament_colour = #FF0000;#00AE42;#FFFFFF;#000000
; filament_type = PLA;PETG;PLA;PLA
; initial_layer_print_height = 0.2
; layer_height = 0.2
; nozzle_diameter = 0.4
; printer_model = Bambu Lab P1S
; CONFIG_BLOCK_END

; EXECUTABLE_BLOCK_START
M73 P0 R60
"""
    + "; CHANGE_LAYER\n; Z_HEIGHT: 0.2\nG1 X10 Y10 E1\n" * 100
    + "; EXECUTABLE_BLOCK_END\n"
)

# Plate 2's G-code states nothing in its head: the reader streams the member to its end, counts
# the 50 layer markers and reads the time from the last lines.
PLATE_2_GCODE = (
    "; EXECUTABLE_BLOCK_START\nG28\n"
    + ("; CHANGE_LAYER\n; Z_HEIGHT: 0.2\n" + "G1 X120.125 Y95.875 E0.04512\n" * 400) * 50
    + "; EXECUTABLE_BLOCK_END\n; estimated printing time (normal mode) = 30m 0s\n"
)


def build(path: Path) -> Path:
    """A three-plate .gcode.3mf as Bambu Studio lays it out (PNGs stored, the rest deflated)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("3D/3dmodel.model", '<?xml version="1.0"?><model/>')
        archive.writestr("Metadata/plate_1.png", png(64, 64, (255, 0, 0)), zipfile.ZIP_STORED)
        archive.writestr("Metadata/plate_2.png", png(32, 32, (0, 174, 66)), zipfile.ZIP_DEFLATED)
        archive.writestr("Metadata/plate_3.png", png(16, 16), zipfile.ZIP_STORED)
        archive.writestr("Metadata/plate_1.gcode", PLATE_1_GCODE)
        archive.writestr("Metadata/plate_2.gcode", PLATE_2_GCODE)
        archive.writestr("Metadata/slice_info.config", SLICE_INFO)
    return path


def test_multi_plate(tmp_path: Path) -> None:
    path = build(tmp_path / "farm.gcode.3mf")
    info = read_file_info(path, plates=(1, 2, 3))
    assert (info.file_format, info.slicer, info.slicer_version) == ("gcode.3mf", "BambuStudio", "02.01.00.59")
    assert [plate.index for plate in info.plates] == [1, 2, 3]

    first, second, third = info.plates
    assert (first.estimated_time_s, first.weight_g, first.filament_mm, first.layer_count) == (
        3600,
        10.5,
        3400.12,
        100,
    )
    assert [(f.tool, f.material, f.color, f.grams, f.mm) for f in first.filaments] == [
        (0, "PLA", "#FF0000", 10.5, 3400.0)
    ]
    assert first.gcode_member == "Metadata/plate_1.gcode"

    assert second.estimated_time_s == 1800  # from the G-code's last lines (no prediction in the XML)
    assert second.layer_count == 50  # counted while streaming the member
    assert second.weight_g == 5.25
    assert second.filament_mm == 1700.0  # used_m 1.20 + 0.50
    assert [(f.tool, f.material, f.color) for f in second.filaments] == [
        (1, "PETG", "#00AE42"),
        (3, "PLA", "#000000"),
    ]

    assert third.gcode_member is None  # listed in slice_info.config only
    assert (third.estimated_time_s, third.weight_g, third.layer_count) == (600, 1.0, 42)  # layer ranges 0-41

    # The file's own figures are the first plate's.
    assert (info.estimated_time_s, info.layer_count, info.layer_count_source) == (3600, 100, "stated")
    assert (info.filament_g, info.filament_mm) == (10.5, 3400.12)
    assert (info.materials, info.colors) == (["PLA"], ["#FF0000"])
    assert info.printer_model == "Bambu Lab P1S"
    assert (info.layer_height_mm, info.first_layer_height_mm, info.nozzle_diameter_mm) == (0.2, 0.2, 0.4)


def test_plate_thumbnails(tmp_path: Path) -> None:
    path = build(tmp_path / "farm.gcode.3mf")
    info = read_file_info(path)
    thumbnails = [plate.thumbnail for plate in info.plates]
    assert all(thumbnail is not None for thumbnail in thumbnails)
    assert [(t.width, t.height, t.encoding, t.member) for t in thumbnails if t] == [
        (64, 64, "raw", "Metadata/plate_1.png"),
        (32, 32, "deflate", "Metadata/plate_2.png"),
        (16, 16, "raw", "Metadata/plate_3.png"),
    ]
    assert info.thumbnails == thumbnails  # the same objects, with the same kept bytes
    assert [t.data is not None for t in thumbnails if t] == [True, True, False]  # the two largest
    assert thumbnails[0] is not None
    assert thumbnails[0].data == png(64, 64, (255, 0, 0))
    assert thumbnails[1] is not None
    assert thumbnails[1].data == png(32, 32, (0, 174, 66))
    assert thumbnails[2] is not None
    assert read_thumbnail(path, thumbnails[2]) == png(16, 16)


def test_printer_model_from_model_id(tmp_path: Path) -> None:
    """Without a plate G-code, the printer model comes from slice_info.config's printer_model_id."""
    path = tmp_path / "x.gcode.3mf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Metadata/slice_info.config", SLICE_INFO)
    info = read_file_info(path)
    assert info.printer_model == "Bambu Lab P1S"
    assert (info.estimated_time_s, info.layer_count, info.filament_g) == (3600, 100, 10.5)
    assert info.slicer is None
    assert info.slicer_version == "02.01.00.59"


def test_gcode_only_archive(tmp_path: Path) -> None:
    """An archive with plate G-code but no slice_info.config: the plates come from the G-code."""
    path = tmp_path / "x.gcode.3mf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Metadata/plate_1.gcode", PLATE_1_GCODE)
    info = read_file_info(path)
    assert [p.index for p in info.plates] == [1]
    assert (info.estimated_time_s, info.layer_count, info.filament_g) == (3600, 100, 10.5)
    assert info.materials == ["PLA"]


def test_project_without_plates(tmp_path: Path) -> None:
    path = tmp_path / "project.3mf"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("3D/3dmodel.model", "<model/>")
    with pytest.raises(FileInfoError, match="without sliced plates"):
        read_file_info(path)

    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a.jpg", b"\xff\xd8\xff")
    with pytest.raises(FileInfoError, match="not a G-code, bgcode or 3MF file"):
        read_file_info(other)


def test_slice_info_with_entities_is_ignored(tmp_path: Path) -> None:
    """slice_info.config with a DTD (entity expansion) is not parsed."""
    path = tmp_path / "x.gcode.3mf"
    evil = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa">]><config><plate><metadata key="index" value="1"/></plate></config>'
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Metadata/slice_info.config", evil)
        archive.writestr("Metadata/plate_1.gcode", PLATE_1_GCODE)
    info = read_file_info(path)
    assert [p.index for p in info.plates] == [1]
    assert info.estimated_time_s == 3600  # from the G-code header
