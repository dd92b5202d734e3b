"""Farm-wide settings: kept as the hub entry's options, shared by the options flow, REST and the switch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import voluptuous as vol

AUTO_CREATE: Final = "job_creation_auto_create"
NOTIFY_AUTO_CREATED: Final = "job_creation_notify"
DEDUP_MINUTES: Final = "job_creation_dedup_minutes"
MAX_UPLOAD_MB: Final = "max_upload_mb"
WATCHDOG_SECONDS: Final = "printer_offline_after_s"
SPOOL_LOW_GRAMS: Final = "spool_low_threshold_grams"
JOB_PROCESSING: Final = "job_processing_enabled"
# The ejection workflow: the longest wait for a bed to cool, release temperatures by material (°C,
# over rules/workflow.py's table), and what happens to the plate of a failed print ("hold" it for a
# person, or "eject" and store it like any other).
MAX_COOLING_MINUTES: Final = "eject_max_cooling_minutes"
RELEASE_TEMPERATURES: Final = "eject_release_temperatures"
FAILED_PLATE: Final = "failed_plate"
HOLD: Final = "hold"
EJECT: Final = "eject"
# The books that follow the prints: each automatically created or orchestrated job opens a
# production run of its own, and what an hour of a printer costs (in the farm's currency).
JOB_RUN_AUTO_OPEN: Final = "job_run_auto_open"
MACHINE_COST_PER_HOUR: Final = "machine_cost_per_hour"
# Copy the farm's English sentences into <config>/custom_sentences/en/ for the built-in voice agent.
INSTALL_VOICE_SENTENCES: Final = "install_voice_sentences"

DEFAULTS: Final[dict[str, Any]] = {
    AUTO_CREATE: True,
    NOTIFY_AUTO_CREATED: False,
    DEDUP_MINUTES: 5,
    MAX_UPLOAD_MB: 1024,
    WATCHDOG_SECONDS: 60,
    SPOOL_LOW_GRAMS: 100,
    JOB_PROCESSING: True,
    MAX_COOLING_MINUTES: 30,
    RELEASE_TEMPERATURES: {},
    FAILED_PLATE: HOLD,
    JOB_RUN_AUTO_OPEN: False,
    MACHINE_COST_PER_HOUR: 0,
    INSTALL_VOICE_SENTENCES: False,
}


def _whole(low: int, high: int) -> Callable[[Any], int]:
    """A whole number in range; not a bool (`vol.All(int, ...)` takes True as 1), not 5.0."""

    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected a whole number")
        if not low <= value <= high:
            raise vol.Invalid(f"must be from {low} to {high}")
        return int(value)

    validate.openapi = {"type": "integer", "minimum": low, "maximum": high}  # type: ignore[attr-defined]
    return validate


def _degrees(value: Any) -> float:
    """A temperature in °C, 15 to 110: a JSON number, not a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid("expected a number")
    if not 15 <= value <= 110:  # also refuses NaN
        raise vol.Invalid("must be from 15 to 110")
    return float(value)


_degrees.openapi = {"type": "number", "minimum": 15, "maximum": 110}  # type: ignore[attr-defined]


def _hourly_cost(value: Any) -> float | int:
    """Money per hour, 0 to 10000, at most 4 decimal places: a JSON number, not a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid("expected a number")
    if not 0 <= value <= 10000:  # also refuses NaN
        raise vol.Invalid("must be from 0 to 10000")
    return value if isinstance(value, int) else round(value, 4)


_hourly_cost.openapi = {"type": "number", "minimum": 0, "maximum": 10000}  # type: ignore[attr-defined]

# Every setting's validator; PUT and the options flow take any subset.
FIELDS: Final = {
    AUTO_CREATE: bool,
    NOTIFY_AUTO_CREATED: bool,
    DEDUP_MINUTES: _whole(1, 60),
    MAX_UPLOAD_MB: _whole(1, 10240),
    WATCHDOG_SECONDS: _whole(15, 3600),
    SPOOL_LOW_GRAMS: _whole(0, 10000),
    JOB_PROCESSING: bool,
    MAX_COOLING_MINUTES: _whole(0, 240),
    RELEASE_TEMPERATURES: vol.Schema({vol.All(str, vol.Length(min=1, max=20)): _degrees}),
    FAILED_PLATE: vol.In([HOLD, EJECT]),
    JOB_RUN_AUTO_OPEN: bool,
    MACHINE_COST_PER_HOUR: _hourly_cost,
    INSTALL_VOICE_SENTENCES: bool,
}
UPDATE_SCHEMA: Final = vol.Schema({vol.Optional(key): validator for key, validator in FIELDS.items()})


def settings_of(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting, the stored value or its default."""
    return {key: options.get(key, default) for key, default in DEFAULTS.items()}
