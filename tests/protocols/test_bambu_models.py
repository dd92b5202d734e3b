"""The url project_file names a stored file by, for every model this integration knows and any other."""

from __future__ import annotations

import pytest

from custom_components.print_farm.protocols.bambu.models import MODELS, project_file_url

SDCARD_MODELS = {"X1", "X1C", "X1E", "P1P", "P1S", "A1", "A1 mini"}


@pytest.mark.parametrize("model", [model.name for model in MODELS])
def test_known_models(model: str) -> None:
    url = project_file_url(model, "cube.gcode.3mf")
    assert url == ("file:///sdcard/cube.gcode.3mf" if model in SDCARD_MODELS else "ftp:///cube.gcode.3mf")


@pytest.mark.parametrize(
    ("model", "url"),
    [
        ("Bambu Lab X1 Carbon", "file:///sdcard/a.3mf"),  # any name a model goes by
        ("C12", "file:///sdcard/a.3mf"),
        ("P2S", "ftp:///a.3mf"),  # newer than the table
        ("H2S", "ftp:///a.3mf"),
        (None, "ftp:///a.3mf"),
    ],
)
def test_other_names(model: str | None, url: str) -> None:
    assert project_file_url(model, "a.3mf") == url
