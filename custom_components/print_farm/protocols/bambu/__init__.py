"""Bambu Lab printers on the LAN: MQTT over TLS for state and commands, implicit FTPS for files."""

from .camera import DEFAULT_CAMERA_PORT, BambuCamera, fetch_frame
from .client import (
    DEFAULT_MQTT_PORT,
    FIELD_CONNECTION,
    FIELD_CURRENT,
    FIELD_ONLINE,
    FIELD_VERSION,
    BambuClient,
    ConnectionState,
    probe,
)
from .errors import (
    BambuAuthError,
    BambuCameraError,
    BambuCertificateError,
    BambuCommandError,
    BambuConnectionError,
    BambuError,
    BambuFtpError,
    BambuSerialError,
    BambuTimeoutError,
)
from .ftps import DEFAULT_FTPS_PORT, list_files, upload
from .ssdp import DiscoveredPrinter, parse_notify
from .state import (
    GCODE_STATES,
    PRINTING_STATES,
    STAGE_OPTIONS,
    STATUS_OFFLINE,
    Filament,
    PrinterState,
    PrinterVersion,
)

__all__ = [
    "DEFAULT_CAMERA_PORT",
    "DEFAULT_FTPS_PORT",
    "DEFAULT_MQTT_PORT",
    "FIELD_CONNECTION",
    "FIELD_CURRENT",
    "FIELD_ONLINE",
    "FIELD_VERSION",
    "GCODE_STATES",
    "PRINTING_STATES",
    "STAGE_OPTIONS",
    "STATUS_OFFLINE",
    "BambuAuthError",
    "BambuCamera",
    "BambuCameraError",
    "BambuCertificateError",
    "BambuClient",
    "BambuCommandError",
    "BambuConnectionError",
    "BambuError",
    "BambuFtpError",
    "BambuSerialError",
    "BambuTimeoutError",
    "ConnectionState",
    "DiscoveredPrinter",
    "Filament",
    "PrinterState",
    "PrinterVersion",
    "fetch_frame",
    "list_files",
    "parse_notify",
    "probe",
    "upload",
]
