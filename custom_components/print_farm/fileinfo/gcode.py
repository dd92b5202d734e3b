"""Plain-text G-code: the header and footer comments, thumbnails, and layer markers when needed.

Only the first and last 512 kB are read and parsed (slicers write their figures there); the rest
of the file is read, 1 MB at a time into one buffer, only when the file does not state its layer
count, to count layer-change markers. Memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import re

from .model import FileInfo, FileInfoError, Thumbnail
from .scan import MarkerCounter, count_in_file, layers_from_counts
from .textmeta import HeaderValues, detect_slicer, layer_markers, summarize
from .thumbs import MAX_THUMBNAILS, keep_largest

HEAD = 512 * 1024
TAIL = 512 * 1024

_THUMBNAIL = re.compile(
    rb"\n;[ \t]*(thumbnail(?:_(PNG|JPG|QOI))?)[ \t]+begin[ \t]+(\d{1,5})x(\d{1,5})(?:[ \t]+\d{1,20})?[ \t]*\r?(?=\n)"
)
_FORMATS = {None: "png", b"PNG": "png", b"JPG": "jpg", b"QOI": "qoi"}
_COMMAND = rb"\n[ \t]*[GMT]\d"  # compiled on first use
# Bytes that plain text does not contain (NUL and the control characters other than whitespace).
_NOT_TEXT = bytes([*range(0, 9), *range(14, 32), 127])
_SAMPLE = 64 * 1024

NOT_PRINT_FILE = "not a G-code, bgcode or 3MF file"

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from io import FileIO


def check_text(head: bytes, slicer: str | None) -> None:
    """Raise FileInfoError unless the start of the file looks like G-code text."""
    sample = head[:_SAMPLE]
    binary = len(sample) - len(sample.translate(None, _NOT_TEXT))
    if b"\x00" in sample or binary > len(sample) // 100:
        raise FileInfoError(f"{NOT_PRINT_FILE} (binary data)")
    if slicer is None and not re.search(_COMMAND, b"\n" + sample):
        raise FileInfoError(f"{NOT_PRINT_FILE} (no G-code commands and no slicer header)")


def read_header(head: bytes, tail: bytes | None) -> tuple[str | None, str | None, HeaderValues]:
    """The slicer, its version and the header values from a G-code's head (and tail, if apart)."""
    slicer, version = detect_slicer(head)
    values = HeaderValues()
    simplify3d = slicer == "Simplify3D"
    values.feed_gcode(head, settings=simplify3d)
    if tail is not None:
        values.feed_gcode(tail, settings=simplify3d)
    return slicer, version, values


def find_thumbnails(regions: list[tuple[int, bytes]]) -> list[Thumbnail]:
    """The thumbnail blocks (`; thumbnail begin WxH N` ... `; thumbnail end`) in parts of a file.

    `regions` are (file offset, bytes) pairs. Nothing is decoded here: each thumbnail records where
    its base64 block is; a block cut off by the end of a region has no length (cannot be loaded).
    The size a block's first line announces is not trusted (it may claim 4 GB).
    """
    found: list[Thumbnail] = []
    for offset, data in regions:
        if b"; thumbnail" not in data:
            continue
        for match in _THUMBNAIL.finditer(b"\n" + data):
            if len(found) == MAX_THUMBNAILS:
                return found
            width, height = int(match.group(3)), int(match.group(4))
            if not (0 < width <= 65535 and 0 < height <= 65535):
                continue
            start = match.end()  # in `data` (one byte shorter): the line after the begin line
            end = data.find(b"\n; " + match.group(1) + b" end", start - 1)
            found.append(
                Thumbnail(
                    width=width,
                    height=height,
                    format=_FORMATS.get(match.group(2).upper() if match.group(2) else None, "png"),
                    size=None,
                    offset=offset + start,
                    length=end - start if end >= start else None,
                    encoding="gcode-base64",
                )
            )
    return found


def _read(file: FileIO, offset: int, size: int) -> bytes:
    file.seek(offset)
    data = file.read(size)
    if len(data) != size:
        raise FileInfoError("the file changed or was cut while being read")
    return data


def read_gcode(file: FileIO, size: int, count_layers: bool = True) -> FileInfo:
    """FileInfo for a plain-text G-code file of `size` bytes."""
    head = _read(file, 0, min(size, HEAD))
    whole: bytes | None = None
    if size <= HEAD + TAIL:
        whole = head + _read(file, len(head), size - len(head)) if size > len(head) else head
        regions = [(0, whole)]
        tail = None
    else:
        head = head[: head.rfind(b"\n") + 1] or head
        raw_tail = _read(file, size - TAIL, TAIL)
        cut = raw_tail.find(b"\n") + 1
        tail = raw_tail[cut:]
        regions = [(0, head), (size - TAIL + cut, tail)]

    slicer, version, values = read_header(whole if whole is not None else head, tail)
    check_text(head, slicer)
    summary = summarize(values, slicer)

    layer_count, source = summary.layer_count, "stated" if summary.layer_count is not None else None
    if layer_count is None and count_layers:
        groups = layer_markers(slicer)
        if whole is None:
            # A slicer writes its markers from the first layer to the last: scan the file for the
            # kind that the head or tail shows (one pass instead of one per kind), else for all.
            shown = [group for group in groups if group[0] in head or (tail is not None and group[0] in tail)]
            groups = tuple(shown[:1]) or groups
        markers = tuple(dict.fromkeys(marker for group in groups for marker in group))
        if whole is not None:
            counter = MarkerCounter(markers)
            counter.feed(whole)
            counts = counter.counts
        else:
            counts = count_in_file(file, size, markers)
        layer_count = layers_from_counts(groups, dict(zip(markers, counts, strict=True)))
        source = "counted" if layer_count is not None else None

    return FileInfo(
        file_format="gcode",
        file_size=size,
        slicer=slicer,
        slicer_version=version,
        estimated_time_s=summary.estimated_time_s,
        layer_count=layer_count,
        layer_count_source=source,
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
        thumbnails=keep_largest(file, find_thumbnails(regions)),
    )
