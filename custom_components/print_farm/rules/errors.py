"""Errors of the farm layer that the faces (flows, REST, actions) translate."""

from __future__ import annotations


class SetupError(Exception):
    """A device cannot be added as given; `reason` is the config flow's error key."""

    def __init__(self, reason: str) -> None:
        """Keep the translation key of the reason."""
        super().__init__(reason)
        self.reason = reason
