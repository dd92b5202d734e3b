"""Print Farm: run a 3D-print farm from Home Assistant.

The package is a Home Assistant integration and also holds libraries that need no Home Assistant
(`fileinfo/`, `protocols/`, `rules/`). Python runs this file before any of them, so it imports
Home Assistant only when Home Assistant is already loaded: then the entry points in
`integration.py` are loaded here, in Home Assistant's import executor, as any integration's are.
Otherwise (the fileinfo command, a script using the rules) they load on first use (PEP 562); a
process that imports a library of this package before Home Assistant and then runs Home Assistant
would load them in the event loop, which Home Assistant itself never does.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING or "homeassistant" in sys.modules:
    from .integration import (
        CONFIG_SCHEMA,
        async_remove_config_entry_device,
        async_remove_entry,
        async_setup,
        async_setup_entry,
        async_unload_entry,
    )

# What Home Assistant looks up on an integration.
__all__ = [
    "CONFIG_SCHEMA",
    "async_remove_config_entry_device",
    "async_remove_entry",
    "async_setup",
    "async_setup_entry",
    "async_unload_entry",
]


def __getattr__(name: str) -> Any:
    """Load an entry point on first use, when Home Assistant was not loaded before this package."""
    if name in __all__:
        from . import integration

        return getattr(integration, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
