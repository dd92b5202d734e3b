"""The work one .gcode.3mf may cost is bounded: shared data refused, inflated bytes capped, plates read on request."""

from __future__ import annotations

from pathlib import Path
import struct
import time
import zlib

import pytest

from custom_components.print_farm.fileinfo import FileInfoError, read_file_info
from custom_components.print_farm.fileinfo.threemf import MAX_MEMBER_SCAN
from custom_components.print_farm.fileinfo.zipread import Budget, read_directory, stream

from .helpers import raw_zip
from .test_threemf import PLATE_1_GCODE, build

_LOCAL = "<4s5H3L2H"
_CENTRAL = "<4s6H3L5H2L"
_END = "<4s4H2LH"


def _newlines(megabytes: int) -> bytes:
    """Raw deflate of `megabytes` MB of newlines (about 1 kB per MB): nothing a header states."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = b"\n" * (1024 * 1024)
    return b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()


def _shared_data_bomb(plates: int, megabytes: int) -> bytes:
    """One local header and one deflate stream; `plates` directory entries all pointing at it.

    Each entry states honest sizes (the ratio of newlines is within what deflate can do), so only
    the overlap gives the trick away: read naively, every plate inflates the same stream again.
    """
    data = _newlines(megabytes)
    size = megabytes * 1024 * 1024
    crc = zlib.crc32(b"\n" * size)
    first = b"Metadata/plate_1.gcode"
    body = struct.pack(_LOCAL, b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(first), 0)
    body += first + data
    directory = b""
    for index in range(1, plates + 1):
        name = f"Metadata/plate_{index}.gcode".encode()
        directory += struct.pack(
            _CENTRAL, b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0, 0, 0, 0, 0, 0
        )
        directory += name
    end = struct.pack(_END, b"PK\x05\x06", 0, 0, plates, plates, len(directory), len(body), 0)
    return body + directory + end


@pytest.mark.parametrize("plates", [None, range(1, 129)], ids=["first plate", "every plate"])
def test_shared_data_refused_at_once(tmp_path: Path, plates: range | None) -> None:
    """128 plates sharing one 32 MB stream (4 GB to inflate, read naively) are refused before any inflating."""
    path = tmp_path / "bomb.gcode.3mf"
    path.write_bytes(_shared_data_bomb(128, 32))
    assert path.stat().st_size < 64 * 1024
    started = time.process_time()
    with pytest.raises(FileInfoError) as raised:
        read_file_info(path, plates=plates)
    cpu = time.process_time() - started
    assert "overlap" in str(raised.value)
    assert "ZIP bomb" in str(raised.value)
    assert not raised.value.unsupported  # a refusal (400 on upload), not a file kept without metadata
    assert cpu < 1.0, f"{cpu:.2f} s of CPU"


def test_entry_beyond_the_archive_data_refused(tmp_path: Path) -> None:
    """An entry whose compressed data would run into the central directory is refused."""
    good = raw_zip([("Metadata/plate_1.gcode", PLATE_1_GCODE.encode())])
    central = good.index(b"PK\x01\x02")
    size_field = central + 20  # compressed size in the central directory entry
    stated = struct.unpack_from("<L", good, size_field)[0]
    broken = good[:size_field] + struct.pack("<L", stated + 64) + good[size_field + 4 :]
    path = tmp_path / "beyond.gcode.3mf"
    path.write_bytes(broken)
    with pytest.raises(FileInfoError, match="beyond the archive's data"):
        read_file_info(path)


def test_archive_budget_stops_inflating(tmp_path: Path) -> None:
    """All the members of one archive together inflate at most the budget, whatever they state."""
    path = tmp_path / "x.gcode.3mf"
    path.write_bytes(raw_zip([("Metadata/plate_1.gcode", b"\n" * 3_000_000)]))
    with path.open("rb", buffering=0) as file:
        size = path.stat().st_size
        (member,) = read_directory(file, size)
        budget = Budget(1_000_000)
        with pytest.raises(FileInfoError, match="inflates to more than"):
            for _ in stream(file, size, member, member.size, budget):
                pass
        assert budget.remaining < 1024 * 1024  # stopped within one chunk of the budget


def test_member_over_the_scan_cap_not_scanned(tmp_path: Path) -> None:
    """A plate G-code whose header states nothing and that inflates past the scan cap keeps its header figures only."""
    megabytes = MAX_MEMBER_SCAN // (1024 * 1024) + 16
    tail = b"; CHANGE_LAYER\n; estimated printing time (normal mode) = 30m 0s\n"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = b"\n" * (1024 * 1024)
    data = b"".join(compressor.compress(chunk) for _ in range(megabytes))
    data += compressor.compress(tail) + compressor.flush()
    content_size = megabytes * 1024 * 1024 + len(tail)
    crc = zlib.crc32(tail, zlib.crc32(b"\n" * (megabytes * 1024 * 1024)))
    name = b"Metadata/plate_1.gcode"
    body = struct.pack(_LOCAL, b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), content_size, len(name), 0)
    body += name + data
    directory = struct.pack(
        _CENTRAL, b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), content_size, len(name), 0, 0, 0, 0, 0, 0
    )
    directory += name
    end = struct.pack(_END, b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(body), 0)
    path = tmp_path / "long.gcode.3mf"
    path.write_bytes(body + directory + end)
    started = time.process_time()
    info = read_file_info(path)
    cpu = time.process_time() - started
    assert (info.estimated_time_s, info.layer_count) == (None, None)  # the last lines were never read
    assert cpu < 1.0, f"{cpu:.2f} s of CPU"


def test_only_the_plates_asked_for_are_read(tmp_path: Path) -> None:
    """By default only the first plate's G-code is read; the others are described by slice_info.config."""
    path = build(tmp_path / "farm.gcode.3mf")
    first_only = read_file_info(path)
    assert [plate.index for plate in first_only.plates] == [1, 2, 3]
    second = first_only.plates[1]
    assert second.gcode_member == "Metadata/plate_2.gcode"
    assert (second.estimated_time_s, second.layer_count) == (None, None)  # only in its G-code
    assert (second.weight_g, second.filament_mm) == (5.25, 1700.0)  # from slice_info.config
    assert (first_only.estimated_time_s, first_only.layer_count) == (3600, 100)

    # Asking for plate 2 reads its G-code, and the file's own figures are then plate 2's.
    asked = read_file_info(path, plates=(2,))
    assert (asked.plates[1].estimated_time_s, asked.plates[1].layer_count) == (1800, 50)
    assert (asked.estimated_time_s, asked.layer_count, asked.layer_count_source) == (1800, 50, "counted")
    assert asked.filament_g == 5.25
    assert asked.plates[0].layer_count == 100  # plate 1 from slice_info.config's layer ranges
