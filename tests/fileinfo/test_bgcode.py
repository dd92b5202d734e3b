"""Binary G-code (.bgcode): a small file built here with the encoder in helpers.py."""

from __future__ import annotations

from pathlib import Path
import struct

import pytest

from custom_components.print_farm.fileinfo import FileInfo, FileInfoError, read_file_info, read_thumbnail

from .helpers import PRINTER_METADATA, bgcode, bgcode_block, png


def _write(tmp_path: Path, data: bytes, name: str = "x.bgcode") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_metadata_blocks(tmp_path: Path) -> None:
    info = read_file_info(_write(tmp_path, bgcode()))
    assert (info.file_format, info.slicer, info.slicer_version) == ("bgcode", "PrusaSlicer", "2.9.0")
    assert (info.estimated_time_s, info.filament_g, info.filament_mm) == (4530, 4.62, 1500.25)
    assert info.layer_count is None  # not stated; G-code blocks are not decoded
    assert (info.layer_height_mm, info.first_layer_height_mm, info.object_height_mm) == (0.25, 0.3, 12.5)
    assert (info.nozzle_diameter_mm, info.printer_model) == (0.6, "MK4S")
    assert (info.materials, info.colors) == (["PETG"], ["#1E90FF"])
    assert [(t.width, t.height, t.format, t.encoding) for t in info.thumbnails] == [
        (16, 16, "png", "raw"),
        (48, 32, "png", "raw"),
    ]
    assert [t.data for t in info.thumbnails] == [png(16, 16), png(48, 32)]


def test_without_checksums(tmp_path: Path) -> None:
    info = read_file_info(_write(tmp_path, bgcode(crc=False)))
    assert (info.estimated_time_s, info.filament_g) == (4530, 4.62)


def test_only_two_thumbnails_loaded(tmp_path: Path) -> None:
    path = _write(tmp_path, bgcode(thumbnails=((16, 16), (64, 64), (32, 32))))
    info = read_file_info(path)
    assert [t.data is not None for t in info.thumbnails] == [False, True, True]
    assert read_thumbnail(path, info.thumbnails[0]) == png(16, 16)


def test_bad_checksum_block_ignored(tmp_path: Path) -> None:
    """A metadata block whose CRC does not match is not believed; the others still are."""
    data = bytearray(bgcode())
    start = data.find(struct.pack("<HH", 3, 1))  # the printer metadata block (deflated)
    data[start + 20] ^= 0xFF
    info = read_file_info(_write(tmp_path, bytes(data)))
    assert info.filament_mm is None  # only the printer metadata states it
    assert (info.estimated_time_s, info.filament_g) == (4530, 4.62)  # print metadata block


def test_thumbnail_claiming_4_gb(tmp_path: Path) -> None:
    """A thumbnail block claiming 4 GB ends the reading (the file is shorter): what came before stays."""
    header = b"GCDE" + struct.pack("<IH", 1, 1)
    metadata = bgcode_block(3, PRINTER_METADATA.encode(), deflate=True)
    huge = struct.pack("<HHI", 5, 0, 0xFFFFFFFF) + struct.pack("<HHH", 0, 16, 16) + png(16, 16)
    info = read_file_info(_write(tmp_path, header + metadata + huge))
    assert info.estimated_time_s == 4530
    assert info.thumbnails == []


@pytest.mark.parametrize("version", [0, 2, 0xFFFFFFFF])
def test_unknown_version(tmp_path: Path, version: int) -> None:
    with pytest.raises(FileInfoError, match="version"):
        read_file_info(_write(tmp_path, b"GCDE" + struct.pack("<IH", version, 1) + bgcode()[10:]))


def test_every_truncation(tmp_path: Path) -> None:
    """Cut anywhere: FileInfoError or what was complete, never another exception."""
    data = bgcode()
    path = tmp_path / "cut.bgcode"
    outcomes: set[str] = set()
    internal: list[str] = []
    for cut in range(4, len(data), 7):
        path.write_bytes(data[:cut])
        try:
            info = read_file_info(path)
        except FileInfoError as err:
            if str(err).startswith("internal error"):
                internal.append(f"cut at {cut}: {err}")
            outcomes.add("error")
        else:
            assert isinstance(info, FileInfo)
            outcomes.add("partial" if info.estimated_time_s is None else "complete")
    assert not internal
    assert outcomes == {"error", "partial", "complete"}


def test_heatshrink_metadata_ignored(tmp_path: Path) -> None:
    """Metadata compressed with heatshrink (compression 2) is skipped, not misread."""
    header = b"GCDE" + struct.pack("<IH", 1, 0)
    body = b"estimated printing time (normal mode)=1h\n"
    block = struct.pack("<HHII", 3, 2, 200, len(body)) + b"\x00\x00" + body
    info = read_file_info(_write(tmp_path, header + block))
    assert info.estimated_time_s is None
