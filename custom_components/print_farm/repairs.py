"""Repairs a user must decide: an access code, a certificate, another printer at an address, a stuck workflow, a new RFID spool."""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from .const import CONF_ACCESS_CODE, CONF_FINGERPRINT, CONF_SERIAL, DOMAIN
from .rules.books.records import InventoryError
from .rules.books.schema import SPOOL_CREATE
from .rules.errors import SetupError
from .rules.jobs import JobError
from .runtime.discovery import async_last_heard
from .runtime.printer_config import async_validate_printer


class _PrinterRepair(RepairsFlow):
    def __init__(self, data: dict[str, Any]) -> None:
        self._entry_id = str(data["entry_id"])
        self._subentry_id = str(data["subentry_id"])
        self._fingerprint = data.get("fingerprint")
        self._found_serial = str(data.get("found_serial") or "?")

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


class WrongPrinterRepair(_PrinterRepair):
    """Another printer answers at the printer's address: move the printer to where it is now.

    Its certificate is never trusted here; the new address must present the pinned one. The address
    discovery last heard the printer's serial number at is filled in.
    """

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """Show the form."""
        return await self.async_step_address()

    async def async_step_address(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Check the printer at the new address (serial, pinned certificate, access code), then move it there."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or self._subentry_id not in entry.subentries:
            return self.async_abort(reason="printer_removed")
        subentry = entry.subentries[self._subentry_id]
        current = dict(subentry.data)
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                validated = await async_validate_printer(
                    self.hass,
                    {**current, CONF_HOST: user_input[CONF_HOST]},
                    pinned=current.get(CONF_FINGERPRINT),
                )
            except SetupError as err:
                errors["base"] = err.reason
            else:
                return self._update(**validated)
        heard = async_last_heard(self.hass, current[CONF_SERIAL])
        suggested = user_input or ({CONF_HOST: heard.host} if heard else {})
        return self.async_show_form(
            step_id="address",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema({vol.Required(CONF_HOST): TextSelector()}), suggested
            ),
            errors=errors,
            description_placeholders={
                "name": subentry.title,
                "host": current[CONF_HOST],
                "found_serial": self._found_serial,
                "heard": heard.host if heard else "-",
            },
        )


class WorkflowRepair(RepairsFlow):
    """A paused ejection workflow: retry the step, skip it, or abort the workflow."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which job's workflow."""
        self._entry_id = str(data["entry_id"])
        self._job_id = int(data["job_id"])

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """Offer the three choices."""
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_menu(
            step_id="init",
            menu_options=["retry", "skip", "abort"],
            description_placeholders=dict(issue.translation_placeholders or {}) if issue else None,
        )

    async def _decide(self, choice: str) -> data_entry_flow.FlowResult:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or not hasattr(entry, "runtime_data"):
            return self.async_abort(reason="workflow_gone")
        ejection = entry.runtime_data.ejection
        decide = {"retry": ejection.async_retry, "skip": ejection.async_skip, "abort": ejection.async_abort}[
            choice
        ]
        try:
            await decide(self._job_id)
        except JobError as err:
            return self.async_abort(reason="workflow_failed", description_placeholders={"error": str(err)})
        return self.async_create_entry(data={})

    async def async_step_retry(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """Send the step again (asked of the device first)."""
        return await self._decide("retry")

    async def async_step_skip(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """Count the step as done."""
        return await self._decide("skip")

    async def async_step_abort(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """End the workflow; the plate is a person's."""
        return await self._decide("abort")


class NewSpoolRepair(RepairsFlow):
    """A tray reads a Bambu spool the books do not know: add it (its weight confirmed), or never ask again."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember what the tray read."""
        self._offer = data

    def _consumption(self) -> Any:
        entry = self.hass.config_entries.async_get_entry(str(self._offer["entry_id"]))
        return (
            entry.runtime_data.consumption if entry is not None and hasattr(entry, "runtime_data") else None
        )

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> data_entry_flow.FlowResult:
        """Add it, or it is not the farm's."""
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_menu(
            step_id="init",
            menu_options=["add_spool", "not_mine"],
            description_placeholders=dict(issue.translation_placeholders or {}) if issue else None,
        )

    async def async_step_add_spool(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Confirm its name and weights; the spool is added and placed in the tray."""
        errors: dict[str, str] = {}
        if (consumption := self._consumption()) is None:
            return self.async_abort(reason="farm_gone")
        reported = self._offer.get("material")  # the tray's own, when it reported one
        if user_input is not None:
            # The same rules as a spool added through REST (its name, its material, its weights).
            spool: dict[str, Any] = {}
            try:
                spool = SPOOL_CREATE(
                    {
                        "name": user_input["name"],
                        "material": reported or user_input.get("material", ""),
                        "color": self._offer.get("color"),
                        "vendor": "Bambu Lab",
                        "net_weight_grams": user_input["net_weight_grams"],
                        "remaining_grams": user_input["remaining_grams"],
                        "tray_uuid": self._offer["tray_uuid"],
                    }
                )
            except vol.Invalid as err:
                field = str(err.path[0]) if err.path else "base"
                shown = ("name", "material", "net_weight_grams", "remaining_grams")
                errors[field if field in shown else "base"] = "invalid_value"
            if errors:
                pass
            elif spool["remaining_grams"] > spool["net_weight_grams"]:
                errors["remaining_grams"] = "more_than_net"
            else:
                try:
                    await consumption.async_add_offered(self._offer, spool)
                except InventoryError as err:
                    return self.async_abort(
                        reason="spool_refused", description_placeholders={"error": str(err)}
                    )
                return self.async_create_entry(data={})
        percent = self._offer.get("remaining")
        name = " ".join(str(part) for part in (self._offer.get("name"), self._offer.get("color")) if part)
        grams = NumberSelector(
            NumberSelectorConfig(min=0, max=10000, mode=NumberSelectorMode.BOX, unit_of_measurement="g")
        )
        fields: dict[Any, Any] = {vol.Required("name", default=name or "Bambu spool"): str}
        if not reported:  # the tray did not say: a person does, never a silent PLA
            fields[vol.Required("material")] = str
        fields[vol.Required("net_weight_grams", default=1000)] = grams
        fields[vol.Required("remaining_grams", default=10 * percent if percent is not None else 1000)] = grams
        return self.async_show_form(step_id="add_spool", data_schema=vol.Schema(fields), errors=errors)

    async def async_step_not_mine(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Never offer this spool again."""
        if (consumption := self._consumption()) is None:
            return self.async_abort(reason="farm_gone")
        await consumption.async_dismiss_offer(str(self._offer["tray_uuid"]))
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Pick the repair for an issue."""
    assert data is not None
    if issue_id.startswith("workflow_paused_"):
        return WorkflowRepair(dict(data))
    if issue_id.startswith("certificate_changed_"):
        return CertificateRepair(dict(data))
    if issue_id.startswith("wrong_printer_"):
        return WrongPrinterRepair(dict(data))
    if issue_id.startswith("new_spool_"):
        return NewSpoolRepair(dict(data))
    return AccessCodeRepair(dict(data))
