"""The printers' self-signed certificates, loopback ports, and one mosquitto broker per printer."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import datetime
import hashlib
import os
from pathlib import Path
import pwd
import shutil
import signal
import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
SETPRIV = shutil.which("setpriv")


class BrokerError(RuntimeError):
    """mosquitto could not be started or reconfigured."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A printer's certificate and key on disk."""

    cert_file: Path
    key_file: Path
    fingerprint: str

    def server_context(self) -> ssl.SSLContext:
        """Return a TLS 1.2+ server context presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def create_certificate(directory: Path, common_name: str) -> Certificate:
    """Write a new EC P-256 key and a self-signed certificate (CN = common_name, 10 years) to directory."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "printer.key", directory / "printer.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = cert.public_bytes(serialization.Encoding.DER)
    return Certificate(cert_file, key_file, hashlib.sha256(der).hexdigest())


def load_certificate(directory: Path, common_name: str) -> Certificate | None:
    """Return the certificate kept in directory if there is one naming common_name."""
    key_file, cert_file = directory / "printer.key", directory / "printer.crt"
    if not (key_file.exists() and cert_file.exists()):
        return None
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != common_name:
        return None
    der = cert.public_bytes(serialization.Encoding.DER)
    return Certificate(cert_file, key_file, hashlib.sha256(der).hexdigest())


def port_is_free(host: str, port: int) -> bool:
    """Return whether a TCP listener could bind host:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """Return a TCP port the kernel considers free on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def dying_with_parent(command: list[str]) -> list[str]:
    """Prefix command so Linux SIGTERMs it when the thread that starts it dies (no orphans).

    util-linux's setpriv sets the parent-death signal and then runs the command; without it
    (not Linux) the command runs as is and relies on a clean stop.
    """
    return [SETPRIV, "--pdeathsig", "TERM", "--", *command] if SETPRIV else command


def _connect_packet(username: str, password: str) -> bytes:
    """Return an MQTT 3.1.1 CONNECT packet with a username and password."""

    def field(text: str) -> bytes:
        data = text.encode()
        return len(data).to_bytes(2, "big") + data

    body = field("MQTT") + bytes([4, 0xC2, 0, 30]) + field("sim-probe") + field(username) + field(password)
    length, encoded = len(body), b""
    while True:
        length, digit = divmod(length, 128)
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            return b"\x10" + encoded + body


class MosquittoBroker:
    """One mosquitto process listening with TLS on host:port, with password logins only."""

    def __init__(self, directory: Path, host: str, port: int, certificate: Certificate) -> None:
        """Prepare a broker whose config, password file and log live in directory."""
        self.directory = directory
        self.host = host
        self.port = port
        self.certificate = certificate
        self._users: dict[str, str] = {}
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        """Return whether the mosquitto process is alive."""
        return self._process is not None and self._process.returncode is None

    async def set_users(self, users: dict[str, str]) -> None:
        """Replace the accepted logins; a running broker reloads them before this returns."""
        self._users = dict(users)
        await self._write_password_file()
        if self.running and self._process is not None:
            self._process.send_signal(signal.SIGHUP)
            # The reload is done once every login works with its new password.
            for user, password in self._users.items():
                await self._wait_for_login(user, password)

    async def start(self) -> None:
        """Start mosquitto and return once it accepts logins."""
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        await self._write_password_file()
        config = self.directory / "mosquitto.conf"
        config.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    "allow_anonymous false",
                    f"password_file {self.directory / 'passwd'}",
                    "persistence false",
                    f"log_dest file {self.directory / 'mosquitto.log'}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    # Only matters when run as root: keep our uid so the key file stays readable.
                    f"user {pwd.getpwuid(os.getuid()).pw_name}",
                    f"listener {self.port} {self.host}",
                    f"certfile {self.certificate.cert_file}",
                    f"keyfile {self.certificate.key_file}",
                    "tls_version tlsv1.2",
                    "",
                ]
            )
        )
        with (self.directory / "mosquitto.stderr").open("ab") as stderr:
            self._process = await asyncio.create_subprocess_exec(
                *dying_with_parent([MOSQUITTO, "-c", str(config)]),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        user, password = next(iter(self._users.items()))
        await self._wait_for_login(user, password)

    async def stop(self) -> None:
        """Stop mosquitto; every client connection closes."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def restart(self, certificate: Certificate | None = None) -> None:
        """Stop and start mosquitto on the same port, optionally with a new certificate."""
        await self.stop()
        if certificate is not None:
            self.certificate = certificate
        await self.start()

    async def _write_password_file(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / "passwd"
        scratch = self.directory / "passwd.new"
        scratch.unlink(missing_ok=True)
        scratch.touch(mode=0o600)
        for user, password in self._users.items():
            process = await asyncio.create_subprocess_exec(
                MOSQUITTO_PASSWD,
                "-b",
                str(scratch),
                user,
                password,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, error = await process.communicate()
            if process.returncode:
                raise BrokerError(f"mosquitto_passwd failed: {error.decode(errors='replace').strip()}")
        # Replace atomically so a reloading broker never reads half a file.
        scratch.replace(target)

    async def _wait_for_login(self, user: str, password: str, timeout: float = 10.0) -> None:
        """Poll until user can log in, or raise BrokerError with mosquitto's own words."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._process is None or self._process.returncode is not None:
                break
            if await self._login_accepted(user, password):
                return
            await asyncio.sleep(0.05)
        log = ""
        for name in ("mosquitto.stderr", "mosquitto.log"):
            with contextlib.suppress(OSError):
                log += (self.directory / name).read_text(errors="replace")[-2000:]
        raise BrokerError(f"mosquitto on {self.host}:{self.port} did not accept {user}: {log.strip()}")

    async def _login_accepted(self, user: str, password: str) -> bool:
        """Try one MQTT login over TLS; True if the broker answered CONNACK 0."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            async with asyncio.timeout(2):
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=context)
                try:
                    writer.write(_connect_packet(user, password))
                    await writer.drain()
                    connack = await reader.readexactly(4)
                    if connack[3] == 0:
                        writer.write(b"\xe0\x00")  # DISCONNECT, so the broker logs no error
                        await writer.drain()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError, ssl.SSLError):
                        await writer.wait_closed()
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            return False
        return connack[0] == 0x20 and connack[3] == 0
