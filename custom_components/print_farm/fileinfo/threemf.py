"""Sliced 3MF (.gcode.3mf, Bambu Studio / OrcaSlicer): slice_info.config, plate G-code headers, PNGs.

What is read, per plate N:

- `Metadata/slice_info.config` (at most 1 MB, no DTD): each `<plate>`'s `index`, `prediction`
  (seconds), `weight` (grams), `printer_model_id`, `nozzle_diameters`, and its `<filament id type
  color used_m used_g>` slots;
- `Metadata/plate_N.gcode`, for the plates asked for only (by default the first): the first 64 kB
  (Bambu Studio's header block states the layer count, filament length and weight, and its
  configuration block the printer, heights and nozzle); the whole member is streamed (keeping only
  the last 64 kB, counting layer markers on the way) only when the header leaves the time, the layer
  count or the filament unstated, and only when it fits in MAX_MEMBER_SCAN and what is left of the
  archive's budget (`zipread.MAX_INFLATED`);
- `Metadata/plate_N.png`: its size from the PNG header; its bytes only if it is one of the file's two
  largest thumbnails.

Every plate is listed; a plate whose G-code is not read is described by slice_info.config alone.
The top-level figures are the first plate read's (the lowest index asked for): one job prints one
plate. What one file may cost is thereby bounded: 128 plate headers of 64 kB each cost about a
second of parsing, one costs a few milliseconds.
"""

from __future__ import annotations

from dataclasses import replace
import re

from .gcode import NOT_PRINT_FILE, read_header
from .model import FileInfo, FileInfoError, PlateInfo, Thumbnail, ToolFilament
from .scan import MarkerCounter, layers_from_counts
from .textmeta import BAMBU_MODEL_IDS, Summary, layer_markers, summarize, unique
from .thumbs import keep_largest, png_dimensions
from .values import (
    MAX_GRAMS,
    MAX_LAYERS,
    MAX_MM,
    MAX_NOZZLE_MM,
    color,
    count,
    duration_s,
    name,
    number,
    positive,
)
from .zipread import Budget, Member, data_offset, read_directory, read_member, stream

SLICE_INFO = "Metadata/slice_info.config"
_PLATE_GCODE = re.compile(r"Metadata/plate_(\d{1,4})\.gcode")
_PLATE_PNG = re.compile(r"Metadata/plate_(\d{1,4})\.png")
MAX_SLICE_INFO = 1024 * 1024
MAX_PLATES = 128
GCODE_HEAD = 64 * 1024
GCODE_TAIL = 64 * 1024
# A plate G-code longer than this (inflated) is not scanned for its layers: the header is all there is.
MAX_MEMBER_SCAN = 48 * 1024 * 1024

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from collections.abc import Collection
    from io import FileIO

    from .textmeta import HeaderValues


class _XmlPlate:
    """A `<plate>` of slice_info.config."""

    __slots__ = ("filaments", "layers", "model_id", "nozzle", "prediction", "weight")

    def __init__(self) -> None:
        self.prediction: int | None = None
        self.weight: float | None = None
        self.model_id: str | None = None
        self.nozzle: float | None = None
        self.layers: int | None = None
        self.filaments: list[ToolFilament] = []


class _PlateGcode:
    """What a plate's G-code says."""

    __slots__ = ("layer_count", "layer_source", "slicer", "summary", "values", "version")

    def __init__(self, slicer: str | None, version: str | None, values: HeaderValues) -> None:
        self.slicer = slicer
        self.version = version
        self.values = values
        self.summary = summarize(values, slicer)
        self.layer_count = self.summary.layer_count
        self.layer_source = "stated" if self.layer_count is not None else None


def read_3mf(
    file: FileIO, size: int, count_layers: bool = True, plates: Collection[int] | None = None
) -> FileInfo:
    """FileInfo for a sliced 3MF of `size` bytes, reading the G-code of `plates` (None: the first)."""
    budget = Budget()
    members: dict[str, Member] = {}
    for member in read_directory(file, size):
        members.setdefault(member.name, member)
    gcodes = _numbered(members, _PLATE_GCODE)
    pngs = _numbered(members, _PLATE_PNG)
    info_member = members.get(SLICE_INFO)
    if info_member is None and not gcodes:
        if "3D/3dmodel.model" in members or "[Content_Types].xml" in members:
            raise FileInfoError("a 3MF project without sliced plates (slice it and export a .gcode.3mf)")
        raise FileInfoError(f"{NOT_PRINT_FILE} (a ZIP archive without 3MF content)")
    xml_plates: dict[int, _XmlPlate] = {}
    client_version: str | None = None
    if info_member is not None:
        data = read_member(file, size, info_member, MAX_SLICE_INFO, budget)
        if data is not None:
            xml_plates, client_version = _slice_info(data)
    indexes = sorted(set(xml_plates) | set(gcodes))[:MAX_PLATES]
    if not indexes:
        raise FileInfoError("a 3MF without sliced plates (slice_info.config lists none)")
    read = [index for index in indexes if index in (indexes[:1] if plates is None else plates)]
    first = read[0] if read else indexes[0]  # the plate whose figures are the file's

    # Headers and images first, and long scans last: a scan only takes what the budget has left.
    headers = {index: _plate_head(file, size, gcodes[index], budget) for index in read if index in gcodes}
    images = {index: _png(file, size, pngs[index], budget) for index in indexes if index in pngs}
    for index, header in headers.items():
        _plate_scan(file, size, gcodes[index], header, count_layers, budget)
    listed: list[PlateInfo] = []
    thumbnails = [thumbnail for thumbnail in images.values() if thumbnail is not None]
    for index in indexes:
        xml = xml_plates.get(index) or _XmlPlate()
        listed.append(_plate(index, xml, headers.get(index), images.get(index), gcodes.get(index)))

    # Load the bytes of the two largest plate images, and give the plates their loaded thumbnails.
    loaded = keep_largest(file, thumbnails)
    position = 0
    for number_in_list, plate in enumerate(listed):
        if plate.thumbnail is not None:
            listed[number_in_list] = replace(plate, thumbnail=loaded[position])
            position += 1
    return _top_level(size, listed, first, headers, xml_plates, client_version, loaded)


def _numbered(members: dict[str, Member], pattern: re.Pattern[str]) -> dict[int, Member]:
    found: dict[int, Member] = {}
    for member_name, member in members.items():
        match = pattern.fullmatch(member_name)
        if match and int(match.group(1)) > 0:
            found.setdefault(int(match.group(1)), member)
    return found


def _slice_info(data: bytes) -> tuple[dict[int, _XmlPlate], str | None]:
    """The plates of slice_info.config, and the slicer version it names."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return {}, None  # never expand entities from an archive
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return {}, None
    version = None
    for item in root.iter("header_item"):
        if item.get("key") == "X-BBL-Client-Version":
            version = name(item.get("value"))
    plates: dict[int, _XmlPlate] = {}
    for element in root.iter("plate"):
        metadata = {item.get("key"): item.get("value") for item in element.iter("metadata")}
        index = count(metadata.get("index"), 10_000)
        if index is None or index in plates or len(plates) >= MAX_PLATES:
            continue
        plate = _XmlPlate()
        plate.prediction = duration_s(metadata.get("prediction"))
        plate.weight = number(metadata.get("weight"), MAX_GRAMS)
        plate.model_id = name(metadata.get("printer_model_id"))
        plate.nozzle = positive((metadata.get("nozzle_diameters") or "").split(",")[0], MAX_NOZZLE_MM)
        for item in element.iter("filament"):
            slot = count(item.get("id"), 256)
            if slot is None or len(plate.filaments) >= 64:
                continue
            used_m = number(item.get("used_m"), MAX_MM / 1000)
            plate.filaments.append(
                ToolFilament(
                    tool=slot - 1,
                    grams=number(item.get("used_g"), MAX_GRAMS),
                    mm=round(used_m * 1000, 4) if used_m is not None else None,
                    material=name(item.get("type")),
                    color=color(item.get("color")),
                )
            )
        ends = [
            int(part)
            for item in element.iter("layer_filament_list")
            for part in re.findall(r"\d{1,7}", item.get("layer_ranges") or "")
        ]
        if ends and max(ends) + 1 <= MAX_LAYERS:
            plate.layers = max(ends) + 1  # layer_ranges="0 657": layers 0 to 657
        plates[index] = plate
    return plates, version


def _plate_head(file: FileIO, size: int, member: Member, budget: Budget) -> _PlateGcode:
    """What a plate G-code's header (its first 64 kB) states."""
    head = b"".join(stream(file, size, member, GCODE_HEAD, budget))
    slicer, version, values = read_header(head, None)
    return _PlateGcode(slicer, version, values)


def _plate_scan(
    file: FileIO, size: int, member: Member, result: _PlateGcode, count_layers: bool, budget: Budget
) -> None:
    """Stream the whole member when its header is not enough, and it fits in what it may cost."""
    summary = result.summary
    enough = (
        summary.estimated_time_s is not None
        and (summary.layer_count is not None or not count_layers)
        and (summary.filament_g is not None or summary.filament_mm is not None)
    )
    if enough or member.size <= GCODE_HEAD or member.size > min(MAX_MEMBER_SCAN, budget.remaining):
        return  # the header is all there is
    slicer, values = result.slicer, result.values
    groups = layer_markers(slicer)
    markers = tuple(dict.fromkeys(marker for group in groups for marker in group))
    counter = MarkerCounter(markers)
    tail = bytearray()
    produced = 0
    for chunk in stream(file, size, member, member.size, budget):
        produced += len(chunk)
        counter.feed(chunk)
        tail += chunk
        if len(tail) > 2 * GCODE_TAIL:
            del tail[:-GCODE_TAIL]
    if produced < member.size:
        return  # cut short: the header is all there is
    last = bytes(tail[-GCODE_TAIL:])
    values.feed_gcode(last[last.find(b"\n") + 1 :], settings=slicer == "Simplify3D")
    result.summary = summarize(values, slicer)
    result.layer_count = result.summary.layer_count
    result.layer_source = "stated" if result.layer_count is not None else None
    if result.layer_count is None and count_layers:
        result.layer_count = layers_from_counts(groups, dict(zip(markers, counter.counts, strict=True)))
        result.layer_source = "counted" if result.layer_count is not None else None


def _png(file: FileIO, size: int, member: Member, budget: Budget) -> Thumbnail | None:
    """The plate's PNG, described (width and height from its header), not loaded."""
    if not member.readable:
        return None
    dimensions = png_dimensions(b"".join(stream(file, size, member, 24, budget)))
    if dimensions is None:
        return None
    return Thumbnail(
        width=dimensions[0],
        height=dimensions[1],
        format="png",
        size=member.size,
        offset=data_offset(file, size, member),
        length=member.compressed,
        encoding="raw" if member.method == 0 else "deflate",
        member=member.name,
    )


def _plate(
    index: int, xml: _XmlPlate, header: _PlateGcode | None, thumbnail: Thumbnail | None, member: Member | None
) -> PlateInfo:
    summary = header.summary if header else Summary()
    filaments = xml.filaments or summary.per_tool
    filament_mm = summary.filament_mm
    if filament_mm is None and xml.filaments and all(tool.mm is not None for tool in xml.filaments):
        filament_mm = round(sum(tool.mm for tool in xml.filaments if tool.mm is not None), 4)
    layer_count = header.layer_count if header and header.layer_count is not None else xml.layers
    return PlateInfo(
        index=index,
        estimated_time_s=xml.prediction if xml.prediction is not None else summary.estimated_time_s,
        weight_g=xml.weight if xml.weight is not None else summary.filament_g,
        filament_mm=filament_mm,
        layer_count=layer_count,
        filaments=filaments,
        thumbnail=thumbnail,
        gcode_member=member.name if member else None,
    )


def _top_level(
    size: int,
    plates: list[PlateInfo],
    first_index: int,
    headers: dict[int, _PlateGcode],
    xml_plates: dict[int, _XmlPlate],
    client_version: str | None,
    thumbnails: list[Thumbnail],
) -> FileInfo:
    """The first plate read's figures as the file's."""
    first = next(plate for plate in plates if plate.index == first_index)
    header = headers.get(first_index)
    xml = xml_plates.get(first_index) or _XmlPlate()
    summary = header.summary if header else Summary()
    slicer, version = next(
        ((h.slicer, h.version) for h in headers.values() if h.slicer), (None, client_version)
    )
    if header is not None and header.layer_count is not None:
        source = header.layer_source
    else:
        source = "stated" if first.layer_count is not None else None
    used = [tool for tool in first.filaments if tool.grams != 0 or tool.mm not in (0, None)]
    printer_model = summary.printer_model
    if printer_model is None and xml.model_id:
        printer_model = BAMBU_MODEL_IDS.get(xml.model_id, xml.model_id)
    return FileInfo(
        file_format="gcode.3mf",
        file_size=size,
        slicer=slicer,
        slicer_version=version,
        estimated_time_s=first.estimated_time_s,
        layer_count=first.layer_count,
        layer_count_source=source,
        filament_g=first.weight_g,
        filament_mm=first.filament_mm,
        filament_per_tool=first.filaments,
        layer_height_mm=summary.layer_height_mm,
        first_layer_height_mm=summary.first_layer_height_mm,
        object_height_mm=summary.object_height_mm,
        nozzle_diameter_mm=summary.nozzle_diameter_mm or xml.nozzle,
        materials=unique([tool.material for tool in used]) if first.filaments else summary.materials,
        colors=unique([tool.color for tool in used]) if first.filaments else summary.colors,
        printer_model=printer_model,
        thumbnails=thumbnails,
        plates=plates,
    )
