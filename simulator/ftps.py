"""An implicit-FTPS server shaped like the printers' (vsftpd with require_ssl_reuse).

TLS starts with the first byte on the control port. Data connections are TLS too and are refused
unless they resume the control connection's TLS session, as on the printers, so a client that
forgets to pass the session fails here as it would on real hardware.

TLS 1.3 is allowed: the server sends its session tickets right after the handshake, before the
220 greeting, so a client holds a resumable session once it has read the greeting.

The end of an uploaded file is the end of the data connection, with or without a TLS close_notify:
the printers' clients end STOR with a plain TCP half-close (the printers do not answer a TLS
shutdown), and vsftpd on the printers takes that as the end of the file. So neither the printers nor
this server can tell a finished upload from one whose client died mid-file and whose kernel sent a
FIN, and STOR announces no size to compare against. A connection reset is told apart: the server
answers 426 and keeps the partial file, as vsftpd does. To test a transfer that breaks in the middle,
arm `UploadFault` (the control API's ftps/break_upload): the next STOR is cut after N bytes, its data
connection is reset, and the control connection answers 426 or closes; the partial file stays on
storage as a printer leaves it, for the client to delete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import datetime
from pathlib import Path
import posixpath
import socket
import ssl
import struct
from typing import Final, Literal

DATA_TIMEOUT: Final = 30.0
_CHUNK: Final = 65536
_FEATURES: Final = ("EPSV", "PASV", "PBSZ", "PROT", "SIZE", "UTF8")
_BEFORE_LOGIN: Final = frozenset({"USER", "PASS", "QUIT", "FEAT", "SYST", "PBSZ", "PROT", "OPTS", "NOOP"})

type Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True, slots=True)
class UploadFault:
    """Break the next STOR after `after_bytes` bytes; then answer 426 ("reply") or drop the control connection ("close")."""

    after_bytes: int
    control: Literal["reply", "close"] = "reply"


class FtpsServer:
    """Serve one printer's storage directory over implicit FTPS on host:port."""

    def __init__(
        self,
        host: str,
        port: int,
        storage_dir: Path,
        context: ssl.SSLContext,
        access_code: Callable[[], str],
    ) -> None:
        """Prepare a server; `access_code` is read at every login so code changes apply at once."""
        self.host = host
        self.port = port
        self.storage_dir = storage_dir
        self.context = context
        self.access_code = access_code
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()  # every open control and data connection
        self._listeners: set[asyncio.Server] = set()  # open passive-mode listeners
        self.upload_fault: UploadFault | None = None  # spent by the next STOR

    @property
    def running(self) -> bool:
        """Return whether the control port is listening."""
        return self._server is not None

    async def start(self) -> None:
        """Listen on the control port."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, ssl=self.context, ssl_handshake_timeout=10
            )

    async def stop(self) -> None:
        """Stop listening and drop every connection, as a printer going offline does."""
        server, self._server = self._server, None
        for listener in [*self._listeners, *([server] if server else [])]:
            listener.close()
        self._listeners.clear()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await _Session(self, reader, writer).run()
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away (ssl.SSLError is an OSError) or sent an endless line
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


class _Session:
    """One control connection."""

    def __init__(
        self, server: FtpsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.logged_in = False
        self.cwd = "/"
        # Data connections use the context this control connection was accepted with, so that
        # its TLS session can be resumed even after the printer's certificate was replaced.
        self.context = server.context
        self.passive: tuple[asyncio.Server, asyncio.Future[Streams]] | None = None

    async def reply(self, code: int, text: str) -> None:
        self.writer.write(f"{code} {text}\r\n".encode())
        await self.writer.drain()

    async def run(self) -> None:
        await self.reply(220, "(vsFTPd 3.0.3)")
        try:
            while line := await self.reader.readline():
                verb, _, argument = line.decode(errors="replace").strip().partition(" ")
                verb = verb.upper()
                if not self.logged_in and verb not in _BEFORE_LOGIN:
                    await self.reply(530, "Please login with USER and PASS.")
                elif handler := getattr(self, f"do_{verb}", None):
                    if await handler(argument.strip()) is False:
                        return
                else:
                    await self.reply(500, "Unknown command.")
        finally:
            self._close_passive()

    # --- commands; each returns False to end the session ----------------------------------

    async def do_USER(self, argument: str) -> None:
        self.user, self.logged_in = argument, False
        await self.reply(331, "Please specify the password.")

    async def do_PASS(self, argument: str) -> None:
        if self.user == "bblp" and argument == self.server.access_code():
            self.logged_in = True
            await self.reply(230, "Login successful.")
        else:
            await self.reply(530, "Login incorrect.")

    async def do_PBSZ(self, _: str) -> None:
        await self.reply(200, "PBSZ set to 0.")

    async def do_PROT(self, argument: str) -> None:
        if argument.upper() == "P":
            await self.reply(200, "PROT now Private.")
        else:
            await self.reply(521, "Data connections must be encrypted.")

    async def do_TYPE(self, argument: str) -> None:
        await self.reply(
            200,
            "Switching to ASCII mode." if argument.upper().startswith("A") else "Switching to Binary mode.",
        )

    async def do_PWD(self, _: str) -> None:
        await self.reply(257, f'"{self.cwd}" is the current directory')

    async def do_CWD(self, argument: str) -> None:
        target = "/" + posixpath.normpath(posixpath.join(self.cwd, argument or "/")).lstrip("/")
        if target in ("/", "/sdcard"):
            self.cwd = target
            await self.reply(250, "Directory successfully changed.")
        else:
            await self.reply(550, "Failed to change directory.")

    async def do_PASV(self, _: str) -> None:
        port = await self._open_passive()
        await self.reply(
            227, f"Entering Passive Mode ({self.server.host.replace('.', ',')},{port >> 8},{port & 255})."
        )

    async def do_EPSV(self, _: str) -> None:
        port = await self._open_passive()
        await self.reply(229, f"Entering Extended Passive Mode (|||{port}|)")

    async def do_STOR(self, argument: str) -> bool | None:
        if (path := self._path(argument)) is None:
            await self.reply(553, "Could not create file.")
            return None
        if (streams := await self._accept_data("Ok to send data.")) is None:
            return None
        reader, writer = streams
        fault, self.server.upload_fault = self.server.upload_fault, None
        limit = fault.after_bytes if fault is not None else None
        received, complete = 0, True
        # Blocking writes are fine here: local disk, simulator only, small test files.
        with path.open("wb") as file:
            try:
                while limit is None or received < limit:
                    wanted = _CHUNK if limit is None else min(_CHUNK, limit - received)
                    if not (chunk := await reader.read(wanted)):
                        break
                    file.write(chunk)
                    received += len(chunk)
                complete = limit is None or received < limit  # at the limit, the injected fault breaks it
            except ssl.SSLEOFError:
                pass  # the client closed without close_notify: that is the end of the file
            except (OSError, asyncio.IncompleteReadError):
                complete = False  # a broken transfer leaves the partial file, as on the printers
        if complete:
            await self._close_data(writer)
            await self.reply(226, "Transfer complete.")
            return None
        _reset(writer)
        self.server._writers.discard(writer)
        if fault is not None and fault.control == "close":
            return False
        await self.reply(426, "Failure reading network stream.")
        return None

    async def do_RETR(self, argument: str) -> None:
        if (path := self._path(argument)) is None or not path.is_file():
            await self.reply(550, "Failed to open file.")
            return
        if (
            streams := await self._accept_data(f"Opening BINARY mode data connection for {path.name}.")
        ) is None:
            return
        _, writer = streams
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                writer.write(chunk)
                await writer.drain()
        await self._close_data(writer)
        await self.reply(226, "Transfer complete.")

    async def do_LIST(self, _: str) -> None:
        await self._send_listing(long=True)

    async def do_NLST(self, _: str) -> None:
        await self._send_listing(long=False)

    async def do_SIZE(self, argument: str) -> None:
        if (path := self._path(argument)) is not None and path.is_file():
            await self.reply(213, str(path.stat().st_size))
        else:
            await self.reply(550, "Could not get file size.")

    async def do_DELE(self, argument: str) -> None:
        if (path := self._path(argument)) is not None and path.is_file():
            path.unlink()
            await self.reply(250, "Delete operation successful.")
        else:
            await self.reply(550, "Delete operation failed.")

    async def do_NOOP(self, _: str) -> None:
        await self.reply(200, "NOOP ok.")

    async def do_FEAT(self, _: str) -> None:
        lines = "".join(f" {feature}\r\n" for feature in _FEATURES)
        self.writer.write(f"211-Features:\r\n{lines}211 End\r\n".encode())
        await self.writer.drain()

    async def do_SYST(self, _: str) -> None:
        await self.reply(215, "UNIX Type: L8")

    async def do_OPTS(self, argument: str) -> None:
        if argument.upper().startswith("UTF8"):
            await self.reply(200, "Always in UTF8 mode.")
        else:
            await self.reply(501, "Option not understood.")

    async def do_QUIT(self, _: str) -> bool:
        await self.reply(221, "Goodbye.")
        return False

    # --- helpers --------------------------------------------------------------------------

    def _path(self, argument: str) -> Path | None:
        """Map "/sdcard/x", "/x" or "x" to the storage file; None for anything else."""
        if not argument.strip():
            return None
        name = (
            posixpath.normpath(posixpath.join(self.cwd, argument.strip())).lstrip("/").removeprefix("sdcard/")
        )
        if not name or "/" in name or name in (".", "..", "sdcard"):
            return None
        return self.server.storage_dir / name

    async def _open_passive(self) -> int:
        """Listen for one data connection on a new port of the printer's host."""
        self._close_passive()
        future: asyncio.Future[Streams] = asyncio.get_running_loop().create_future()

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.server._writers.add(writer)
            if future.done():
                writer.transport.abort()
            else:
                future.set_result((reader, writer))

        listener = await asyncio.start_server(
            accepted, self.server.host, 0, ssl=self.context, ssl_handshake_timeout=DATA_TIMEOUT
        )
        self.server._listeners.add(listener)
        self.passive = (listener, future)
        port: int = listener.sockets[0].getsockname()[1]
        return port

    def _close_passive(self) -> None:
        if self.passive is not None:
            listener, future = self.passive
            listener.close()
            self.server._listeners.discard(listener)
            future.cancel()
            self.passive = None

    async def _accept_data(self, ready_text: str) -> Streams | None:
        """Send 150, wait for the data connection, and refuse it unless it resumed our TLS session."""
        if self.passive is None:
            await self.reply(425, "Use PORT or PASV first.")
            return None
        listener, future = self.passive
        await self.reply(150, ready_text)
        try:
            reader, writer = await asyncio.wait_for(future, DATA_TIMEOUT)
        except TimeoutError:
            await self.reply(425, "Failed to establish connection.")
            return None
        finally:
            self._close_passive()
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None or not ssl_object.session_reused:
            await self.reply(522, "SSL connection failed: session reuse required")
            writer.close()  # politely (close_notify), so the client reads the 522 rather than a reset
            self.server._writers.discard(writer)
            return None
        return reader, writer

    async def _close_data(self, writer: asyncio.StreamWriter) -> None:
        """Close a data connection with a TLS close_notify, without waiting long for the client's."""
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(5):
                await writer.wait_closed()
        writer.transport.abort()
        self.server._writers.discard(writer)

    async def _send_listing(self, *, long: bool) -> None:
        if (streams := await self._accept_data("Here comes the directory listing.")) is None:
            return
        _, writer = streams
        for path in sorted(p for p in self.server.storage_dir.iterdir() if p.is_file()):
            if long:
                stat = path.stat()
                stamp = datetime.datetime.fromtimestamp(stat.st_mtime).strftime("%b %d %H:%M")
                writer.write(
                    f"-rw-r--r--    1 0        0        {stat.st_size:>8} {stamp} {path.name}\r\n".encode()
                )
            else:
                writer.write(f"{path.name}\r\n".encode())
        await writer.drain()
        await self._close_data(writer)
        await self.reply(226, "Directory send OK.")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop a connection with a TCP reset (no FIN, no close_notify), as a broken network does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
