"""The job rules without Home Assistant: which print a job stands for, and what a deleted job blocks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from custom_components.print_farm.rules.files import sanitize_filename
from custom_components.print_farm.rules.jobs import (
    Dismissed,
    PrintJob,
    SeenPrint,
    iso,
    normalise_filename,
    printed_file,
    stands_for,
    start_to_bind,
    unseen_end,
)

START = 1_767_261_600  # 2026-01-01 10:00 UTC
WINDOW = 5 * 60


def job(**values: object) -> PrintJob:
    return PrintJob(
        id=1, print_item_id=None, printer_id=1, ottoeject_id=None, priority=1, auto_start=False, **values
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", ["cache/bracket.3mf", "BRACKET.gcode.3mf", "/sdcard/Bracket.gcode"])
def test_the_same_print_under_another_name_variant(variant: str) -> None:
    bound = job(printer_start_time=START)
    assert stands_for(
        bound, "Bracket.gcode.3mf", SeenPrint(normalise_filename(variant), START), START, WINDOW
    )


def test_a_reprint_is_another_print_whatever_the_window() -> None:
    failed = job(status="FAILED", printer_start_time=START)
    reprint = SeenPrint("bracket", START + 90)
    assert not stands_for(failed, "Bracket.gcode.3mf", reprint, START + 90, WINDOW)
    assert not stands_for(failed, "Other.3mf", SeenPrint("bracket", START), START, WINDOW)


def test_the_minute_rule_only_without_a_start_time() -> None:
    started = job(started_at=iso(datetime.fromtimestamp(START, UTC)))
    unknown = SeenPrint("bracket", None)
    assert stands_for(started, "bracket.3mf", unknown, START + WINDOW, WINDOW)
    assert not stands_for(started, "bracket.3mf", unknown, START + WINDOW + 1, WINDOW)
    # The printer gives a start time, the job has none of its own: not the same print.
    assert not stands_for(started, "bracket.3mf", SeenPrint("bracket", START), START, WINDOW)


def test_another_print_than_the_bound_one() -> None:
    bound = SeenPrint("widget", START)
    assert SeenPrint("widget", START + 1).is_other_than(bound)
    assert not SeenPrint("widget", START).is_other_than(bound)
    # Two start times decide alone: a report may carry a new name before or after its new start.
    assert not SeenPrint("gear", START).is_other_than(bound)
    assert SeenPrint("gear", None).is_other_than(bound)
    # Unknowns decide nothing: a job not yet bound to a start, a report naming no file.
    assert not SeenPrint("widget", START).is_other_than(SeenPrint("widget", None))
    assert not SeenPrint("", START).is_other_than(SeenPrint("widget", START))
    assert SeenPrint("gear", START).is_other_than(SeenPrint("widget", None))


def test_a_dismissed_mark_covers_its_print_only() -> None:
    mark = Dismissed(SeenPrint("widget", START), seen_running=True)
    assert SeenPrint("widget", START).is_dismissed_by(mark)
    assert not SeenPrint("widget", START + 90).is_dismissed_by(mark)
    assert not SeenPrint("gear", START).is_dismissed_by(mark)
    assert SeenPrint("widget", None).is_dismissed_by(mark)
    assert SeenPrint("widget", START + 90).is_dismissed_by(
        Dismissed(SeenPrint("widget", None), seen_running=True)
    )


def test_a_dismissed_mark_lasts_as_long_as_its_print() -> None:
    # Deleted right after its start: stale reports of the previous print do not end the mark.
    mark = Dismissed(SeenPrint("widget", START), seen_running=False)
    assert not mark.outlived(False, SeenPrint("older", START - 600))
    assert not mark.outlived(True, SeenPrint("widget", START))
    assert mark.seen_running
    assert mark.outlived(False, SeenPrint("widget", START))  # seen running, then ended
    # Another print running ends it at once.
    assert Dismissed(SeenPrint("widget", START), seen_running=False).outlived(
        True, SeenPrint("gear", START + 60)
    )


@pytest.mark.parametrize(
    ("gcode_file", "subtask", "expected"),
    [
        ("/data/Metadata/plate_1.gcode", "Bracket", ("Bracket", "Bracket.3mf")),
        ("/data/Metadata/plate_2.gcode", "Part.3MF", ("Part.3MF", "Part.3MF")),
        ("Widget.gcode.3mf", "Widget", ("Widget", "Widget.gcode.3mf")),
        ("cube.gcode", None, ("cube", "cube.gcode")),
        (None, None, (None, None)),
        ("", "  ", (None, None)),
    ],
)
def test_the_file_a_printer_reports(gcode_file: str | None, subtask: str | None, expected: tuple) -> None:
    assert printed_file(gcode_file, subtask) == expected


def test_a_job_binds_to_its_own_start_only() -> None:
    sent = job(remote_filename="Widget.gcode.3mf", start_time_before=START - 3600)
    # The first report after the start may still show the previous print's start: never bound.
    assert start_to_bind(sent, "Widget.gcode.3mf", SeenPrint("widget", START - 3600)) is None
    assert start_to_bind(sent, "Widget.gcode.3mf", SeenPrint("gear", START)) is None
    assert start_to_bind(sent, "Widget.gcode.3mf", SeenPrint("widget", None)) is None
    assert start_to_bind(sent, "Widget.gcode.3mf", SeenPrint("widget", START)) == START
    assert start_to_bind(sent, "Widget.gcode.3mf", SeenPrint("", START)) == START
    assert start_to_bind(job(printer_start_time=START), "x", SeenPrint("x", START + 5)) is None


def test_an_unseen_end_is_what_the_last_report_knew() -> None:
    assert unseen_end(job(progress_percent=100)) == "COMPLETED"
    assert unseen_end(job(progress_percent=99)) == "FAILED"


def test_iso_treats_a_naive_instant_as_utc() -> None:
    assert iso(datetime(2026, 1, 1, 10, 0)) == "2026-01-01T10:00:00.000Z"
    assert iso(datetime(2026, 1, 1, 10, 0, tzinfo=UTC)) == "2026-01-01T10:00:00.000Z"


def test_names_that_are_not_ascii_stay_distinct_on_the_printer() -> None:
    """Two CJK names no longer collapse to `gcode.3mf` (one overwriting the other on the printer)."""
    cube, sphere = sanitize_filename("立方体.gcode.3mf"), sanitize_filename("球体.gcode.3mf")
    assert cube != sphere
    assert cube.endswith(".gcode.3mf")
    assert cube.isascii()
    assert sphere.isascii()
    assert sanitize_filename("立方体.gcode.3mf") == cube  # sent again, it replaces only itself
    assert sanitize_filename("Würfel.gcode.3mf") != sanitize_filename("Wurfel.gcode.3mf")
    assert sanitize_filename("Wurfel.gcode.3mf") == "Wurfel.gcode.3mf"  # ASCII names as they were
    assert sanitize_filename("кубик.3mf").endswith(".3mf")
    assert sanitize_filename("../../x.gcode") == "x.gcode"
