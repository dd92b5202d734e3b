"""OttoEject plate robots: Klipper behind Moonraker's HTTP API (status polling and G-code macros)."""

from .client import (
    DEFAULT_ACK_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_REQUEST_TIMEOUT,
    EjectorState,
    EjectorStatus,
    MacroOutcome,
    MoonrakerClient,
    macro_script,
)
from .errors import (
    MoonrakerAuthError,
    MoonrakerBusyError,
    MoonrakerConnectionError,
    MoonrakerError,
    MoonrakerMacroError,
    MoonrakerNotReadyError,
    MoonrakerUnknownMacroError,
)
from .watch import MoonrakerWatcher

__all__ = [
    "DEFAULT_ACK_TIMEOUT",
    "DEFAULT_PORT",
    "DEFAULT_REQUEST_TIMEOUT",
    "EjectorState",
    "EjectorStatus",
    "MacroOutcome",
    "MoonrakerAuthError",
    "MoonrakerBusyError",
    "MoonrakerClient",
    "MoonrakerConnectionError",
    "MoonrakerError",
    "MoonrakerMacroError",
    "MoonrakerNotReadyError",
    "MoonrakerUnknownMacroError",
    "MoonrakerWatcher",
    "macro_script",
]
