"""What the reader returns: frozen dataclasses, and the one exception it raises."""

from __future__ import annotations

from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from typing import Any

THUMBNAIL_FORMATS = ("png", "qoi", "jpg")


class FileInfoError(ValueError):
    """The file cannot be read as a G-code, binary G-code or sliced 3MF file.

    The only exception `read_file_info` raises: unreadable files (missing, not a regular file,
    permission denied), files of another kind, and damaged or hostile ones (truncated headers,
    ZIP bombs, archives with absurd directories) all end here, with a message for a person.
    `unsupported` is true when the file may well be a print this reader cannot read (a newer binary
    G-code version, an unsupported compression, a reader error), not one that is no print at all.
    """

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        """Keep the message and whether the file may still be a print."""
        super().__init__(message)
        self.unsupported = unsupported


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A preview image stored in the file.

    `data` holds the image's bytes for at most two thumbnails per file (the two largest by pixel
    count, each at most 512 kB); the others have `data=None` and can be read later with
    `read_thumbnail(path, thumbnail)`, which uses `offset`, `length`, `encoding` and `member`.
    """

    width: int
    height: int
    format: str
    """One of "png", "qoi", "jpg"."""
    size: int | None
    """The image's size in bytes, when known (stated by the container or decoded)."""
    offset: int | None
    """Where the stored bytes start in the file (for a 3MF: the member's stored data)."""
    length: int | None
    """How many stored bytes there are at `offset` (encoded, compressed or raw)."""
    encoding: str
    """How the stored bytes hold the image: "gcode-base64" (a block of `; ` comment lines),
    "raw", "zlib" (a bgcode block compressed with deflate) or "deflate" (a 3MF member)."""
    member: str | None = None
    """The 3MF member holding the image, for a .gcode.3mf."""
    data: bytes | None = field(default=None, repr=False, compare=False)

    def to_json_dict(self) -> dict[str, Any]:
        """The thumbnail without its bytes (their size and whether they were kept instead)."""
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "size": self.size,
            "offset": self.offset,
            "length": self.length,
            "encoding": self.encoding,
            "member": self.member,
            "data_kept": self.data is not None,
        }


@dataclass(frozen=True, slots=True)
class ToolFilament:
    """The filament one extruder, tool or AMS slot uses, as far as the file states it.

    `tool` is 0-based: T0 in G-code is 0, and Bambu's filament id 1 (slot 1) is 0 as well.
    """

    tool: int
    grams: float | None = None
    mm: float | None = None
    material: str | None = None
    color: str | None = None
    """Upper-case "#RRGGBB"."""

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {
            "tool": self.tool,
            "grams": self.grams,
            "mm": self.mm,
            "material": self.material,
            "color": self.color,
        }


@dataclass(frozen=True, slots=True)
class PlateInfo:
    """One plate of a sliced 3MF (.gcode.3mf): a separate print with its own G-code."""

    index: int
    """The slicer's plate number, from 1."""
    estimated_time_s: int | None = None
    weight_g: float | None = None
    filament_mm: float | None = None
    layer_count: int | None = None
    filaments: list[ToolFilament] = field(default_factory=list)
    """Filament per slot (type, colour, grams, mm): the slots the plate uses."""
    thumbnail: Thumbnail | None = None
    """Metadata/plate_N.png."""
    gcode_member: str | None = None
    """The member holding the plate's G-code, e.g. "Metadata/plate_1.gcode"."""

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types; the thumbnail without its bytes."""
        return {
            "index": self.index,
            "estimated_time_s": self.estimated_time_s,
            "weight_g": self.weight_g,
            "filament_mm": self.filament_mm,
            "layer_count": self.layer_count,
            "filaments": [tool.to_json_dict() for tool in self.filaments],
            "thumbnail": self.thumbnail.to_json_dict() if self.thumbnail else None,
            "gcode_member": self.gcode_member,
        }


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a slicer wrote about a print file. None everywhere means "not stated".

    For a .gcode.3mf the top-level figures are those of the first plate (the lowest index): a
    printer prints one plate per job, so adding plates up would describe no real print; every
    plate's own figures are in `plates`. A plain G-code or bgcode file is a single print described
    by the top-level fields, and its `plates` list is empty.
    """

    file_format: str
    """One of "gcode", "bgcode", "gcode.3mf"."""
    file_size: int
    slicer: str | None = None
    slicer_version: str | None = None
    estimated_time_s: int | None = None
    layer_count: int | None = None
    layer_count_source: str | None = None
    """Either "stated" (the file says so) or "counted" (layer-change markers), None if unknown."""
    filament_g: float | None = None
    filament_mm: float | None = None
    filament_per_tool: list[ToolFilament] = field(default_factory=list)
    layer_height_mm: float | None = None
    first_layer_height_mm: float | None = None
    object_height_mm: float | None = None
    nozzle_diameter_mm: float | None = None
    materials: list[str] = field(default_factory=list)
    """Materials of the tools the print uses, in tool order, without repeats."""
    colors: list[str] = field(default_factory=list)
    """Colours ("#RRGGBB") of the tools the print uses, in tool order, without repeats."""
    printer_model: str | None = None
    thumbnails: list[Thumbnail] = field(default_factory=list)
    plates: list[PlateInfo] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types; thumbnails without their bytes."""
        return {
            "file_format": self.file_format,
            "file_size": self.file_size,
            "slicer": self.slicer,
            "slicer_version": self.slicer_version,
            "estimated_time_s": self.estimated_time_s,
            "layer_count": self.layer_count,
            "layer_count_source": self.layer_count_source,
            "filament_g": self.filament_g,
            "filament_mm": self.filament_mm,
            "filament_per_tool": [tool.to_json_dict() for tool in self.filament_per_tool],
            "layer_height_mm": self.layer_height_mm,
            "first_layer_height_mm": self.first_layer_height_mm,
            "object_height_mm": self.object_height_mm,
            "nozzle_diameter_mm": self.nozzle_diameter_mm,
            "materials": list(self.materials),
            "colors": list(self.colors),
            "printer_model": self.printer_model,
            "thumbnails": [thumbnail.to_json_dict() for thumbnail in self.thumbnails],
            "plates": [plate.to_json_dict() for plate in self.plates],
        }
