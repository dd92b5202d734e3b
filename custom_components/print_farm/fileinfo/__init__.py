"""Print-file metadata: what slicers state in G-code, binary G-code and sliced 3MF files.

Plain Python (standard library only, nothing from Home Assistant), for the integration to run in
an executor and for the command line:

    python -m custom_components.print_farm.fileinfo FILE...
    python custom_components/print_farm/fileinfo FILE...  (the same, from the folder alone)

prints one JSON object per file and line.

Supported: PrusaSlicer, SuperSlicer, OrcaSlicer, Bambu Studio, Slic3r, Cura (Marlin and Griffin
flavours), Simplify3D, ideaMaker and KISSlicer G-code; PrusaSlicer binary G-code (.bgcode); Bambu
Studio / OrcaSlicer sliced 3MF (.gcode.3mf).
"""

from __future__ import annotations

from .model import FileInfo, FileInfoError, PlateInfo, Thumbnail, ToolFilament
from .reader import read_file_info
from .thumbs import read_thumbnail

__all__ = [
    "FileInfo",
    "FileInfoError",
    "PlateInfo",
    "Thumbnail",
    "ToolFilament",
    "read_file_info",
    "read_thumbnail",
]
