"""The exceptions the Bambu Lab client raises."""

from __future__ import annotations


class BambuError(Exception):
    """Base of every error the Bambu client raises."""


class BambuConnectionError(BambuError):
    """The printer could not be reached, or the connection broke."""


class BambuAuthError(BambuError):
    """The printer refused the LAN access code."""


class BambuCertificateError(BambuError, OSError):
    """The printer's certificate is not the one pinned.

    An OSError, so that it fails a connection attempt like any other socket error would.
    """

    def __init__(self, message: str, fingerprint: str | None = None) -> None:
        """Keep the fingerprint the printer presented, so a user can choose to trust it."""
        super().__init__(message)
        self.fingerprint = fingerprint


class BambuSerialError(BambuCertificateError):
    """The printer at this address has another serial number (its certificate's CN)."""

    def __init__(self, message: str, fingerprint: str | None = None, found_serial: str | None = None) -> None:
        """Keep the serial number the certificate names: which printer answered instead."""
        super().__init__(message, fingerprint)
        self.found_serial = found_serial


class BambuTimeoutError(BambuError):
    """The printer did not acknowledge a command in time."""


class BambuCommandError(BambuError):
    """The printer acknowledged a command with a failure."""


class BambuFtpError(BambuError):
    """A file transfer to or from the printer failed."""


class BambuCameraError(BambuError):
    """The printer's camera sent something that is not a frame (too large, or not a JPEG image)."""
