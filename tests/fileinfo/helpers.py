"""Builders for the tests' own files: PNG images, ZIP archives written by hand, binary G-code."""

from __future__ import annotations

from pathlib import Path
import struct
import zlib

SAMPLES = Path(__file__).parent / "samples"


def png(width: int, height: int, rgb: tuple[int, int, int] = (255, 128, 0)) -> bytes:
    """A real, solid-colour PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def deflate_raw(data: bytes) -> bytes:
    """Raw deflate, as ZIP stores it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def raw_zip(
    entries: list[tuple[str, bytes]],
    *,
    deflate: bool = True,
    claimed_sizes: dict[str, int] | None = None,
) -> bytes:
    """A ZIP archive written by hand, so that tests can make it lie (`claimed_sizes`: stated sizes).

    Layout: for each entry a local header, the name and the data; then the central directory (one
    entry each) and the end record. No data descriptors, no ZIP64.
    """
    claimed_sizes = claimed_sizes or {}
    out = bytearray()
    directory = bytearray()
    for name, data in entries:
        encoded = name.encode()
        method = 8 if deflate else 0
        stored = deflate_raw(data) if deflate else data
        size = claimed_sizes.get(name, len(data))
        crc = zlib.crc32(data)
        offset = len(out)
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0x800, method, 0, 0, crc, len(stored), size, len(encoded), 0
        )
        out += encoded + stored
        directory += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0x800,
            method,
            0,
            0,
            crc,
            len(stored),
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
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(directory), len(out), 0
    )
    return bytes(out + directory + end)


def bgcode_block(
    block_type: int, data: bytes, parameters: bytes = b"\x00\x00", *, deflate: bool = False, crc: bool = True
) -> bytes:
    """One binary G-code block: header (type, compression, sizes), parameters, data, CRC32."""
    stored = zlib.compress(data) if deflate else data
    header = struct.pack("<HHI", block_type, 1 if deflate else 0, len(data))
    if deflate:
        header += struct.pack("<I", len(stored))
    body = header + parameters + stored
    return body + struct.pack("<I", zlib.crc32(body)) if crc else body


PRINTER_METADATA = """printer_model=MK4S
filament_type=PETG
nozzle_diameter=0.6
layer_height=0.25
max_layer_z=12.50
extruder_colour=""
filament used [mm]=1500.25
filament used [g]=4.62
filament used [cm3]=3.61
filament cost=0.12
total filament used for wipe tower [g]=0.00
estimated printing time (normal mode)=1h 15m 30s
estimated printing time (silent mode)=1h 20m 0s
"""

SLICER_METADATA = """filament_colour=#1E90FF
filament_diameter=1.75
filament_type=PETG
first_layer_height=0.3
layer_height=0.25
nozzle_diameter=0.6
printer_model=MK4S
"""


def bgcode(
    *,
    printer_metadata: str = PRINTER_METADATA,
    slicer_metadata: str = SLICER_METADATA,
    thumbnails: tuple[tuple[int, int], ...] = ((16, 16), (48, 32)),
    crc: bool = True,
) -> bytes:
    """A small binary G-code file, laid out as PrusaSlicer writes it.

    File header (b"GCDE", version 1, checksum type 1 = CRC32); file metadata (uncompressed,
    `Producer=`); printer metadata (deflate); one thumbnail block per (width, height): PNG, format 0,
    uncompressed; print metadata (deflate); slicer metadata (deflate); one G-code block (encoding 0,
    uncompressed: the reader never decodes G-code blocks).
    """
    out = b"GCDE" + struct.pack("<IH", 1, 1 if crc else 0)
    out += bgcode_block(0, b"Producer=PrusaSlicer 2.9.0+linux-x64\n", crc=crc)
    out += bgcode_block(3, printer_metadata.encode(), deflate=True, crc=crc)
    for width, height in thumbnails:
        out += bgcode_block(5, png(width, height), struct.pack("<HHH", 0, width, height), crc=crc)
    out += bgcode_block(
        4,
        b"total filament used [g]=4.62\nestimated printing time (normal mode)=1h 15m 30s\n",
        deflate=True,
        crc=crc,
    )
    out += bgcode_block(2, slicer_metadata.encode(), deflate=True, crc=crc)
    out += bgcode_block(1, b"G28\nG1 X10 Y10 E1\n", crc=crc)
    return out
