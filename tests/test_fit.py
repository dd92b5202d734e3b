"""Which printer can print a file, and the AMS mapping its start carries (rules/fit.py, rules/dispatch.py)."""

from __future__ import annotations

import pytest

from custom_components.print_farm.protocols.bambu.client import ams_mapping2
from custom_components.print_farm.protocols.bambu.models import canonical_model
from custom_components.print_farm.rules.dispatch import ANY_BUSY, PrinterReadiness, plan
from custom_components.print_farm.rules.fit import (
    FileFacts,
    Fit,
    Loaded,
    PrinterFacts,
    ams_mapping,
    file_facts,
    fit,
)
from custom_components.print_farm.rules.jobs import PrintJob

TRAYS = (
    Loaded(0, "PLA", "#FFFFFF"),
    Loaded(2, "PETG", "#F95959"),
    Loaded(3, "PLA", "#00AE42"),
    Loaded(128, "ABS", "#000000"),  # an AMS HT
    Loaded(254, "PLA", "#161616"),  # the external spool
)


def facts(model: str = "P1S", nozzle: float = 0.4, trays: tuple[Loaded, ...] = TRAYS) -> PrinterFacts:
    return PrinterFacts(model, nozzle, trays)


def project(
    *filaments: tuple[int, str | None, str | None], model: str | None = "P1S", nozzle: float = 0.4
) -> FileFacts:
    return FileFacts("gcode.3mf", model, model is not None, nozzle, tuple(filaments))


def test_the_mapping_has_one_entry_per_project_filament() -> None:
    assert ams_mapping([(1, "PLA", "#00AE42"), (3, "PETG", None)], TRAYS) == [3, -1, 2]
    assert ams_mapping([(1, "abs", "#000000")], TRAYS) == [128]
    assert ams_mapping([(2, "PLA", "#161616")], TRAYS) == [-1, 254]
    # The AMS before the external spool, lower slots first.
    assert ams_mapping([(1, "PLA", None)], TRAYS) == [0]


def test_the_newer_form_names_unit_and_slot() -> None:
    """`ams_mapping2`, sent beside `ams_mapping`: what H2 firmware reads."""
    assert ams_mapping2([3, -1, 2, 128, 254, 255, 13]) == [
        {"ams_id": 0, "slot_id": 3},
        {"ams_id": 255, "slot_id": 255},
        {"ams_id": 0, "slot_id": 2},
        {"ams_id": 128, "slot_id": 0},
        {"ams_id": 254, "slot_id": 0},
        {"ams_id": 255, "slot_id": 0},
        {"ams_id": 3, "slot_id": 1},
    ]
    assert ams_mapping2([]) == []


def test_what_is_missing_is_said() -> None:
    assert ams_mapping([(1, "TPU", None)], TRAYS) == "no TPU loaded"
    assert ams_mapping([(1, "PLA", "#FF0000")], TRAYS) == "no PLA in #FF0000 loaded"


def test_use_ams_only_when_the_mapping_uses_it() -> None:
    assert fit(project((1, "PLA", "#00AE42")), facts()) == Fit([3], True)
    assert fit(project((1, "PLA", "#161616")), facts()) == Fit([254], False)
    plain = FileFacts("gcode", None, False, None, ((1, "PLA", None),))
    assert fit(plain, facts(trays=())) == Fit(None, False)  # G-code prints with what the printer feeds


@pytest.mark.parametrize(
    ("file", "printer", "reason"),
    [
        (project((1, "PLA", None), model="A1"), facts("P1S"), "it was sliced for A1, not P1S"),
        (
            project((1, "PLA", None), nozzle=0.6),
            facts(),
            "it was sliced for a 0.6 mm nozzle, the printer has 0.4 mm",
        ),
        (
            FileFacts("bgcode", None, False, None, ()),
            facts(),
            "a binary G-code file does not print on a Bambu Lab printer",
        ),
        (project((1, "PLA", None), model="Prusa MK4"), facts(), "it was sliced for Prusa MK4, not P1S"),
    ],
)
def test_a_printer_that_cannot_print_a_file_says_why(
    file: FileFacts, printer: PrinterFacts, reason: str
) -> None:
    assert fit(file, printer) == reason


def test_swappable_models() -> None:
    assert isinstance(fit(project((1, "PLA", None), model="P1P"), facts("P1S")), Fit)
    assert isinstance(fit(project((1, "PLA", None), model="X1"), facts("X1C")), Fit)
    assert isinstance(fit(project((1, "PLA", None), model="X1C"), facts("X1E")), str)


def test_every_name_of_a_model() -> None:
    for name in ("BL-P001", "3DPrinter-X1-Carbon", "Bambu Lab X1 Carbon", "x1c", "X1  Carbon"):
        assert canonical_model(name) == "X1C"
    assert canonical_model("C12") == canonical_model("Bambu Lab P1S") == "P1S"
    assert canonical_model("Original Prusa MK4") is None


def test_file_facts_of_a_plate() -> None:
    info = {
        "file_format": "gcode.3mf",
        "printer_model": "Bambu Lab P1S",
        "nozzle_diameter_mm": 0.4,
        "plates": [
            {
                "index": 1,
                "filaments": [{"tool": 0, "grams": 3.0, "mm": 1.0, "material": "PLA", "color": "#00AE42"}],
            },
            {
                "index": 2,
                "filaments": [
                    {"tool": 0, "grams": 0, "mm": 0, "material": "PLA", "color": "#00AE42"},
                    {"tool": 1, "grams": 5.0, "mm": 2.0, "material": "PETG", "color": "#F95959"},
                ],
            },
        ],
    }
    assert file_facts(info, 2, canonical_model) == FileFacts(
        "gcode.3mf", "P1S", True, 0.4, ((2, "PETG", "#F95959"),)
    )


READY = PrinterReadiness(online=True, busy=False, bed_clear=True)
BUSY = PrinterReadiness(online=True, busy=True, bed_clear=True)


def job(job_id: int, printer_id: int | None = None, item: int = 1) -> PrintJob:
    return PrintJob(
        id=job_id, print_item_id=item, printer_id=printer_id, ottoeject_id=None, priority=1, auto_start=True
    )


def test_jobs_for_any_printer_go_where_they_fit() -> None:
    # Item 1 prints on printers 2 and 3 only; item 2 on no printer; item 3 everywhere.
    def check(candidate: PrintJob, printer_id: int) -> Fit | str:
        if candidate.print_item_id == 2:
            return "no PETG loaded"
        if candidate.print_item_id == 3:
            return Fit(None, False)
        return Fit(None, False) if printer_id in (2, 3) else "it was sliced for P1S, not A1"

    printers = {1: READY, 2: READY, 3: BUSY}
    decision = plan(
        [job(1), job(2), job(3, item=2), job(4, printer_id=1, item=3)], printers, enabled=True, fit=check
    )
    assert decision.printers == {1: 2, 4: 1}
    assert decision.waiting == {2: ANY_BUSY, 3: "no printer can print it: no PETG loaded"}
    pinned = plan([job(5, printer_id=1)], printers, enabled=True, fit=lambda _job, _printer: "no PLA loaded")
    assert pinned.waiting == {5: "its printer cannot print it: no PLA loaded"}


def test_what_the_gcode_store_says_of_a_step() -> None:
    """Moonraker's G-code store answers whether a marked script arrived, without comparing clocks."""
    from custom_components.print_farm.rules.workflow import FAILED, NEVER, RECEIVED, anchor_of, resolve

    before = [
        {"message": "G28", "time": 900.0, "type": "command"},
        {"message": "ok", "time": 901.0, "type": "response"},
    ]
    anchor = anchor_of(before)
    mark = "pf-step=7-eject-1"
    sent = [
        *before,
        {"message": f"EJECT_FROM_P1 ; {mark}", "time": 5.0, "type": "command"},
    ]  # a clock gone back
    assert resolve(sent, mark, anchor) == RECEIVED
    failed = [*sent, {"message": "!! Move out of range", "time": 6.0, "type": "response"}]
    assert resolve(failed, mark, anchor) == FAILED
    # An error answering a later script is not this one's.
    later = [
        *sent,
        {"message": "HOME", "time": 7.0, "type": "command"},
        {"message": "!! No trigger", "time": 8.0, "type": "response"},
    ]
    assert resolve(later, mark, anchor) == RECEIVED
    assert resolve(before, mark, anchor) == NEVER  # the store reaches back to before the send
    assert resolve([], mark, anchor) is None  # emptied by Moonraker's restart: nobody can tell
    assert resolve([{"message": "X", "time": 1.0, "type": "command"}], mark, anchor) is None  # rolled past
    assert resolve(before, mark, None) is None  # the store was empty at the send
    assert resolve([{"message": f"A ; {mark}1", "time": 1.0, "type": "command"}], mark, anchor) is None
