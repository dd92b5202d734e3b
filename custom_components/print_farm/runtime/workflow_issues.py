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
        is_persistent=True,  # kept across restarts, with the fix flow's data
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
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="failed_plate_held",
        translation_placeholders={"printer": printer, "job": str(job_id)},
    )


@callback
def async_failed_plate_cleared(hass: HomeAssistant, printer_id: int) -> None:
    """The held printer's bed was marked clear."""
    ir.async_delete_issue(hass, DOMAIN, failed_plate_issue(printer_id))


@callback
def async_held_printers(hass: HomeAssistant) -> set[int]:
    """The printers whose failed-plate issue is still open (after a restart too)."""
    prefix = failed_plate_issue(0)[:-1]
    return {
        int(issue_id[len(prefix) :])
        for (domain, issue_id) in ir.async_get(hass).issues
        if domain == DOMAIN and issue_id.startswith(prefix) and issue_id[len(prefix) :].isdigit()
    }


@callback
def async_forget_workflow_issues(hass: HomeAssistant, paused: set[int]) -> None:
    """Remove the issues of workflows that are no longer paused (their job ended or went)."""
    prefix = workflow_issue(0)[:-1]
    for domain, issue_id in list(ir.async_get(hass).issues):
        number = issue_id[len(prefix) :]
        if (
            domain == DOMAIN
            and issue_id.startswith(prefix)
            and number.isdigit()
            and int(number) not in paused
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)
