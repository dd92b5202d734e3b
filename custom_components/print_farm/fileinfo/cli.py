"""The command line: one JSON object per file and line; exit status 1 if any file failed."""

from __future__ import annotations

import json
import sys

from .model import FileInfoError
from .reader import read_file_info

USAGE = """usage: python -m custom_components.print_farm.fileinfo [--no-layer-scan] FILE...

Prints, for each FILE, one line of JSON: {"file": FILE, ...what the slicer states...}, or
{"file": FILE, "error": "..."} when it cannot be read (the exit status is then 1).
Thumbnails are described (size, format, where they are), not included.
--no-layer-scan: do not scan the file for layer markers when it does not state its layer count.
"""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else argv
    count_layers = "--no-layer-scan" not in arguments
    files = [argument for argument in arguments if argument != "--no-layer-scan"]
    if not files or any(argument in ("-h", "--help") for argument in files):
        sys.stderr.write(USAGE)
        return 0 if files else 2
    failed = False
    for file in files:
        try:
            line = {"file": file, **read_file_info(file, count_layers=count_layers).to_json_dict()}
        except FileInfoError as err:
            line = {"file": file, "error": str(err)}
            failed = True
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 1 if failed else 0
