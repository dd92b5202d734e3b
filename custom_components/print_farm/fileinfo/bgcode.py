"""PrusaSlicer's binary G-code (.bgcode, libbgcode format version 1): its metadata blocks.

Layout (all integers little-endian):

- file header, 10 bytes: magic b"GCDE", version u32 (1), checksum type u16 (0 none, 1 CRC32);
- blocks, one after another, each:
  - header: type u16, compression u16, uncompressed size u32, and, when compression is not 0,
    compressed size u32;
  - parameters: for a thumbnail (type 5) format u16 (0 PNG, 1 JPG, 2 QOI), width u16, height u16;
    for every other type encoding u16 (0 = INI `key=value` lines for metadata; 0 none,
    1 MeatPack, 2 MeatPack with comments for G-code);
  - data (compressed size bytes, or uncompressed size when not compressed);
  - with CRC32 checksums, a u32 CRC of the header, parameters and data.

Block types: 0 file metadata (`Producer=PrusaSlicer 2.8.1`), 1 G-code, 2 slicer metadata (the
configuration), 3 printer metadata (estimated time, filament used...), 4 print metadata (the same
figures as the text G-code's footer), 5 thumbnail. Compression: 0 none, 1 deflate (zlib stream),
2 and 3 heatshrink (11,4 and 12,4). The metadata and thumbnails come before the G-code blocks;
reading stops at the first G-code block, whose MeatPack/heatshrink content is not decoded: the
format states no layer count, so a .bgcode's layer count is None.
"""

from __future__ import annotations

import struct
import zlib

from .model import FileInfo, FileInfoError, Thumbnail
from .textmeta import HeaderValues, summarize
from .thumbs import MAX_THUMBNAILS, keep_largest
from .values import name

MAGIC = b"GCDE"
FILE_HEADER = struct.Struct("<4sIH")
BLOCK_HEADER = struct.Struct("<HHI")
FILE_METADATA, GCODE, SLICER_METADATA, PRINTER_METADATA, PRINT_METADATA, THUMBNAIL = range(6)
MAX_METADATA_BYTES = 4 * 1024 * 1024
MAX_BLOCKS = 4096
_THUMBNAIL_FORMATS = {0: "png", 1: "jpg", 2: "qoi"}

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from io import FileIO


def read_bgcode(file: FileIO, size: int) -> FileInfo:
    """FileInfo for a binary G-code file of `size` bytes (metadata blocks only)."""
    file.seek(0)
    header = file.read(FILE_HEADER.size)
    if len(header) < FILE_HEADER.size:
        raise FileInfoError("truncated binary G-code (the file header is incomplete)")
    magic, version, checksum_type = FILE_HEADER.unpack(header)
    if magic != MAGIC:
        raise FileInfoError("not a binary G-code file")
    if version != 1:
        raise FileInfoError(
            f"binary G-code version {version} is not supported (only version 1)", unsupported=True
        )
    if checksum_type not in (0, 1):
        raise FileInfoError(
            f"binary G-code with an unknown checksum type ({checksum_type})", unsupported=True
        )
    crc_size = 4 * checksum_type

    values = HeaderValues()
    producer: str | None = None
    thumbnails: list[Thumbnail] = []
    position = FILE_HEADER.size
    for _ in range(MAX_BLOCKS):
        if position + BLOCK_HEADER.size > size:
            break
        file.seek(position)
        head = file.read(BLOCK_HEADER.size + 4)
        block_type, compression, uncompressed = BLOCK_HEADER.unpack_from(head)
        if block_type > THUMBNAIL or compression > 3:
            if position == FILE_HEADER.size:
                raise FileInfoError("damaged binary G-code (the first block is not a known block type)")
            break  # damaged from here on: keep what was read
        header_size = BLOCK_HEADER.size
        stored = uncompressed
        if compression:
            if len(head) < header_size + 4:
                break
            (stored,) = struct.unpack_from("<I", head, header_size)
            header_size += 4
        parameters_size = 6 if block_type == THUMBNAIL else 2
        data_start = position + header_size + parameters_size
        block_end = data_start + stored + crc_size
        if block_end > size:
            break  # truncated: the block claims more bytes than the file has
        if block_type == GCODE:
            break  # metadata and thumbnails come first; nothing else of interest follows
        file.seek(position + header_size)
        parameters = file.read(parameters_size)
        if block_type == THUMBNAIL:
            image_format, width, height = struct.unpack("<HHH", parameters)
            if image_format in _THUMBNAIL_FORMATS and width and height and len(thumbnails) < MAX_THUMBNAILS:
                thumbnails.append(
                    Thumbnail(
                        width=width,
                        height=height,
                        format=_THUMBNAIL_FORMATS[image_format],
                        size=uncompressed,
                        offset=data_start,
                        length=stored,
                        encoding={0: "raw", 1: "zlib"}.get(compression, "heatshrink"),
                    )
                )
        else:
            text = _metadata(
                file, position, data_start, stored, uncompressed, compression, crc_size, parameters
            )
            if text is not None:
                if block_type == FILE_METADATA:
                    file_values = HeaderValues()
                    file_values.feed_ini(text)
                    producer = file_values.get("Producer")
                else:
                    values.feed_ini(text)
        position = block_end

    slicer, version = _producer(producer)
    summary = summarize(values, slicer)
    return FileInfo(
        file_format="bgcode",
        file_size=size,
        slicer=slicer,
        slicer_version=version,
        estimated_time_s=summary.estimated_time_s,
        layer_count=summary.layer_count,
        layer_count_source="stated" if summary.layer_count is not None else None,
        filament_g=summary.filament_g,
        filament_mm=summary.filament_mm,
        filament_per_tool=summary.per_tool,
        layer_height_mm=summary.layer_height_mm,
        first_layer_height_mm=summary.first_layer_height_mm,
        object_height_mm=summary.object_height_mm,
        nozzle_diameter_mm=summary.nozzle_diameter_mm,
        materials=summary.materials,
        colors=summary.colors,
        printer_model=summary.printer_model,
        thumbnails=keep_largest(file, thumbnails),
    )


def _metadata(
    file: FileIO,
    position: int,
    data_start: int,
    stored: int,
    uncompressed: int,
    compression: int,
    crc_size: int,
    parameters: bytes,
) -> bytes | None:
    """A metadata block's `key=value` text, or None (too big, bad checksum, unknown encoding)."""
    if parameters != b"\x00\x00" or stored > MAX_METADATA_BYTES or uncompressed > MAX_METADATA_BYTES:
        return None
    if compression not in (0, 1):
        return None  # heatshrink-compressed metadata: PrusaSlicer does not write it
    file.seek(position)
    block = file.read(data_start - position + stored + crc_size)
    if crc_size:
        (expected,) = struct.unpack_from("<I", block, len(block) - 4)
        if zlib.crc32(block[:-4]) != expected:
            return None
    data = block[data_start - position : data_start - position + stored]
    if compression == 1:
        try:
            inflater = zlib.decompressobj()
            data = inflater.decompress(data, uncompressed + 1)
        except zlib.error:
            return None
        if len(data) != uncompressed:
            return None
    return data


def _producer(producer: str | None) -> tuple[str | None, str | None]:
    """("PrusaSlicer", "2.8.1") from the file metadata's "PrusaSlicer 2.8.1"."""
    if not producer:
        return None, None
    parts = producer.strip().rsplit(" ", 1)
    if len(parts) == 2 and parts[1][:1].isdigit():
        return name(parts[0]), name(parts[1].split("+", 1)[0])
    return name(producer), None
