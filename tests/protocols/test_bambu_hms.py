"""HMS entries and print errors decoded: module, severity, the wiki's form, our text or the wiki link."""

from __future__ import annotations

from custom_components.print_farm.protocols.bambu import PrinterState
from custom_components.print_farm.protocols.bambu.hms import (
    PrinterError,
    decode_hms,
    decode_print_error,
    errors,
    format_print_error,
)


def test_hms_entry_decoded() -> None:
    # attr 0x03000100, code 0x00010007: the motion controller's heated bed sensor, fatal.
    error = decode_hms(50331904, 65543)
    assert error == PrinterError(
        kind="hms",
        code="0300_0100_0001_0007",
        module="motion_controller",
        severity="fatal",
        text="The heated bed temperature reading is abnormal; its sensor may be disconnected.",
    )
    assert error.fault
    assert error.url("X1C") == "https://wiki.bambulab.com/en/x1/troubleshooting/hmscode/0300_0100_0001_0007"
    assert error.url("A1 mini").startswith("https://wiki.bambulab.com/en/a1-mini/")
    # The wiki has no P1 section (P1 codes are under the X1 one); H2D and H2S share one.
    assert error.url("P1S").startswith("https://wiki.bambulab.com/en/x1/")
    assert error.url("H2D").startswith("https://wiki.bambulab.com/en/h2/")
    assert error.url("H2S").startswith("https://wiki.bambulab.com/en/h2/")
    assert error.url("P2S").startswith("https://wiki.bambulab.com/en/p2s/")
    assert error.url("A1").startswith("https://wiki.bambulab.com/en/a1/")
    assert error.url(None).startswith("https://wiki.bambulab.com/en/x1/")


def test_severities_and_modules() -> None:
    assert [decode_hms(0x07002000, code << 16 | 1).severity for code in (1, 2, 3, 4)] == [
        "fatal",
        "serious",
        "common",
        "info",
    ]
    assert [decode_hms(0x07002000, code << 16 | 1).fault for code in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,
    ]
    assert decode_hms(0x0C000300, 0x00030008).module == "camera"
    assert decode_hms(0x0C000300, 0x00030008).text is None  # no text of ours: the wiki link instead
    assert decode_hms(0x12008000, 0x00020001).module == "ams_lite"
    assert decode_hms(0x2A000000, 0x00040001).module == "unknown"
    assert decode_hms(0x07002000, 0x00090001).severity == "unknown"  # not one of Bambu's four
    assert not decode_hms(0x07002000, 0x00090001).fault


def test_print_errors_and_the_users_cancel() -> None:
    assert format_print_error(50348044) == "0300_400C"
    assert format_print_error(0) == "0000_0000"
    assert errors({"print_error": 50348044, "hms": []}) == ()  # the user's own cancel is not a fault
    (error,) = errors({"print_error": 0x07008011})
    assert (error.kind, error.code, error.module, error.severity, error.fault) == (
        "print_error",
        "0700_8011",
        "ams",
        None,
        True,
    )
    assert error.text == "The AMS ran out of filament."
    # A print error has no hmscode page of its own: the wiki's HMS home.
    assert error.url("X1C") == "https://wiki.bambulab.com/en/hms/home"


def test_common_print_errors_have_texts() -> None:
    texts = {code: decode_print_error(int(code.replace("_", ""), 16)).text for code in PRINT_ERRORS}
    assert all(texts.values()), texts
    assert "clogged" in texts["0300_4006"]
    assert "levelling" in texts["0300_4002"]


PRINT_ERRORS = ("0300_4002", "0300_4006", "0300_4008", "0700_8011")


def test_errors_field_follows_the_report() -> None:
    state = PrinterState()
    state.merge({"msg": 0, "print_error": 0, "hms": [{"attr": 50331904, "code": 65543}]})
    assert [error.code for error in state.fields["errors"]] == ["0300_0100_0001_0007"]
    assert state.merge({"print_error": 50348044}) == {"print_error"}  # the cancel adds no error
    assert state.merge({"hms": [], "print_error": 0}) == {"errors", "hms", "print_error"}
    assert state.fields["errors"] == ()
