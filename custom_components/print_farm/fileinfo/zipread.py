"""A small, defensive ZIP reader: the central directory and streamed members, with hard limits.

`zipfile` reads the whole central directory into objects before anything can be checked, so an
archive with a million entries costs hundreds of MB before the first test. This reader checks the
end record first, reads at most MAX_ENTRIES entries (and MAX_DIRECTORY_BYTES of directory), and
streams members through zlib with an output limit, refusing members whose stated sizes are
impossible (a deflate stream cannot expand more than about 1032:1) and stopping any member that
inflates beyond the size its header states.

The work one archive can cost is bounded too: entries whose data overlap (many directory entries
sharing one highly compressible stream, each inflated in full) or lie beyond the archive's data are
refused before anything is inflated, and all the members of one archive together inflate at most
MAX_INFLATED bytes (`Budget`).
"""

from __future__ import annotations

import struct
import zlib

from .model import FileInfoError

MAX_ENTRIES = 4096
MAX_DIRECTORY_BYTES = 4 * 1024 * 1024
MAX_RATIO = 1100
IN_CHUNK = 64 * 1024
OUT_CHUNK = 1024 * 1024
# Everything one archive may inflate, all members together: about 0.3 s of CPU for G-code text.
MAX_INFLATED = 64 * 1024 * 1024

_END = struct.Struct("<4s4H2LH")
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_ENTRY = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_STORED, _DEFLATED = 0, 8

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (a few ms at startup)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from io import FileIO


class Member:
    """One entry of the central directory."""

    __slots__ = ("compressed", "crc", "flags", "local_offset", "method", "name", "size")

    def __init__(
        self, name: str, method: int, flags: int, crc: int, compressed: int, size: int, local_offset: int
    ) -> None:
        """An entry as the directory states it (not yet checked against its local header)."""
        self.name = name
        self.method = method
        self.flags = flags
        self.crc = crc
        self.compressed = compressed
        self.size = size
        self.local_offset = local_offset

    @property
    def readable(self) -> bool:
        """Stored or deflated, and not encrypted."""
        return self.method in (_STORED, _DEFLATED) and not self.flags & 1


class Budget:
    """What one archive may still inflate, in bytes, all its members together."""

    __slots__ = ("remaining",)

    def __init__(self, total: int = MAX_INFLATED) -> None:
        """A budget of `total` bytes."""
        self.remaining = total

    def spend(self, count: int) -> None:
        """Take `count` inflated bytes; FileInfoError once the archive has inflated more than its budget."""
        if count > self.remaining:
            raise FileInfoError(
                f"refusing the archive: it inflates to more than {MAX_INFLATED // (1024 * 1024)} MB (a ZIP bomb?)"
            )
        self.remaining -= count


def read_directory(file: FileIO, size: int) -> list[Member]:
    """The first MAX_ENTRIES entries of the archive's central directory, their data checked apart.

    FileInfoError when two entries' data overlap or an entry's data lies beyond the archive's data.
    """
    tail_size = min(size, _END.size + 65535)
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + _END.size > len(tail):
        raise FileInfoError("damaged ZIP archive (no end of central directory)")
    _, _, _, _, entries, directory_size, directory_offset, _ = _END.unpack_from(tail, end)
    end_offset = size - tail_size + end
    if entries == 0xFFFF or directory_size == 0xFFFFFFFF or directory_offset == 0xFFFFFFFF:
        entries, directory_size, directory_offset = _zip64_end(file, size, end_offset)
    if directory_offset + directory_size > end_offset or directory_offset < 0:
        raise FileInfoError("damaged ZIP archive (the central directory lies outside the file)")
    file.seek(directory_offset)
    directory = file.read(min(directory_size, MAX_DIRECTORY_BYTES))
    members: list[Member] = []
    position = 0
    while len(members) < min(entries, MAX_ENTRIES) and position + _ENTRY.size <= len(directory):
        fields = _ENTRY.unpack_from(directory, position)
        if fields[0] != b"PK\x01\x02":
            raise FileInfoError("damaged ZIP archive (bad central directory entry)")
        flags, method, crc, compressed, uncompressed = fields[3], fields[4], fields[7], fields[8], fields[9]
        name_length, extra_length, comment_length, local_offset = (
            fields[10],
            fields[11],
            fields[12],
            fields[16],
        )
        name_start = position + _ENTRY.size
        extra_start = name_start + name_length
        next_entry = extra_start + extra_length + comment_length
        if next_entry > len(directory):
            break
        raw_name = directory[name_start:extra_start]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if 0xFFFFFFFF in (compressed, uncompressed, local_offset):
            uncompressed, compressed, local_offset = _zip64_sizes(
                directory[extra_start : extra_start + extra_length], uncompressed, compressed, local_offset
            )
        members.append(Member(name, method, flags, crc, compressed, uncompressed, local_offset))
        position = next_entry
    _check_apart(members, directory_offset)
    return members


def _check_apart(members: list[Member], data_end: int) -> None:
    """Refuse entries that share data (a ZIP bomb's trick) or whose data runs past `data_end`.

    Each entry takes at least its local header's fixed part and its compressed data, from its
    local header's offset on; in an honest archive those spans follow one another.
    """
    previous: Member | None = None
    previous_end = 0
    for member in sorted(members, key=lambda entry: entry.local_offset):
        end = member.local_offset + _LOCAL.size + member.compressed
        if end > data_end:
            raise FileInfoError(f"damaged ZIP archive ({member.name} lies beyond the archive's data)")
        if previous is not None and member.local_offset < previous_end:
            raise FileInfoError(
                f"refusing the archive: the data of {previous.name} and {member.name} overlap (a ZIP bomb?)"
            )
        previous, previous_end = member, end


def _zip64_end(file: FileIO, size: int, end_offset: int) -> tuple[int, int, int]:
    """Entry count, directory size and offset from the ZIP64 end record."""
    if end_offset < _END64_LOCATOR.size:
        raise FileInfoError("damaged ZIP archive (ZIP64 locator missing)")
    file.seek(end_offset - _END64_LOCATOR.size)
    signature, _, record_offset, _ = _END64_LOCATOR.unpack(file.read(_END64_LOCATOR.size))
    if signature != b"PK\x06\x07" or record_offset + _END64.size > size:
        raise FileInfoError("damaged ZIP archive (ZIP64 locator missing)")
    file.seek(record_offset)
    fields = _END64.unpack(file.read(_END64.size))
    if fields[0] != b"PK\x06\x06":
        raise FileInfoError("damaged ZIP archive (ZIP64 end record missing)")
    return int(fields[7]), int(fields[8]), int(fields[9])


def _zip64_sizes(extra: bytes, uncompressed: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """The 64-bit sizes and offset of an entry from its ZIP64 extra field (id 1)."""
    position = 0
    while position + 4 <= len(extra):
        field_id, field_size = struct.unpack_from("<HH", extra, position)
        data = extra[position + 4 : position + 4 + field_size]
        if field_id == 1:
            values = [struct.unpack_from("<Q", data, index)[0] for index in range(0, len(data) - 7, 8)]
            if uncompressed == 0xFFFFFFFF and values:
                uncompressed = values.pop(0)
            if compressed == 0xFFFFFFFF and values:
                compressed = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
            break
        position += 4 + field_size
    return uncompressed, compressed, offset


def data_offset(file: FileIO, size: int, member: Member) -> int:
    """Where the member's stored data starts, checked against the file's size."""
    if member.local_offset + _LOCAL.size > size:
        raise FileInfoError(f"damaged ZIP archive ({member.name} lies outside the file)")
    file.seek(member.local_offset)
    fields = _LOCAL.unpack(file.read(_LOCAL.size))
    if fields[0] != b"PK\x03\x04":
        raise FileInfoError(f"damaged ZIP archive (no local header for {member.name})")
    start = member.local_offset + _LOCAL.size + int(fields[9]) + int(fields[10])
    if start + member.compressed > size:
        raise FileInfoError(f"damaged ZIP archive ({member.name} is cut off)")
    return start


def check_sizes(member: Member) -> None:
    """Refuse a member whose stated sizes no honest deflate stream can have (a ZIP bomb's claim)."""
    if member.method == _STORED and member.compressed != member.size:
        raise FileInfoError(f"damaged ZIP archive ({member.name}: stored sizes disagree)")
    if member.method == _DEFLATED and member.size > MAX_RATIO * max(member.compressed, 1):
        raise FileInfoError(
            f"refusing {member.name}: it claims to expand {member.size} bytes from {member.compressed}"
            f" (more than deflate can; a ZIP bomb?)"
        )


def stream(file: FileIO, size: int, member: Member, limit: int, budget: Budget) -> Iterator[bytes]:
    """The member's content in chunks of at most 1 MB, stopping after `limit` bytes.

    Raises FileInfoError for an unreadable method, a damaged stream, output beyond the size the
    directory states (the stream is stopped there, so a lying ZIP bomb costs at most its claim), or
    output beyond what the archive's `budget` has left.
    """
    if not member.readable:
        raise FileInfoError(
            f"{member.name} is encrypted or compressed with an unsupported method", unsupported=True
        )
    check_sizes(member)
    start = data_offset(file, size, member)
    limit = min(limit, member.size)
    remaining_in = member.compressed
    produced = 0
    position = start
    if member.method == _STORED:
        while produced < limit:
            file.seek(position)
            chunk = file.read(min(OUT_CHUNK, limit - produced))
            if not chunk:
                return
            budget.spend(len(chunk))
            position += len(chunk)
            produced += len(chunk)
            yield chunk
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = b""
    while produced < limit:
        if not pending:
            if inflater.eof or remaining_in <= 0:
                return
            file.seek(position)
            pending = file.read(min(IN_CHUNK, remaining_in))
            if not pending:
                return
            position += len(pending)
            remaining_in -= len(pending)
        try:
            chunk = inflater.decompress(pending, min(OUT_CHUNK, limit - produced + 1))
        except zlib.error as err:
            raise FileInfoError(f"damaged ZIP archive ({member.name}: {err})") from err
        pending = b"" if inflater.eof else inflater.unconsumed_tail
        if chunk:
            if produced + len(chunk) > member.size:
                raise FileInfoError(
                    f"refusing {member.name}: it inflates beyond its stated size (a ZIP bomb?)"
                )
            chunk = chunk[: limit - produced]
            budget.spend(len(chunk))
            produced += len(chunk)
            yield chunk


def read_member(file: FileIO, size: int, member: Member, cap: int, budget: Budget) -> bytes | None:
    """A whole member of at most `cap` bytes, CRC checked; None if it is bigger or damaged."""
    if member.size > cap or not member.readable:
        return None
    data = b"".join(stream(file, size, member, cap, budget))
    if len(data) != member.size or zlib.crc32(data) != member.crc:
        return None
    return data
