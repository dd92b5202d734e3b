"""The voice sentences: installed into `<config>/custom_sentences/en/` only when the farm's option asks.

Home Assistant 2025.4 gives an integration no way to ship sentences to its built-in agent, which reads
`<config>/custom_sentences/<language>/`. The file shipped in the package (`sentences/en/`) is copied
there when the setting is on, and removed when it is turned off; a file the integration wrote starts
with its marker line, and any other file at that path is the user's: it is left alone, and a repair
issue says so. After a change the conversation agent reloads (it caches its sentences per language).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from ..const import DOMAIN, LOGGER

MARKER = "# print_farm: installed by the Print Farm integration"
LANGUAGE = "en"
FILE_NAME = "print_farm.yaml"
SOURCE = Path(__file__).resolve().parents[1] / "sentences" / LANGUAGE / FILE_NAME
CONFLICT_ISSUE = "voice_sentences_conflict"


class Outcome(StrEnum):
    """What installing or removing did."""

    UNCHANGED = "unchanged"
    WRITTEN = "written"
    REMOVED = "removed"
    CONFLICT = "conflict"  # the user's own file is at the path: left alone


def target(hass: HomeAssistant) -> Path:
    """Where the built-in agent reads the farm's English sentences from."""
    return Path(hass.config.path("custom_sentences", LANGUAGE, FILE_NAME))


def _sync(path: Path, wanted: bool) -> Outcome:
    """Write, keep or remove the file (in the executor); never touch a file without the marker."""
    if path.exists():
        current = path.read_text(encoding="utf-8")
        if not current.startswith(MARKER):
            return Outcome.CONFLICT
        if not wanted:
            path.unlink()
            return Outcome.REMOVED
    elif not wanted:
        return Outcome.UNCHANGED
    else:
        current = None
    text = SOURCE.read_text(encoding="utf-8")
    if current == text:
        return Outcome.UNCHANGED
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{FILE_NAME}.tmp")  # not *.yaml: the agent never reads a half file
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return Outcome.WRITTEN


async def async_sync_sentences(hass: HomeAssistant, wanted: bool) -> Outcome:
    """Install (wanted) or remove the sentence file, raise or clear the conflict issue, reload the agent."""
    path = target(hass)
    try:
        outcome = await hass.async_add_executor_job(_sync, path, wanted)
    except OSError as err:
        LOGGER.error("Could not write the voice sentences to %s: %s", path, err)
        return Outcome.UNCHANGED
    if outcome is Outcome.CONFLICT and wanted:
        LOGGER.warning(
            "%s is not the Print Farm's file: left alone, the farm's sentences not installed", path
        )
        ir.async_create_issue(
            hass,
            DOMAIN,
            CONFLICT_ISSUE,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=CONFLICT_ISSUE,
            translation_placeholders={"path": str(path)},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, CONFLICT_ISSUE)
    if outcome in (Outcome.WRITTEN, Outcome.REMOVED) and hass.services.has_service("conversation", "reload"):
        # The public way to drop the agent's cached sentences (all languages: en, en-GB... share the file).
        await hass.services.async_call("conversation", "reload", {}, blocking=True)
    return outcome
