"""What the worst .gcode.3mf files an upload can bring cost the reader, in CPU seconds.

    .venv/bin/python bench/fileinfo_bounds.py

Writes each file into a temporary folder and reads it with `read_file_info` as the upload does
(default arguments), then with every plate asked for, and prints CPU time (`time.process_time`),
file size and outcome:

- shared data: 128 directory entries pointing at one deflate stream of 32 MB of newlines (each
  entry honest about its sizes; read naively, 4 GB to inflate);
- one long member: a plate G-code of 200 MB of newlines whose header states nothing (about 200 kB
  compressed; past the scan cap, so only its header is read);
- realistic long member: 40 MB of G1 moves with layer markers, header stating nothing (scanned);
- many headers: 128 plates, each with a 64 kB header of settings lines.

Prints figures; asserts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import random
import struct
import sys
import tempfile
import time
import zipfile
import zlib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from custom_components.print_farm.fileinfo import FileInfoError, read_file_info  # noqa: E402

MB = 1024 * 1024


def deflated(chunks: Callable[[], list[bytes]]) -> tuple[bytes, int, int]:
    """Raw deflate of the chunks, with their total size and CRC."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    out, size, crc = [], 0, 0
    for chunk in chunks():
        out.append(compressor.compress(chunk))
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)
    out.append(compressor.flush())
    return b"".join(out), size, crc


def archive(entries: list[tuple[str, int]], data: bytes, size: int, crc: int) -> bytes:
    """One local header and its data at offset 0; a directory entry (name, offset 0) per entry."""
    first = entries[0][0].encode()
    body = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(first), 0)
    body += first + data
    directory = b""
    for name, offset in entries:
        encoded = name.encode()
        directory += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        directory += encoded
    count = len(entries)
    return (
        body
        + directory
        + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    )


def shared_data(path: Path) -> None:
    data, size, crc = deflated(lambda: [b"\n" * MB] * 32)
    path.write_bytes(
        archive([(f"Metadata/plate_{index}.gcode", 0) for index in range(1, 129)], data, size, crc)
    )


def long_member(path: Path) -> None:
    data, size, crc = deflated(lambda: [b"\n" * MB] * 200)
    path.write_bytes(archive([("Metadata/plate_1.gcode", 0)], data, size, crc))


def realistic_member(path: Path) -> None:
    rng = random.Random(1)
    moves = b"".join(
        b"G1 X%.3f Y%.3f E%.5f\n" % (rng.uniform(0, 250), rng.uniform(0, 250), rng.uniform(0, 0.1))
        for _ in range(20_000)
    )
    layer = b"; CHANGE_LAYER\n; Z_HEIGHT: 0.2\n" + moves
    data, size, crc = deflated(lambda: [b"G28\n"] + [layer] * (40 * MB // len(layer)))
    path.write_bytes(archive([("Metadata/plate_1.gcode", 0)], data, size, crc))


def many_headers(path: Path) -> None:
    head = b"; some_setting_key = 0.2,0.3,0.4\n" * 2_000
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as file:
        for index in range(1, 129):
            file.writestr(f"Metadata/plate_{index}.gcode", head + b"G28\n")


def measure(path: Path, plates: range | None) -> str:
    started = time.process_time()
    try:
        info = read_file_info(path, plates=plates)
        outcome = f"read: {len(info.plates)} plates, layers {info.layer_count}"
    except FileInfoError as err:
        outcome = f"refused: {err}"
    return f"{time.process_time() - started:6.3f} s CPU  {outcome}"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name, build in (
            ("shared data", shared_data),
            ("one long member", long_member),
            ("realistic long member", realistic_member),
            ("many headers", many_headers),
        ):
            path = Path(folder) / f"{name.replace(' ', '_')}.gcode.3mf"
            build(path)
            print(f"{name} ({path.stat().st_size / 1024:.0f} kB)")
            print(f"  upload (first plate): {measure(path, None)}")
            print(f"  every plate asked:    {measure(path, range(1, 129))}")


if __name__ == "__main__":
    main()
