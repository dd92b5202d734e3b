"""The JPEG camera of a simulated A1, A1 mini, P1P or P1S: TLS on its own port, one login, frames.

Like the printers: a wrong login closes the connection without a frame; a good one gets a frame
(16-byte header, then the JPEG) every `interval` seconds of real time for as long as the client
stays. A frame is drawn only while a client is connected: a small picture of the printer's name,
state, progress and a frame counter, so two frames differ.

Faults for tests (`fault`): "silent" accepts the login and sends nothing; "not_jpeg" sends frames
whose payload is not a JPEG image; "full" closes after the login without a frame, as a printer
does that has as many camera clients as it takes; "slow" answers the TLS handshake only after
SLOW_HANDSHAKE seconds, then sends nothing (a client's every step near its limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import io
import ssl
import struct
from typing import Any, Final

from PIL import Image, ImageDraw

LOGIN_SIZE: Final = 80
LOGIN_TYPE: Final = 0x3000
HEADER: Final = struct.Struct("<IIII")
LOGIN_TIMEOUT: Final = 10.0
DEFAULT_INTERVAL: Final = 0.5
FAULTS: Final = ("silent", "not_jpeg", "full", "slow")
SLOW_HANDSHAKE: Final = 4.0
SIZE: Final = (320, 180)


def parse_login(packet: bytes) -> tuple[str, str] | None:
    """(user name, access code) of an 80-byte login, or None when it is not one."""
    if len(packet) != LOGIN_SIZE or HEADER.unpack_from(packet)[:2] != (0x40, LOGIN_TYPE):
        return None
    try:
        return packet[16:48].rstrip(b"\0").decode("ascii"), packet[48:80].rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        return None


def draw_frame(name: str, state: dict[str, Any], number: int) -> bytes:
    """A JPEG picture of the printer: its name, state and progress, and the frame's number."""
    image = Image.new("RGB", SIZE, (24, 26, 32))
    draw = ImageDraw.Draw(image)
    percent = int(state.get("mc_percent") or 0)
    draw.text((10, 10), name, fill=(235, 235, 235))
    draw.text((10, 40), f"{state.get('gcode_state', '?')}  {percent} %", fill=(120, 200, 255))
    draw.text((10, 70), str(state.get("subtask_name") or ""), fill=(200, 200, 200))
    draw.rectangle((10, 120, 310, 140), outline=(120, 120, 120))
    draw.rectangle((10, 120, 10 + 3 * percent, 140), fill=(0, 174, 66))
    draw.text((10, 155), f"frame {number}", fill=(160, 160, 160))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


class _Held(asyncio.Protocol):
    """A new connection whose bytes wait unread (reading paused) until its TLS handshake starts."""

    def __init__(self, accept: Callable[[asyncio.Transport], None]) -> None:
        self._accept = accept

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._accept(transport)


class CameraServer:
    """Serve one printer's camera on host:port over TLS with the printer's certificate."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        access_code: Callable[[], str],
        picture: Callable[[int], bytes],
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        """Prepare the server; `access_code` is read at every login, `picture(n)` draws frame n."""
        self.host = host
        self.port = port
        self.context = context
        self.access_code = access_code
        self.picture = picture
        self.interval = interval
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.BaseTransport] = set()  # connections before their TLS handshake
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepts = 0  # TCP connections accepted since the start (with or without a login)
        self.clients = 0  # connections logged in now
        self.logins = 0  # logins accepted since the start
        self.refused = 0  # logins refused since the start
        self.turned_away = 0  # logins closed by the "full" fault
        self.frames = 0  # frames sent since the start
        self.fault: str | None = None  # one of FAULTS, for the connections that log in next

    async def start(self) -> None:
        """Listen."""
        if self._server is None:
            # TLS starts per connection (start_tls), so that a fault can hold the handshake back.
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Held(self._accept), self.host, self.port
            )

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for transport in list(self._held):
            transport.abort()
        self._held.clear()

    def info(self) -> dict[str, Any]:
        """The counters the control API shows."""
        return {
            "accepts": self.accepts,
            "clients": self.clients,
            "logins": self.logins,
            "refused": self.refused,
            "turned_away": self.turned_away,
            "frames": self.frames,
            "fault": self.fault,
        }

    def _accept(self, transport: asyncio.Transport) -> None:
        self.accepts += 1
        self._held.add(transport)
        task = asyncio.ensure_future(self._handshake(transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            if self.fault == "slow":
                await asyncio.sleep(SLOW_HANDSHAKE)
            tls = await loop.start_tls(
                transport, protocol, self.context, server_side=True, ssl_handshake_timeout=10
            )
        except (OSError, TimeoutError, ConnectionError):
            transport.abort()
            return
        finally:
            self._held.discard(transport)
        if tls is None:
            transport.abort()
            return
        await self._serve(reader, asyncio.StreamWriter(tls, protocol, reader, loop))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        logged_in = False
        try:
            async with asyncio.timeout(LOGIN_TIMEOUT):
                packet = await reader.readexactly(LOGIN_SIZE)
            login = parse_login(packet)
            if login is None or login != ("bblp", self.access_code()):
                self.refused += 1
                return
            if self.fault == "full":
                self.turned_away += 1
                return
            logged_in = True
            self.logins += 1
            self.clients += 1
            closed = asyncio.ensure_future(reader.read())  # EOF (or reset) when the client leaves
            fault = self.fault
            try:
                if fault in ("silent", "slow"):
                    await closed
                while not closed.done():
                    number = self.frames
                    frame = self.picture(number) if fault is None else b"not a picture %d" % number
                    writer.write(HEADER.pack(len(frame), 0, 1, 0) + frame)
                    await writer.drain()
                    self.frames += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(closed), self.interval)
            finally:
                closed.cancel()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away (ssl.SSLError is an OSError) or sent no login
        finally:
            if logged_in:
                self.clients -= 1
            self._writers.discard(writer)
            writer.transport.abort()
