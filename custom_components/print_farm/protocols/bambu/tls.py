"""TLS for Bambu Lab printers: trust on first use, pinned by SHA-256 fingerprint.

A printer's certificate names its serial number as CN and is not signed by any authority a
client trusts, so we pin the fingerprint seen at setup and refuse any other, before a password
is ever sent. The check runs inside the handshake of every socket made from the context.
"""

from __future__ import annotations

import hashlib
import socket
import ssl

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import BambuCertificateError, BambuConnectionError, BambuSerialError


def fingerprint_of(der: bytes) -> str:
    """Return the SHA-256 fingerprint of a DER certificate as lowercase hex."""
    return hashlib.sha256(der).hexdigest()


def common_name_of(der: bytes) -> str | None:
    """Return the subject CN of a DER certificate."""
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


class PinnedSSLSocket(ssl.SSLSocket):
    """An SSL socket that checks the peer against its context's pin right after the handshake."""

    def do_handshake(self, block: bool = False) -> None:
        """Handshake, then refuse the peer unless it is the pinned printer."""
        super().do_handshake(block)
        context = self.context
        if isinstance(context, PinnedContext):
            der = self.getpeercert(binary_form=True)
            try:
                context.check(der)
            except BambuCertificateError as err:
                # Kept for the owner: paho reports a failed connect without its cause.
                context.last_error = err
                self.close()
                raise


class PinnedContext(ssl.SSLContext):
    """A client context that accepts exactly one printer: its serial as CN and, once known, its fingerprint."""

    sslsocket_class = PinnedSSLSocket
    serial: str
    fingerprint: str | None
    last_error: BambuCertificateError | None = None

    def check(self, der: bytes | None) -> None:
        """Raise BambuCertificateError unless the certificate is the pinned one."""
        if not der:
            raise BambuCertificateError("the printer presented no certificate")
        seen = fingerprint_of(der)
        if (found := common_name_of(der)) != self.serial:
            raise BambuSerialError(f"another printer answers (serial number {found})", seen, found)
        if self.fingerprint is not None and seen != self.fingerprint:
            raise BambuCertificateError("the printer's certificate changed", seen)


def make_context(serial: str, fingerprint: str | None) -> PinnedContext:
    """Build the client context for one printer; a None fingerprint accepts the first one seen (setup)."""
    context = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    # The chain cannot be verified against an authority; the pin replaces that check.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.serial = serial
    context.fingerprint = fingerprint
    return context


def fetch_fingerprint(host: str, port: int, serial: str, timeout: float = 10.0) -> str:
    """Connect once and return the printer's certificate fingerprint after checking its CN (blocking)."""
    context = make_context(serial, None)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except BambuCertificateError:
        raise
    except (OSError, ssl.SSLError, ValueError) as err:  # ValueError: a host name that cannot be encoded
        raise BambuConnectionError(f"cannot reach {host}:{port}: {err.__class__.__name__}") from err
    assert der is not None  # checked by the context during the handshake
    return fingerprint_of(der)
