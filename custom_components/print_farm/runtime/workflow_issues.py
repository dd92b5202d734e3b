"""The repair issues of plates that wait for a person: a paused workflow, a failed print held."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from ..const import DOMAIN


def workflow_issue(job_id: int) -> str:
    """The repair issue of a paused workflow."""
    return f"workflow_paused_{job_id}"


def failed_plate_issue(printer_id: int) -> str:
    """The repair issue of a printer that holds a failed print's plate for a person."""
    return f"failed_plate_{printer_id}"


@callback
def async_workflow_paused(
    hass: HomeAssistant, entry_id: str, job_id: int, printer: str, step: str, fault: str
) -> None:
    """Offer retry, skip and abort for a paused workflow (repairs.py's fix flow)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        workflow_issue(job_id),
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="workflow_paused",
        translation_placeholders={"job": str(job_id), "printer": printer, "step": step, "fault": fault},
        data={"entry_id": entry_id, "job_id": job_id},
    )


@callback
def async_workflow_resumed(hass: HomeAssistant, job_id: int) -> None:
    """A person decided: the paused workflow's issue goes."""
    ir.async_delete_issue(hass, DOMAIN, workflow_issue(job_id))


@callback
def async_failed_plate_held(hass: HomeAssistant, printer_id: int, printer: str, job_id: int) -> None:
    """Ask a person to take a failed print's plate off (the setting failed_plate is "hold")."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        failed_plate_issue(printer_id),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="failed_plate_held",
        translation_placeholders={"printer": printer, "job": str(job_id)},
    )


@callback
def async_failed_plate_cleared(hass: HomeAssistant, printer_id: int) -> None:
    """The held printer's bed was marked clear."""
    ir.async_delete_issue(hass, DOMAIN, failed_plate_issue(printer_id))
