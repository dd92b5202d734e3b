"""The exceptions the Moonraker client raises."""

from __future__ import annotations


class MoonrakerError(Exception):
    """Base of every error the Moonraker client raises."""


class MoonrakerConnectionError(MoonrakerError):
    """Moonraker could not be reached, did not answer in time, or the connection broke."""


class MoonrakerAuthError(MoonrakerError):
    """Moonraker refused the request: the API key is wrong or missing (HTTP 401 or 403)."""


class MoonrakerNotReadyError(MoonrakerError):
    """Klipper is not ready: not connected to Moonraker, starting, shut down or in error."""


class MoonrakerBusyError(MoonrakerNotReadyError):
    """A macro is still running, so another one is not sent."""


class MoonrakerUnknownMacroError(MoonrakerError):
    """The device has no G-code macro of that name; nothing was sent."""


class MoonrakerMacroError(MoonrakerError):
    """Klipper answered the macro's script with an error (Moonraker's HTTP 400)."""
