"""Repairs a user must decide: a refused access code, a changed printer certificate."""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType
import voluptuous as vol

from .const import CONF_ACCESS_CODE, CONF_FINGERPRINT
from .rules.errors import SetupError
from .runtime.printer_config import async_validate_printer


class _PrinterRepair(RepairsFlow):
    def __init__(self, data: dict[str, Any]) -> None:
        self._entry_id = str(data["entry_id"])
        self._subentry_id = str(data["subentry_id"])
        self._fingerprint = data.get("fingerprint")

    def _update(self, **changes: Any) -> data_entry_flow.FlowResult:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or self._subentry_id not in entry.subentries:
            return self.async_abort(reason="printer_removed")
        subentry = entry.subentries[self._subentry_id]
        self.hass.config_entries.async_update_subentry(entry, subentry, data={**subentry.data, **changes})
        return self.async_create_entry(data={})


class AccessCodeRepair(_PrinterRepair):
    """Ask for the printer's new LAN access code, test it, save it."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """Show the form."""
        return await self.async_step_access_code()

    async def async_step_access_code(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Test the new code against the printer before saving it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            entry = self.hass.config_entries.async_get_entry(self._entry_id)
            if entry is None or self._subentry_id not in entry.subentries:
                return self.async_abort(reason="printer_removed")
            current = dict(entry.subentries[self._subentry_id].data)
            try:
                validated = await async_validate_printer(
                    self.hass,
                    {**current, CONF_ACCESS_CODE: user_input[CONF_ACCESS_CODE]},
                    pinned=current.get(CONF_FINGERPRINT),
                )
            except SetupError as err:
                errors["base"] = err.reason
            else:
                return self._update(**validated)
        return self.async_show_form(
            step_id="access_code",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_ACCESS_CODE): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    )
                }
            ),
            errors=errors,
        )


class CertificateRepair(_PrinterRepair):
    """Show the new certificate's fingerprint; trust it only when the user confirms."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """Ask for confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Pin the new fingerprint."""
        if user_input is not None:
            return self._update(**{CONF_FINGERPRINT: self._fingerprint})
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders={"fingerprint": str(self._fingerprint)},
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Pick the repair for an issue."""
    assert data is not None
    if issue_id.startswith("certificate_changed_"):
        return CertificateRepair(dict(data))
    return AccessCodeRepair(dict(data))
