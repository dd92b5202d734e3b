"""The REST API under /api/print_farm: one module per seed area, their plumbing in `base`.

| module | seed area |
|---|---|
| `printers` | OttoEngine Printers (seed 002); their bodies in `printer_bodies` |
| `ottoeject` | OttoEngine Ottoeject (seed 002) |
| `ottoracks` | OttoEngine OttoRacks (seed 002) |
| `print_jobs` | OttoEngine Print Jobs (seed 002): upload, create, list, get, update, cancel |
| `job_actions` | a job's complete, start, move and workflow decisions; print items; bed-clear |
| `orchestration` | OttoEngine Phase 3 orchestration (seed 002) |
| `v1` | Printernizer jobs and settings (seed 003) |
| `production_runs` | production runs (seed 000) |
| `catalogue` | spools and products (seed 000), and `BooksView`, every books route's base |
| `recipe_runs` | DayZero runs from recipes, recipes (seed 001) |
| `events` | the job events on Home Assistant's bus |
| `shapes` | the JSON Schema helpers the response bodies are declared with |
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey

from ..const import DOMAIN
from .base import FarmView, OpenApiView
from .job_actions import JOB_ACTION_VIEWS
from .orchestration import ORCHESTRATION_VIEWS
from .ottoeject import EJECTOR_VIEWS
from .ottoracks import RACK_VIEWS
from .print_jobs import JOB_VIEWS
from .printers import PRINTER_VIEWS
from .production_runs import PRODUCTION_VIEWS
from .recipe_runs import INVENTORY_VIEWS
from .v1 import V1_VIEWS

VIEWS_REGISTERED: HassKey[bool] = HassKey(f"{DOMAIN}_views")


@callback
def async_register_views(hass: HomeAssistant) -> None:
    """Register every REST view and the OpenAPI document once per Home Assistant run."""
    if hass.data.get(VIEWS_REGISTERED):
        return
    hass.data[VIEWS_REGISTERED] = True
    views: list[type[FarmView]] = [
        *PRINTER_VIEWS,
        *EJECTOR_VIEWS,
        *JOB_VIEWS,
        *JOB_ACTION_VIEWS,
        *RACK_VIEWS,
        *ORCHESTRATION_VIEWS,
        *V1_VIEWS,
        *PRODUCTION_VIEWS,
        *INVENTORY_VIEWS,
    ]
    for view in views:
        hass.http.register_view(view(hass))
    hass.http.register_view(OpenApiView(hass, views))
