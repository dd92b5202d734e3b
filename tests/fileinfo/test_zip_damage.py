"""Damaged and unusual ZIP archives as .gcode.3mf: ZIP64 read, damage refused with the reason, never a crash."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import struct
import zlib

import pytest

from custom_components.print_farm.fileinfo import FileInfo, FileInfoError, read_file_info

from .helpers import deflate_raw
from .test_threemf import PLATE_1_GCODE

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")
NAME = "Metadata/plate_1.gcode"
GCODE = PLATE_1_GCODE.encode()


def archive(
    *,
    method: int = 8,
    flags: int = 0x800,
    stated_size: int | None = None,
    local_signature: bytes = b"PK\x03\x04",
    local_extra: int = 0,
    zip64: bool = False,
    zip64_damage: str | None = None,
) -> bytes:
    """A one-plate .gcode.3mf written by hand, so that each field can be made to lie.

    `zip64`: the directory entry's sizes and offset, and the end record's counts, are in their
    ZIP64 forms (0xFFFFFFFF / 0xFFFF pointing at the extra field and the ZIP64 end record), as
    tools write them for big archives. `zip64_damage`: "no locator", "locator beyond the file" or
    "bad record" damages that ZIP64 end.
    """
    stored = deflate_raw(GCODE) if method == 8 else GCODE
    size = len(GCODE) if stated_size is None else stated_size
    crc = zlib.crc32(GCODE)
    name = NAME.encode()
    body = _LOCAL.pack(
        local_signature, 20, flags, method, 0, 0, crc, len(stored), size, len(name), local_extra
    )
    body += name + stored
    if zip64:
        # Another extra field first (extended timestamp): the ZIP64 one is found after it.
        extra = struct.pack("<HHBL", 0x5455, 5, 1, 0) + struct.pack("<HH3Q", 1, 24, size, len(stored), 0)
        sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    else:
        extra, sizes = b"", (len(stored), size, 0)
    directory = _CENTRAL.pack(
        b"PK\x01\x02", 45, 45, flags, method, 0, 0, crc, sizes[0], sizes[1], len(name), len(extra), 0, 0, 0, 0,
        sizes[2],
    ) + name + extra  # fmt: skip
    if not zip64:
        return body + directory + _END.pack(b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(body), 0)
    record_offset = len(body) + len(directory)
    record = _END64.pack(
        b"PK\x06\x06" if zip64_damage != "bad record" else b"PK\x06\x00",
        44, 45, 45, 0, 0, 1, 1, len(directory), len(body),
    )  # fmt: skip
    if zip64_damage == "locator beyond the file":
        record_offset += 1 << 20
    locator = _END64_LOCATOR.pack(b"PK\x06\x07", 0, record_offset, 1)
    if zip64_damage == "no locator":
        locator = b""
    end = _END.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + directory + record + locator + end


def read(tmp_path: Path, data: bytes) -> FileInfo:
    path = tmp_path / "plate.gcode.3mf"
    path.write_bytes(data)
    return read_file_info(path)


def refusal(tmp_path: Path, data: bytes) -> FileInfoError:
    with pytest.raises(FileInfoError) as raised:
        read(tmp_path, data)
    return raised.value


@pytest.mark.parametrize("method", [8, 0], ids=["deflated", "stored"])
def test_a_zip64_archive_is_read_like_any_other(tmp_path: Path, method: int) -> None:
    plain = read(tmp_path, archive(method=method))
    info = read(tmp_path, archive(method=method, zip64=True))
    assert replace(info, file_size=plain.file_size) == plain  # the same, but for the longer directory
    assert (info.estimated_time_s, info.layer_count, info.filament_g) == (3600, 100, 10.5)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("no locator", "damaged ZIP archive (ZIP64 locator missing)"),
        ("locator beyond the file", "damaged ZIP archive (ZIP64 locator missing)"),
        ("bad record", "damaged ZIP archive (ZIP64 end record missing)"),
    ],
)
def test_a_damaged_zip64_end_is_refused(tmp_path: Path, damage: str, reason: str) -> None:
    error = refusal(tmp_path, archive(zip64=True, zip64_damage=damage))
    assert str(error) == reason
    assert not error.unsupported  # refused (400 on upload), not kept without metadata


def test_a_zip64_end_record_in_a_file_too_short_for_its_locator_is_refused(tmp_path: Path) -> None:
    """Only the end record, saying "see ZIP64": there is no room before it for a locator."""
    end = _END.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    assert str(refusal(tmp_path, b"PK\x03\x04" + end)) == "damaged ZIP archive (ZIP64 locator missing)"


def test_a_member_without_its_local_header_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, archive(local_signature=b"PK\x00\x00"))  # still "PK": read as a ZIP
    assert str(error) == f"damaged ZIP archive (no local header for {NAME})"


def test_a_member_whose_local_header_runs_past_the_file_is_refused(tmp_path: Path) -> None:
    """The local header states a 64 kB extra field the file does not have: its data would be cut off."""
    error = refusal(tmp_path, archive(local_extra=0xFFFF))
    assert str(error) == f"damaged ZIP archive ({NAME} is cut off)"


def test_a_stored_member_whose_sizes_disagree_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, archive(method=0, stated_size=len(GCODE) + 1))
    assert str(error) == f"damaged ZIP archive ({NAME}: stored sizes disagree)"
    assert not error.unsupported


@pytest.mark.parametrize(
    ("method", "flags"), [(8, 0x801), (12, 0x800), (14, 0x800)], ids=["encrypted", "bzip2", "lzma"]
)
def test_a_plate_it_cannot_decode_is_reported_as_unsupported(tmp_path: Path, method: int, flags: int) -> None:
    """Not damage: the file is a print file this reader cannot open (kept without metadata on upload)."""
    error = refusal(tmp_path, archive(method=method, flags=flags))
    assert str(error) == f"{NAME} is encrypted or compressed with an unsupported method"
    assert error.unsupported
