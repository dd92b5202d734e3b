"""Which kind of file it is, and the one entry point that never raises anything but FileInfoError."""

from __future__ import annotations

import os
import stat

from .model import FileInfo, FileInfoError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path


def read_file_info(
    path: Path | str, *, count_layers: bool = True, plates: Collection[int] | None = None
) -> FileInfo:
    """What the slicer wrote about a print file: G-code, binary G-code (.bgcode) or .gcode.3mf.

    Blocking (run it in an executor). The kind of file is told by its content, not its name. Reads
    the head and tail of the file, and the rest only in a streamed scan for layer markers when the
    file does not state its layer count (skip that scan with `count_layers=False`); memory stays
    bounded whatever the file's size. Of a .gcode.3mf every plate is listed, but only the G-code of
    the plates in `plates` is read (by default the first plate's, whose figures are the file's);
    the others are described by slice_info.config alone. The work one archive costs is bounded
    (overlapping members refused, inflated bytes capped), whatever it claims.

    Raises FileInfoError, and only that, when the file cannot be read or is not a print file, or
    is damaged or hostile (ZIP bombs, absurd directories, truncated headers). Values that are
    absurd (negative or huge times, 1e308 grams, NaN) are None, as are values the file does not state.
    """
    try:
        with open(os.fspath(path), "rb", buffering=0) as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise FileInfoError("not a regular file")
            size = status.st_size
            if size == 0:
                raise FileInfoError("empty file")
            magic = file.read(4)
            if magic == b"GCDE":
                from .bgcode import read_bgcode

                return read_bgcode(file, size)
            if magic[:2] == b"PK":
                from .threemf import read_3mf

                return read_3mf(file, size, count_layers, plates)
            from .gcode import read_gcode

            return read_gcode(file, size, count_layers)
    except FileInfoError:
        raise
    except IsADirectoryError as err:
        raise FileInfoError("not a regular file") from err
    except OSError as err:
        raise FileInfoError(f"cannot read the file: {err.strerror or err}") from err
    except Exception as err:
        # A damaged file that got past the checks: still the documented exception, never another.
        raise FileInfoError(
            f"internal error while reading the file ({type(err).__name__}: {err})", unsupported=True
        ) from err
