"""Counting layer-change markers in a stream of bytes, chunk by chunk, with bounded memory.

Markers are counted with `bytes.count` on whole chunks (C speed, no per-line Python loop); a marker
split across two chunks is found in a small window around the boundary, made of at most
`len(marker) - 1` bytes from each side, so it is counted exactly once.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from io import FileIO

CHUNK = 1024 * 1024


class MarkerCounter:
    """Counts of several markers over all the bytes fed so far, as if the data began a new line."""

    __slots__ = ("_keep", "_previous", "counts", "markers")

    def __init__(self, markers: tuple[bytes, ...]) -> None:
        """Count `markers` (each at least two bytes long, usually starting with a newline)."""
        self.markers = markers
        self.counts = [0] * len(markers)
        self._keep = max(len(marker) for marker in markers) - 1
        self._previous = b"\n"

    def feed(self, data: bytes | bytearray, size: int | None = None) -> None:
        """Count the markers in `data[:size]` (all of `data` by default)."""
        size = len(data) if size is None else size
        if size <= 0:
            return
        previous = self._previous
        for index, marker in enumerate(self.markers):
            self.counts[index] += data.count(marker, 0, size)
            overlap = len(marker) - 1
            window = previous[-overlap:] + bytes(data[: min(overlap, size)])
            self.counts[index] += window.count(marker)
        if size >= self._keep:
            self._previous = bytes(data[size - self._keep : size])
        else:
            self._previous = (previous + bytes(data[:size]))[-self._keep :]


def count_in_file(file: FileIO, size: int, markers: tuple[bytes, ...]) -> list[int]:
    """Count markers in the first `size` bytes of a file, reading 1 MB at a time into one buffer."""
    counter = MarkerCounter(markers)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    file.seek(0)
    remaining = size
    while remaining > 0:
        read = file.readinto(view[: min(CHUNK, remaining)])
        if not read:
            break
        counter.feed(buffer, read)
        remaining -= read
    view.release()
    return counter.counts


def layers_from_counts(groups: tuple[tuple[bytes, ...], ...], counts: dict[bytes, int]) -> int | None:
    """The layer count from marker counts: the first group that found any (None if none did).

    A group of two markers counts the first minus the second.
    """
    for group in groups:
        found = counts.get(group[0], 0) - sum(counts.get(marker, 0) for marker in group[1:])
        if found > 0:
            return found
    return None
