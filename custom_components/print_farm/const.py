"""Constants of the Print Farm integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "print_farm"
LOGGER = logging.getLogger(__package__)

SUBENTRY_PRINTER: Final = "printer"
SUBENTRY_RACK: Final = "rack"
SUBENTRY_OTTOEJECT: Final = "ottoeject"

CONF_SERIAL: Final = "serial"
CONF_ACCESS_CODE: Final = "access_code"
CONF_MQTT_PORT: Final = "mqtt_port"
CONF_FTPS_PORT: Final = "ftps_port"
CONF_CAMERA_PORT: Final = "camera_port"
CONF_FINGERPRINT: Final = "fingerprint"
CONF_MODEL: Final = "model"
CONF_FIRMWARE: Final = "firmware"
CONF_DISCOVERY_HOST: Final = "discovery_host"
CONF_DISCOVERY_PORT: Final = "discovery_port"
CONF_UPLOAD_DIRS: Final = "allowed_upload_dirs"

# How often silent printers are checked (the client marks them offline after 60 s).
WATCHDOG_INTERVAL_SECONDS: Final = 10

# A printer's OttoEject (its subentry id), its position there (the macro suffix, like "P1"), the
# G-code that moves its bed out of the way before ejection, and how long that move takes (s).
# A rack names its OttoEject with the same key.
CONF_OTTOEJECT: Final = "ottoeject"
CONF_POSITION: Final = "ottoeject_position"
CONF_EJECT_GCODE: Final = "eject_gcode"
CONF_SETTLE: Final = "settle_s"
