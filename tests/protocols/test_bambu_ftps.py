"""Implicit FTPS to a simulated printer: session reuse, streaming, cleanup of partial files."""

from __future__ import annotations

import asyncio
import ftplib
from pathlib import Path
import socket
import struct
from typing import Any

import pytest

from custom_components.print_farm.protocols.bambu import (
    BambuAuthError,
    BambuCertificateError,
    BambuFtpError,
    list_files,
    upload,
)
from custom_components.print_farm.protocols.bambu.ftps import CHUNK, _ImplicitFTPS
from custom_components.print_farm.protocols.bambu.tls import make_context
from simulator.control import SimulatorControl


async def run(func: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: func(*args, **kwargs))


def target(printer: dict[str, Any]) -> dict[str, Any]:
    return {"port": printer["ftps_port"], "fingerprint": printer["fingerprint"]}


async def test_upload_streams_with_progress(
    tmp_path: Path, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    local = tmp_path / "big.gcode"
    local.write_bytes(b"G1 X1 Y1\n" * (CHUNK // 4))  # a little over two chunks
    seen: list[tuple[int, int]] = []
    sent = await run(
        upload,
        sim_printer["host"],
        sim_printer["serial"],
        sim_printer["access_code"],
        local,
        "big.gcode",
        progress=lambda done, total: seen.append((done, total)),
        **target(sim_printer),
    )
    size = local.stat().st_size
    assert sent == size
    assert seen[-1] == (size, size)
    assert len(seen) == 3  # one callback per chunk: the file was never read whole
    files = {item["name"]: item["size"] for item in (await simulator.printer(sim_printer["serial"]))["files"]}
    assert files["big.gcode"] == size
    names = await run(
        list_files,
        sim_printer["host"],
        sim_printer["serial"],
        sim_printer["access_code"],
        **target(sim_printer),
    )
    assert "big.gcode" in names


async def test_failed_upload_removes_partial_file(
    tmp_path: Path, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    local = tmp_path / "slow.gcode"
    local.write_bytes(b"G1 X1 Y1\n" * (CHUNK // 2))
    with pytest.raises(BambuFtpError, match="longer than"):
        await run(
            upload,
            sim_printer["host"],
            sim_printer["serial"],
            sim_printer["access_code"],
            local,
            "slow.gcode",
            deadline=-1,  # already past after the first chunk
            **target(sim_printer),
        )
    files = [item["name"] for item in (await simulator.printer(sim_printer["serial"]))["files"]]
    assert "slow.gcode" not in files


async def test_wrong_code_and_wrong_certificate(
    tmp_path: Path, simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    local = tmp_path / "a.gcode"
    local.write_bytes(b"G28\n")
    with pytest.raises(BambuAuthError):
        await run(
            upload,
            sim_printer["host"],
            sim_printer["serial"],
            "00000000",
            local,
            "a.gcode",
            **target(sim_printer),
        )
    with pytest.raises(BambuCertificateError):
        await run(
            upload,
            sim_printer["host"],
            sim_printer["serial"],
            sim_printer["access_code"],
            local,
            "a.gcode",
            port=sim_printer["ftps_port"],
            fingerprint="0" * 64,
        )


def _upload_without_session_reuse(printer: dict[str, Any]) -> None:
    class NoReuse(_ImplicitFTPS):
        def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> Any:
            conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
            return self.context.wrap_socket(conn, server_hostname=self.host), size

    ftp = NoReuse(context=make_context(printer["serial"], printer["fingerprint"]), timeout=10)
    ftp.connect(printer["host"], printer["ftps_port"])
    try:
        ftp.login("bblp", printer["access_code"])
        ftp.prot_p()
        ftp.nlst()
    finally:
        ftp.close()


async def test_printer_refuses_data_connection_without_session_reuse(sim_printer: dict[str, Any]) -> None:
    with pytest.raises((ftplib.Error, OSError)):
        await run(_upload_without_session_reuse, sim_printer)


@pytest.mark.parametrize("control", ["reply", "close"])
async def test_upload_broken_mid_file_leaves_nothing_and_the_next_succeeds(
    tmp_path: Path, simulator: SimulatorControl, sim_printer: dict[str, Any], control: str
) -> None:
    local = tmp_path / "broken.gcode"
    local.write_bytes(b"G1 X1 Y1\n" * (CHUNK // 2))  # a little over one chunk
    broken_at = CHUNK // 2
    await simulator.break_next_upload(sim_printer["serial"], broken_at, control)
    arguments = (
        sim_printer["host"],
        sim_printer["serial"],
        sim_printer["access_code"],
        local,
        "broken.gcode",
    )
    with pytest.raises(BambuFtpError):
        await asyncio.to_thread(upload, *arguments, **target(sim_printer))
    # The printer kept what it received (see the next test); the client deleted it.
    details = await simulator.printer(sim_printer["serial"])
    assert details["files"] == []
    assert details["upload_fault"] is None  # spent: the next upload goes through whole
    assert await asyncio.to_thread(upload, *arguments, **target(sim_printer)) == local.stat().st_size
    stored = Path(sim_printer["storage_dir"]) / "broken.gcode"
    assert stored.read_bytes() == local.read_bytes()


def _stor_without_cleanup(printer: dict[str, Any], data: bytes) -> str:
    """STOR as the client does (TCP half-close, no close_notify); return the answer, or "closed"."""
    ftp = _ImplicitFTPS(context=make_context(printer["serial"], printer["fingerprint"]), timeout=10)
    ftp.connect(printer["host"], printer["ftps_port"])
    try:
        ftp.login("bblp", printer["access_code"])
        ftp.prot_p()
        ftp.voidcmd("TYPE I")
        with ftp.transfercmd("STOR partial.gcode") as conn:
            try:
                conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the printer reset the data connection while we were sending
            try:
                return ftp.getresp()
            except ftplib.Error as err:
                return str(err)
            except (EOFError, OSError):
                return "closed"
    finally:
        ftp.close()


@pytest.mark.parametrize(("control", "expected"), [("reply", "426"), ("close", "closed")])
async def test_printer_breaks_the_upload_and_keeps_the_partial_file(
    simulator: SimulatorControl, sim_printer: dict[str, Any], control: str, expected: str
) -> None:
    await simulator.break_next_upload(sim_printer["serial"], 1000, control)
    answer = await asyncio.to_thread(_stor_without_cleanup, sim_printer, b"G28\n" * 100_000)
    assert answer.startswith(expected)
    # vsftpd on the printers keeps a failed upload's partial file: cleaning up is the client's job.
    assert (await simulator.printer(sim_printer["serial"]))["files"] == [
        {"name": "partial.gcode", "size": 1000}
    ]


def _stor_then_reset(printer: dict[str, Any], data: bytes) -> str:
    """Send part of a file, then drop the data connection with a TCP reset, as a dying client can."""
    ftp = _ImplicitFTPS(context=make_context(printer["serial"], printer["fingerprint"]), timeout=10)
    ftp.connect(printer["host"], printer["ftps_port"])
    try:
        ftp.login("bblp", printer["access_code"])
        ftp.prot_p()
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("STOR died.gcode")
        conn.sendall(data)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        try:
            return ftp.getresp()
        except ftplib.Error as err:
            return str(err)
    finally:
        ftp.close()


async def test_a_reset_mid_file_is_not_taken_for_a_whole_file(
    simulator: SimulatorControl, sim_printer: dict[str, Any]
) -> None:
    # A FIN mid-file reads as the end of the file, on the printers as here (the client ends every
    # upload with a plain half-close): only a reset can be told apart, and it must not answer 226.
    answer = await asyncio.to_thread(_stor_then_reset, sim_printer, b"G28\n" * 1000)
    assert answer.startswith("426")
