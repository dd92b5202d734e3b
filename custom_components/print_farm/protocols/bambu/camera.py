"""The JPEG camera of the A1, A1 mini, P1P and P1S: TLS on port 6000, one login, then frames.

The client sends one 80-byte login (four little-endian 32-bit words: payload size 0x40, type
0x3000, flags 0, 0; then the user name and the LAN access code, each ASCII right-padded with NUL
to 32 bytes). The printer answers with frames, each a 16-byte header (the payload size, then three
words the client ignores) followed by that many bytes of JPEG. A printer that refuses the code
closes the connection without a frame; so does one that has as many camera clients as it takes
(about two on the A1 and P1).

The certificate is the printer's own, pinned like its MQTT broker's: checked right after the
handshake, before the access code is sent. The access code never appears in an error's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from types import TracebackType
from typing import Final, Self

from .client import USERNAME
from .errors import (
    BambuAuthError,
    BambuCameraError,
    BambuCertificateError,
    BambuConnectionError,
    BambuTimeoutError,
)
from .tls import PinnedContext, make_context

DEFAULT_CAMERA_PORT: Final = 6000
LOGIN_TYPE: Final = 0x3000
FIELD_SIZE: Final = 32
HEADER: Final = struct.Struct("<IIII")
# A 1280x720 frame from the printers is 50-200 kB; anything above this is not a frame.
MAX_FRAME: Final = 4 * 1024 * 1024
JPEG_START: Final = b"\xff\xd8"
JPEG_END: Final = b"\xff\xd9"


def login_packet(username: str, access_code: str) -> bytes:
    """The 80-byte login: header (0x40, 0x3000, 0, 0), then user name and access code."""
    user, code = username.encode("ascii"), access_code.encode("ascii")
    if len(user) > FIELD_SIZE or len(code) > FIELD_SIZE:
        raise ValueError("the user name and access code are at most 32 characters")
    return HEADER.pack(0x40, LOGIN_TYPE, 0, 0) + user.ljust(FIELD_SIZE, b"\0") + code.ljust(FIELD_SIZE, b"\0")


class BambuCamera:
    """One connection to a printer's JPEG camera: `open`, `read_frame` as often as wanted, `close`.

    Use it as an async context manager. Every wait is bounded by `timeout`; a frame larger than
    `max_frame` or that is no JPEG closes the connection with BambuCameraError.
    """

    def __init__(
        self,
        host: str,
        serial: str,
        access_code: str,
        *,
        port: int = DEFAULT_CAMERA_PORT,
        fingerprint: str | None = None,
        timeout: float = 10.0,
        max_frame: int = MAX_FRAME,
    ) -> None:
        """Prepare a connection; `fingerprint` None accepts any certificate naming the serial (setup only)."""
        self.host = host
        self.port = port
        self.serial = serial
        self._access_code = access_code
        self._fingerprint = fingerprint
        self.timeout = timeout
        self.max_frame = max_frame
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.frames = 0  # frames read on this connection

    def __repr__(self) -> str:
        return f"BambuCamera({self.host}:{self.port}, {self.serial})"  # never the access code

    @property
    def is_open(self) -> bool:
        """Whether the connection is open."""
        return self._writer is not None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, check the certificate, log in.

        Raises BambuCertificateError (not the pinned printer), BambuConnectionError (unreachable),
        BambuTimeoutError. A refused code shows only at the first `read_frame` (BambuAuthError).
        """
        if self._writer is not None:
            return
        context: PinnedContext = make_context(self.serial, self._fingerprint)
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=context, ssl_handshake_timeout=self.timeout
                )
        except TimeoutError:
            raise BambuTimeoutError(f"the camera at {self.host}:{self.port} did not answer in time") from None
        except (OSError, ssl.SSLError, ValueError) as err:
            raise BambuConnectionError(
                f"cannot reach the camera at {self.host}:{self.port}: {err.__class__.__name__}"
            ) from None
        ssl_object = writer.get_extra_info("ssl_object")
        try:
            # asyncio's TLS runs on an SSLObject, not the pinned socket: the pin is checked here,
            # before the access code leaves.
            context.check(ssl_object.getpeercert(binary_form=True) if ssl_object else None)
        except BambuCertificateError:
            writer.transport.abort()
            raise
        self._reader, self._writer = reader, writer
        self.frames = 0
        try:
            writer.write(login_packet(USERNAME, self._access_code))
            async with asyncio.timeout(self.timeout):
                await writer.drain()
        except (OSError, TimeoutError):
            await self.close()
            raise BambuConnectionError(
                f"the camera at {self.host}:{self.port} dropped the connection"
            ) from None

    async def read_frame(self) -> bytes:
        """The next JPEG frame.

        Raises BambuAuthError (the printer closed before the first frame: a wrong access code, or
        a printer at its limit of camera clients), BambuConnectionError (closed later), BambuTimeoutError, BambuCameraError (not a
        frame: the connection is closed).
        """
        if self._reader is None:
            raise BambuConnectionError("the camera connection is not open")
        try:
            async with asyncio.timeout(self.timeout):
                header = await self._reader.readexactly(HEADER.size)
                size = HEADER.unpack(header)[0]
                if not 0 < size <= self.max_frame:
                    raise BambuCameraError(f"the camera announced a frame of {size} bytes")
                frame = await self._reader.readexactly(size)
        except TimeoutError:
            await self.close()
            raise BambuTimeoutError(f"the camera at {self.host}:{self.port} sent no frame in time") from None
        except (asyncio.IncompleteReadError, OSError) as err:
            first = self.frames == 0
            await self.close()
            if first and isinstance(err, asyncio.IncompleteReadError) and not err.partial:
                raise BambuAuthError(
                    "the camera closed before the first frame (wrong access code or too many viewers)"
                ) from None
            raise BambuConnectionError(
                f"the camera at {self.host}:{self.port} closed the connection"
            ) from None
        except BambuCameraError:
            await self.close()
            raise
        if not (frame.startswith(JPEG_START) and frame.endswith(JPEG_END)):
            await self.close()
            raise BambuCameraError("the camera sent a frame that is not a JPEG image")
        self.frames += 1
        return frame

    async def close(self) -> None:
        """Close the connection (no TLS goodbye: the printers do not wait for one)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.transport.abort()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def fetch_frame(
    host: str,
    serial: str,
    access_code: str,
    *,
    port: int = DEFAULT_CAMERA_PORT,
    fingerprint: str | None = None,
    timeout: float = 10.0,
) -> bytes:
    """Open the camera, read one frame, close: a still image."""
    async with BambuCamera(
        host, serial, access_code, port=port, fingerprint=fingerprint, timeout=timeout
    ) as camera:
        return await camera.read_frame()
