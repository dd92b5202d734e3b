"""The command line: one JSON object per file and line, exit status 1 when any file failed."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest

from .helpers import SAMPLES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "entry",
    [
        ["-m", "custom_components.print_farm.fileinfo"],  # through the package (no Home Assistant)
        ["custom_components/print_farm/fileinfo"],  # the reader on its own
    ],
    ids=["module", "directory"],
)
def test_good_and_garbage(tmp_path: Path, entry: list[str]) -> None:
    garbage = tmp_path / "garbage.gcode"
    garbage.write_bytes(bytes(range(256)) * 100)
    good = SAMPLES / "prusaslicer_2.8_two_tools.gcode"
    result = subprocess.run(
        [sys.executable, *entry, str(good), str(garbage)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(garbage)]
    first, second = lines
    assert (first["slicer"], first["slicer_version"], first["estimated_time_s"]) == (
        "PrusaSlicer",
        "2.8.1",
        3723,
    )
    assert (first["layer_count"], first["filament_g"], first["filament_mm"], first["plates"]) == (
        4,
        0.47,
        155.6,
        [],
    )
    assert [t["size"] for t in first["thumbnails"]] == [79, 92, None]
    assert "data" not in first["thumbnails"][0]
    assert second == {"file": str(garbage), "error": "not a G-code, bgcode or 3MF file (binary data)"}


def test_all_good_and_usage() -> None:
    command = [sys.executable, "custom_components/print_farm/fileinfo"]
    result = subprocess.run(
        [*command, str(SAMPLES / "cura_5.6_marlin.gcode")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["slicer"] == "Cura"
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "usage" in result.stderr
