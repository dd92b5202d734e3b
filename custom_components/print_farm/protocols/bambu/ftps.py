"""Implicit FTPS to a Bambu Lab printer's storage (blocking: run it in an executor).

The printers speak TLS from the first byte (port 990), refuse a data connection that does not
resume the control connection's TLS session, and do not expect a TLS shutdown after STOR.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import ftplib
from pathlib import Path
import socket
import ssl
import time
from typing import Any, Final

from .client import USERNAME
from .errors import BambuAuthError, BambuCertificateError, BambuConnectionError, BambuFtpError
from .tls import make_context

DEFAULT_FTPS_PORT: Final = 990
CHUNK: Final = 256 * 1024

type Progress = Callable[[int, int], None]


class _ImplicitFTPS(ftplib.FTP_TLS):
    """FTP_TLS with TLS from the first byte and data sockets that resume the control session."""

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((host, port), self.timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(
                conn,
                server_hostname=self.host,
                session=self.sock.session,  # type: ignore[union-attr]
            )
        return conn, size


def _login(
    host: str, port: int, serial: str, access_code: str, fingerprint: str | None, timeout: float
) -> _ImplicitFTPS:
    ftp = _ImplicitFTPS(context=make_context(serial, fingerprint), timeout=timeout)
    try:
        ftp.connect(host, port)
    except BambuCertificateError:
        raise
    except (OSError, ssl.SSLError, ftplib.Error, EOFError) as err:
        raise BambuConnectionError(f"cannot reach the printer's storage at {host}:{port}") from err
    try:
        ftp.login(USERNAME, access_code)
        ftp.prot_p()
    except ftplib.error_perm as err:
        ftp.close()
        if str(err).startswith("530"):
            raise BambuAuthError("the printer refused the access code") from None
        raise BambuFtpError(f"the printer refused the login: {err}") from None
    except (OSError, ftplib.Error, EOFError) as err:
        ftp.close()
        raise BambuConnectionError("the printer's storage dropped the connection") from err
    return ftp


def upload(
    host: str,
    serial: str,
    access_code: str,
    local: Path,
    remote_name: str,
    *,
    port: int = DEFAULT_FTPS_PORT,
    fingerprint: str | None = None,
    timeout: float = 30.0,
    deadline: float | None = None,
    progress: Progress | None = None,
) -> int:
    """Stream a local file to the printer's storage; return the bytes sent.

    `timeout` bounds every socket operation and `deadline` (seconds) the whole transfer. On any
    failure the partial remote file is removed before the error is raised.
    """
    total = local.stat().st_size
    started = time.monotonic()
    ftp = _login(host, port, serial, access_code, fingerprint, timeout)
    sent = 0
    try:
        try:
            ftp.voidcmd("TYPE I")
            conn = ftp.transfercmd(f"STOR {remote_name}")
            with conn, local.open("rb") as source:
                while chunk := source.read(CHUNK):
                    conn.sendall(chunk)
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent, total)
                    if deadline is not None and time.monotonic() - started > deadline:
                        raise BambuFtpError(f"the upload took longer than {deadline:.0f} s")
                # End of file is a plain TCP half-close, no TLS close_notify (the printers do not
                # answer one). Closing outright could reset the connection while the printer still
                # reads, so the socket stays open until the printer has confirmed the transfer.
                conn.shutdown(socket.SHUT_WR)
                ftp.voidresp()
        except (OSError, ftplib.Error, EOFError) as err:
            raise BambuFtpError(f"the upload of {remote_name} failed: {err}") from err
    except BambuFtpError:
        _remove_partial(ftp, host, port, serial, access_code, fingerprint, timeout, remote_name)
        raise
    finally:
        with contextlib.suppress(OSError, ftplib.Error, EOFError):
            ftp.quit()
        ftp.close()
    return sent


def _remove_partial(
    ftp: _ImplicitFTPS,
    host: str,
    port: int,
    serial: str,
    access_code: str,
    fingerprint: str | None,
    timeout: float,
    remote_name: str,
) -> None:
    """Delete what a failed STOR left behind, on a fresh connection if the old one is broken."""
    with contextlib.suppress(OSError, ftplib.Error, EOFError):
        ftp.delete(remote_name)
        return
    with contextlib.suppress(Exception):
        fresh = _login(host, port, serial, access_code, fingerprint, timeout)
        try:
            fresh.delete(remote_name)
        finally:
            fresh.close()


def list_files(
    host: str,
    serial: str,
    access_code: str,
    *,
    port: int = DEFAULT_FTPS_PORT,
    fingerprint: str | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Return the names of the files at the root of the printer's storage."""
    ftp = _login(host, port, serial, access_code, fingerprint, timeout)
    try:
        names: list[Any] = ftp.nlst()
    except (OSError, ftplib.Error, EOFError) as err:
        raise BambuFtpError(f"cannot list the printer's storage: {err}") from err
    finally:
        ftp.close()
    return [str(name).rsplit("/", 1)[-1] for name in names]
