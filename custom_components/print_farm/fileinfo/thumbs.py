"""Thumbnails: which ones keep their bytes, loading them from where they are stored, checking them."""

from __future__ import annotations

import binascii
from dataclasses import replace
import os
import zlib

from .model import FileInfoError, Thumbnail

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from io import FileIO
    from pathlib import Path

MAX_THUMBNAIL_BYTES = 512 * 1024
MAX_THUMBNAILS = 16
KEPT = 2
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "qoi": b"qoif"}
# Base64 text for MAX_THUMBNAIL_BYTES, with "; " and a newline per 78 characters.
_MAX_BASE64 = MAX_THUMBNAIL_BYTES * 4 // 3 * 81 // 78 + 1024
_MAX_COMPRESSED = 4 * MAX_THUMBNAIL_BYTES


def is_image(image_format: str, data: bytes) -> bool:
    """Whether `data` starts as an image of that format should, and is not over the size cap."""
    magic = _MAGIC.get(image_format)
    return magic is not None and data.startswith(magic) and len(data) <= MAX_THUMBNAIL_BYTES


def png_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (the first 24 bytes), if they are sane."""
    if len(data) < 24 or not data.startswith(_MAGIC["png"]) or data[12:16] != b"IHDR":
        return None
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    if not (0 < width <= 65535 and 0 < height <= 65535):
        return None
    return width, height


def load_stored(file: FileIO, thumbnail: Thumbnail) -> bytes | None:
    """The image's bytes from where the file stores them, or None (too big, damaged, unknown)."""
    offset, length = thumbnail.offset, thumbnail.length
    if offset is None or length is None or offset < 0 or length <= 0:
        return None
    encoding = thumbnail.encoding
    limit = {"gcode-base64": _MAX_BASE64, "raw": MAX_THUMBNAIL_BYTES}.get(encoding, _MAX_COMPRESSED)
    if length > limit:
        return None
    file.seek(offset)
    stored = file.read(length)
    if len(stored) != length:
        return None
    data: bytes
    try:
        if encoding == "gcode-base64":
            data = binascii.a2b_base64(stored)
        elif encoding == "raw":
            data = stored
        elif encoding in ("zlib", "deflate"):
            inflater = zlib.decompressobj(zlib.MAX_WBITS if encoding == "zlib" else -zlib.MAX_WBITS)
            data = inflater.decompress(stored, MAX_THUMBNAIL_BYTES + 1)
        else:
            return None
    except (binascii.Error, zlib.error):
        return None
    return data if is_image(thumbnail.format, data) else None


def keep_largest(file: FileIO, thumbnails: list[Thumbnail]) -> list[Thumbnail]:
    """The thumbnails, with the bytes of the two largest (by pixels, then stored size) loaded.

    Only those two are ever decoded, so memory stays bounded whatever the file holds; one that
    fails to load (damaged, over the cap, not the format it claims) gives its place to the next.
    """
    result = list(thumbnails)
    order = sorted(
        range(len(thumbnails)),
        key=lambda index: (
            -thumbnails[index].width * thumbnails[index].height,
            -(thumbnails[index].length or 0),
            index,
        ),
    )
    kept = 0
    for index in order:
        if kept == KEPT:
            break
        data = load_stored(file, thumbnails[index])
        if data is not None:
            result[index] = replace(thumbnails[index], data=data, size=len(data))
            kept += 1
    return result


def read_thumbnail(path: Path | str, thumbnail: Thumbnail) -> bytes:
    """The image bytes of any thumbnail `read_file_info` listed for that file (blocking).

    Raises FileInfoError when they cannot be read (file changed, over the 512 kB cap, damaged).
    """
    if thumbnail.data is not None:
        return thumbnail.data
    try:
        with open(os.fspath(path), "rb", buffering=0) as file:
            data = load_stored(file, thumbnail)
    except OSError as err:
        raise FileInfoError(f"cannot read the file: {err.strerror or err}") from err
    if data is None:
        raise FileInfoError(
            f"the {thumbnail.width}x{thumbnail.height} {thumbnail.format} thumbnail cannot be read"
        )
    return data
