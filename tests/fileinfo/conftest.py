"""The reader imports nothing from Home Assistant: its tests run without a Home Assistant instance."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Replace the suite-wide fixture (which starts Home Assistant for every test) with nothing."""
