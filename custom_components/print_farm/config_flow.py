"""Config flow: one Print Farm hub, and a subentry per printer."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_API_KEY, CONF_HOST, CONF_NAME, CONF_PORT, CONF_SCAN_INTERVAL
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from .const import (
    CONF_ACCESS_CODE,
    CONF_CAMERA_PORT,
    CONF_DISCOVERY_HOST,
    CONF_DISCOVERY_PORT,
    CONF_EJECT_GCODE,
    CONF_FINGERPRINT,
    CONF_FTPS_PORT,
    CONF_MQTT_PORT,
    CONF_OTTOEJECT,
    CONF_POSITION,
    CONF_SERIAL,
    CONF_SETTLE,
    DOMAIN,
    SUBENTRY_OTTOEJECT,
    SUBENTRY_PRINTER,
    SUBENTRY_RACK,
)
from .protocols.bambu import DEFAULT_CAMERA_PORT, DEFAULT_FTPS_PORT, DEFAULT_MQTT_PORT
from .protocols.bambu.ssdp import DISCOVERY_PORT
from .protocols.moonraker import DEFAULT_PORT as MOONRAKER_PORT
from .rules.errors import SetupError
from .rules.racks import MAX_SHELVES, RACK_FIELDS
from .rules.settings import (
    AUTO_CREATE,
    DEDUP_MINUTES,
    INSTALL_VOICE_SENTENCES,
    JOB_PROCESSING,
    JOB_RUN_AUTO_OPEN,
    MACHINE_COST_PER_HOUR,
    MAX_UPLOAD_MB,
    NOTIFY_AUTO_CREATED,
    SPOOL_LOW_GRAMS,
    WATCHDOG_SECONDS,
    settings_of,
)
from .rules.workflow import DEFAULT_MACROS, check_template
from .runtime.discovery import async_discovered_printers
from .runtime.ottoeject import (
    CONF_ACK_TIMEOUT,
    CONF_MACROS,
    DEFAULT_ACK_TIMEOUT,
    DEFAULT_SCAN_INTERVAL,
    async_validate_ottoeject,
    ottoeject_taken,
)
from .runtime.printer_config import EJECTION_KEYS, async_validate_printer, is_configured
from .runtime.rack import CONF_BED_SIZE, CONF_SHELVES, CONF_SPACING, rack_name_taken

CONF_DISCOVERED = "discovered"
CONF_ADVANCED = "advanced"
CONF_EJECTION = "ejection"
NO_OTTOEJECT = "none"
MANUAL = "manual"
_PORT = NumberSelector(NumberSelectorConfig(min=1, max=65535, mode=NumberSelectorMode.BOX))


class PrintFarmConfigFlow(ConfigFlow, domain=DOMAIN):
    """The Print Farm hub: one per Home Assistant."""

    VERSION = 1
    MINOR_VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> PrintFarmOptionsFlow:
        """The farm's settings."""
        return PrintFarmOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Printers are subentries of the hub."""
        return {
            SUBENTRY_PRINTER: PrinterSubentryFlow,
            SUBENTRY_OTTOEJECT: OttoEjectSubentryFlow,
            SUBENTRY_RACK: RackSubentryFlow,
        }

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Create the hub; printers are added to it afterwards."""
        if self._async_current_entries():
            return self.async_abort(reason="single_instance_allowed")
        if user_input is not None:
            if CONF_DISCOVERY_PORT in user_input:
                user_input[CONF_DISCOVERY_PORT] = int(user_input[CONF_DISCOVERY_PORT])
            return self.async_create_entry(title="Print Farm", data=user_input)
        fields: dict[Any, Any] = {}
        if self.show_advanced_options:
            # Printers announce themselves by UDP broadcast; the listener binds here.
            fields[vol.Optional(CONF_DISCOVERY_HOST, default="0.0.0.0")] = str
            fields[vol.Optional(CONF_DISCOVERY_PORT, default=DISCOVERY_PORT)] = NumberSelector(
                NumberSelectorConfig(min=0, max=65535, mode=NumberSelectorMode.BOX)
            )
        return self.async_show_form(step_id="user", data_schema=vol.Schema(fields))


class PrintFarmOptionsFlow(OptionsFlow):
    """The farm-wide settings (the same as GET/PUT /api/print_farm/v1/settings and the switch)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every setting."""
        if user_input is not None:
            numbers = {
                key: int(value)
                for key, value in user_input.items()
                if isinstance(value, float) and key != MACHINE_COST_PER_HOUR  # money keeps its cents
            }
            return self.async_create_entry(data={**self.config_entry.options, **user_input, **numbers})
        current = settings_of(self.config_entry.options)

        def number(key: str, low: int, high: int, unit: str) -> tuple[Any, Any]:
            return vol.Required(key, default=current[key]), NumberSelector(
                NumberSelectorConfig(min=low, max=high, mode=NumberSelectorMode.BOX, unit_of_measurement=unit)
            )

        fields = dict(
            [
                (vol.Required(JOB_PROCESSING, default=current[JOB_PROCESSING]), bool),
                (vol.Required(AUTO_CREATE, default=current[AUTO_CREATE]), bool),
                (vol.Required(NOTIFY_AUTO_CREATED, default=current[NOTIFY_AUTO_CREATED]), bool),
                number(DEDUP_MINUTES, 1, 60, "min"),
                number(MAX_UPLOAD_MB, 1, 10240, "MB"),
                number(WATCHDOG_SECONDS, 15, 3600, "s"),
                number(SPOOL_LOW_GRAMS, 0, 10000, "g"),
                (vol.Required(JOB_RUN_AUTO_OPEN, default=current[JOB_RUN_AUTO_OPEN]), bool),
                (
                    vol.Required(MACHINE_COST_PER_HOUR, default=current[MACHINE_COST_PER_HOUR]),
                    NumberSelector(
                        NumberSelectorConfig(min=0, max=10000, step=0.01, mode=NumberSelectorMode.BOX)
                    ),
                ),
                (vol.Required(INSTALL_VOICE_SENTENCES, default=current[INSTALL_VOICE_SENTENCES]), bool),
            ]
        )
        return self.async_show_form(step_id="init", data_schema=vol.Schema(fields))


def _ottoeject_choice(entry: ConfigEntry, current: str | None) -> SelectSelector:
    """Pick one of the farm's OttoEjects, or none."""
    options = [SelectOptionDict(value=NO_OTTOEJECT, label=NO_OTTOEJECT)]
    options += [
        SelectOptionDict(value=subentry_id, label=subentry.title)
        for subentry_id, subentry in entry.subentries.items()
        if subentry.subentry_type == SUBENTRY_OTTOEJECT
    ]
    return SelectSelector(SelectSelectorConfig(options=options, translation_key=CONF_OTTOEJECT))


def _ejection_section(entry: ConfigEntry, defaults: dict[str, Any]) -> Any:
    """Which OttoEject takes the printer's plates, its position there, and how the bed is moved for it."""

    def suggested(key: str) -> dict[str, Any]:
        return {"suggested_value": defaults.get(key)}

    return section(
        vol.Schema(
            {
                vol.Optional(
                    CONF_OTTOEJECT, default=defaults.get(CONF_OTTOEJECT) or NO_OTTOEJECT
                ): _ottoeject_choice(entry, defaults.get(CONF_OTTOEJECT)),
                vol.Optional(CONF_POSITION, description=suggested(CONF_POSITION)): str,
                vol.Optional(CONF_EJECT_GCODE, description=suggested(CONF_EJECT_GCODE)): TextSelector(
                    TextSelectorConfig(multiline=True)
                ),
                vol.Optional(CONF_SETTLE, description=suggested(CONF_SETTLE)): NumberSelector(
                    NumberSelectorConfig(min=0, max=300, mode=NumberSelectorMode.BOX, unit_of_measurement="s")
                ),
            }
        ),
        {"collapsed": True},
    )


def _ejection_data(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The ejection settings a form gave (empty ones left out), and what is wrong with them."""
    given = user_input.get(CONF_EJECTION) or {}
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if (ejector := given.get(CONF_OTTOEJECT)) and ejector != NO_OTTOEJECT:
        data[CONF_OTTOEJECT] = ejector
        position = str(given.get(CONF_POSITION) or "").strip().upper()
        if not position or not position.replace("_", "").isalnum():
            errors["base"] = "invalid_position"
        data[CONF_POSITION] = position
    if gcode := str(given.get(CONF_EJECT_GCODE) or "").strip():
        data[CONF_EJECT_GCODE] = gcode
    if given.get(CONF_SETTLE) is not None:
        data[CONF_SETTLE] = float(given[CONF_SETTLE])
    return data, errors


def _printer_schema(defaults: dict[str, Any], *, with_name: bool) -> vol.Schema:
    fields: dict[Any, Any] = {}
    if with_name:
        fields[vol.Optional(CONF_NAME, description={"suggested_value": defaults.get(CONF_NAME)})] = str
    fields[vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED))] = str
    fields[vol.Required(CONF_SERIAL, default=defaults.get(CONF_SERIAL, vol.UNDEFINED))] = str
    # The stored access code is never sent back to the browser; left empty on reconfigure, it stays.
    access_code = vol.Required(CONF_ACCESS_CODE) if with_name else vol.Optional(CONF_ACCESS_CODE)
    fields[access_code] = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
    fields[vol.Required(CONF_ADVANCED)] = section(
        vol.Schema(
            {
                vol.Optional(CONF_MQTT_PORT, default=defaults.get(CONF_MQTT_PORT, DEFAULT_MQTT_PORT)): _PORT,
                vol.Optional(CONF_FTPS_PORT, default=defaults.get(CONF_FTPS_PORT, DEFAULT_FTPS_PORT)): _PORT,
                vol.Optional(
                    CONF_CAMERA_PORT, default=defaults.get(CONF_CAMERA_PORT, DEFAULT_CAMERA_PORT)
                ): _PORT,
            }
        ),
        {"collapsed": True},
    )
    return vol.Schema(fields)


def _flatten(user_input: dict[str, Any]) -> dict[str, Any]:
    data = {key: value for key, value in user_input.items() if key not in (CONF_ADVANCED, CONF_EJECTION)}
    for key, value in (user_input.get(CONF_ADVANCED) or {}).items():
        data[key] = int(value)
    return data


class PrinterSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure a Bambu Lab printer."""

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._defaults: dict[str, Any] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Offer the printers heard on the network, or go to the manual form."""
        entry = self._get_entry()
        discovered = [
            printer
            for printer in async_discovered_printers(self.hass)
            if not is_configured(entry, printer.serial)
        ]
        if not discovered:
            return await self.async_step_connect()
        if user_input is not None:
            choice = user_input[CONF_DISCOVERED]
            for printer in discovered:
                if printer.serial == choice:
                    self._defaults = {
                        CONF_HOST: printer.host,
                        CONF_SERIAL: printer.serial,
                        CONF_NAME: printer.name,
                    }
            return await self.async_step_connect()
        options = [
            SelectOptionDict(
                value=printer.serial,
                label=f"{printer.name or printer.model or 'Bambu Lab'} ({printer.model or '?'}, {printer.serial}, {printer.host})",
            )
            for printer in discovered
        ]
        options.append(SelectOptionDict(value=MANUAL, label=MANUAL))
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_DISCOVERED): SelectSelector(
                        SelectSelectorConfig(options=options, translation_key=CONF_DISCOVERED)
                    )
                }
            ),
        )

    async def async_step_connect(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Ask for the address, serial and access code; test the connection before saving."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _flatten(user_input)
            if is_configured(self._get_entry(), data[CONF_SERIAL]):
                errors["base"] = "already_configured"
            else:
                try:
                    validated = await async_validate_printer(self.hass, data)
                except SetupError as err:
                    errors["base"] = err.reason
                else:
                    return self.async_create_entry(
                        title=data.get(CONF_NAME)
                        or f"{validated['model'] or 'Bambu Lab'} {validated[CONF_SERIAL][-4:]}",
                        data=validated,
                        unique_id=validated[CONF_SERIAL],
                    )
            self._defaults = data
        return self.async_show_form(
            step_id="connect",
            data_schema=_printer_schema(self._defaults, with_name=True),
            errors=errors,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Change a printer's address, serial, access code or ports; tested before saving."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        defaults = dict(subentry.data)
        if user_input is not None:
            data = _flatten(user_input)
            data.setdefault(CONF_ACCESS_CODE, subentry.data[CONF_ACCESS_CODE])
            ejection, errors = _ejection_data(user_input)
            defaults = {**data, **ejection}
            current = {key: subentry.data[key] for key in EJECTION_KEYS if key in subentry.data}
            printer = entry.runtime_data.registry.get(subentry.subentry_id)
            if (
                ejection != current
                and printer is not None
                and entry.runtime_data.ejection.placement.in_use(printer_id=printer["id"]) is not None
            ):
                errors["base"] = "ottoeject_in_use"
            connection = (CONF_HOST, CONF_SERIAL, CONF_ACCESS_CODE, CONF_MQTT_PORT, CONF_FTPS_PORT)
            # The camera port is used only when someone watches: stored as given, never tested here.
            camera_port = {CONF_CAMERA_PORT: int(data.get(CONF_CAMERA_PORT) or DEFAULT_CAMERA_PORT)}
            if data[CONF_SERIAL].strip().upper() != subentry.data[CONF_SERIAL]:
                errors["base"] = "serial_fixed"
            elif not errors and all(data.get(key) == subentry.data.get(key) for key in connection):
                # Only the ejection settings or the camera port changed: the printer need not be reached.
                kept = {k: v for k, v in subentry.data.items() if k not in EJECTION_KEYS}
                return self.async_update_and_abort(entry, subentry, data={**kept, **camera_port, **ejection})
            elif not errors:
                try:
                    validated = await async_validate_printer(
                        self.hass, data, pinned=subentry.data.get(CONF_FINGERPRINT)
                    )
                except SetupError as err:
                    errors["base"] = err.reason
                else:
                    return self.async_update_and_abort(
                        entry,
                        subentry,
                        data={**validated, **camera_port, **ejection},
                        unique_id=validated[CONF_SERIAL],
                    )
        schema = _printer_schema(defaults, with_name=False).extend(
            {vol.Optional(CONF_EJECTION, default={}): _ejection_section(entry, defaults)}
        )
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)


def _rack_schema(entry: ConfigEntry, defaults: dict[str, Any], *, with_name: bool) -> vol.Schema:
    fields: dict[Any, Any] = {}
    if with_name:
        fields[vol.Required(CONF_NAME, default=defaults.get(CONF_NAME, vol.UNDEFINED))] = str
    fields[vol.Required(CONF_SHELVES, default=defaults.get(CONF_SHELVES, 10))] = NumberSelector(
        NumberSelectorConfig(min=1, max=MAX_SHELVES, mode=NumberSelectorMode.BOX)
    )
    fields[vol.Required(CONF_SPACING, default=defaults.get(CONF_SPACING, 80))] = NumberSelector(
        NumberSelectorConfig(
            min=10, max=2000, step=0.5, mode=NumberSelectorMode.BOX, unit_of_measurement="mm"
        )
    )
    fields[vol.Required(CONF_BED_SIZE, default=defaults.get(CONF_BED_SIZE, "256x256"))] = str
    fields[vol.Optional(CONF_OTTOEJECT, default=defaults.get(CONF_OTTOEJECT) or NO_OTTOEJECT)] = (
        _ottoeject_choice(entry, defaults.get(CONF_OTTOEJECT))
    )
    return vol.Schema(fields)


def _rack_data(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the rack fields the way the REST API does; return (data, errors)."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, validator in RACK_FIELDS.items():
        try:
            data[key] = validator(user_input[key])
        except vol.Invalid:
            errors[key] = f"invalid_{key}"
    if CONF_SPACING in data and float(data[CONF_SPACING]).is_integer():
        data[CONF_SPACING] = int(data[CONF_SPACING])
    if (ejector := user_input.get(CONF_OTTOEJECT)) and ejector != NO_OTTOEJECT:
        data[CONF_OTTOEJECT] = ejector  # the OttoEject that stores plates on this rack
    return data, errors


class RackSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure an OttoRack."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name, shelves, spacing and plate size."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = _rack_data(user_input)
            if rack_name_taken(self._get_entry(), user_input[CONF_NAME]):
                errors[CONF_NAME] = "name_taken"
            if not errors:
                return self.async_create_entry(title=user_input[CONF_NAME].strip(), data=data)
        return self.async_show_form(
            step_id="user",
            data_schema=_rack_schema(self._get_entry(), user_input or {}, with_name=True),
            errors=errors,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Change the rack; shelves that hold plates cannot be removed."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = _rack_data(user_input)
            farm = entry.runtime_data
            rack_id = farm.rack_store.rack_id(subentry.subentry_id)
            if (
                data.get(CONF_OTTOEJECT) != subentry.data.get(CONF_OTTOEJECT)
                and rack_id is not None
                and farm.ejection.placement.in_use(rack_id=rack_id) is not None
            ):
                errors["base"] = "ottoeject_in_use"
            if not errors:
                shelves = farm.rack_store.shelves(subentry.subentry_id)
                reserved = farm.jobs.store.reserved_shelves(rack_id) if rack_id is not None else set()
                if any(
                    shelf.occupied or shelf.shelf_number in reserved
                    for shelf in shelves[data[CONF_SHELVES] :]
                ):
                    errors[CONF_SHELVES] = "shelves_occupied"
                else:
                    return self.async_update_and_abort(entry, subentry, data=data)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_rack_schema(entry, user_input or dict(subentry.data), with_name=False),
            errors=errors,
        )


def _ottoeject_schema(defaults: dict[str, Any], *, adding: bool) -> vol.Schema:
    fields: dict[Any, Any] = {}
    if adding:
        fields[vol.Required(CONF_NAME, default=defaults.get(CONF_NAME, vol.UNDEFINED))] = str
    fields[vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED))] = str
    fields[vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, MOONRAKER_PORT))] = _PORT
    # A stored API key is never sent back to the browser; left empty on reconfigure, it stays.
    fields[vol.Optional(CONF_API_KEY)] = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
    fields[vol.Required(CONF_ADVANCED)] = section(
        vol.Schema(
            {
                vol.Optional(
                    CONF_SCAN_INTERVAL, default=defaults.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
                ): NumberSelector(
                    NumberSelectorConfig(min=1, max=300, mode=NumberSelectorMode.BOX, unit_of_measurement="s")
                ),
                vol.Optional(
                    CONF_ACK_TIMEOUT, default=defaults.get(CONF_ACK_TIMEOUT, DEFAULT_ACK_TIMEOUT)
                ): NumberSelector(
                    NumberSelectorConfig(min=1, max=600, mode=NumberSelectorMode.BOX, unit_of_measurement="s")
                ),
            }
        ),
        {"collapsed": True},
    )
    templates = {**DEFAULT_MACROS, **(defaults.get(CONF_MACROS) or {})}
    fields[vol.Optional(CONF_MACROS, default={})] = section(
        vol.Schema({vol.Optional(step, default=templates[step]): str for step in DEFAULT_MACROS}),
        {"collapsed": True},
    )
    return vol.Schema(fields)


def _macros(user_input: dict[str, Any], errors: dict[str, str]) -> dict[str, str] | None:
    """The macro templates a form gave, checked; None (with an error) when one is not valid."""
    templates = {step: str(value).strip() for step, value in (user_input.get(CONF_MACROS) or {}).items()}
    try:
        for template in templates.values():
            check_template(template)
    except ValueError:
        errors["base"] = "invalid_macro_template"
        return None
    return templates


class OttoEjectSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure an OttoEject (Moonraker is reached before anything is saved)."""

    async def _async_validated(
        self, user_input: dict[str, Any], errors: dict[str, str], *, except_subentry: str | None = None
    ) -> dict[str, Any] | None:
        templates = _macros(user_input, errors)
        if templates is None:
            return None
        data = {**_flatten({k: v for k, v in user_input.items() if k != CONF_MACROS}), CONF_MACROS: templates}
        if ottoeject_taken(
            self._get_entry(),
            data[CONF_HOST],
            data.get(CONF_PORT) or MOONRAKER_PORT,
            except_subentry=except_subentry,
        ):
            errors["base"] = "already_configured"
            return None
        try:
            return await async_validate_ottoeject(self.hass, data)
        except SetupError as err:
            errors["base"] = err.reason
            return None

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name, address, port and optional API key."""
        errors: dict[str, str] = {}
        if user_input is not None and (data := await self._async_validated(user_input, errors)) is not None:
            return self.async_create_entry(title=user_input[CONF_NAME].strip(), data=data)
        defaults = _flatten(user_input) if user_input else {}
        return self.async_show_form(
            step_id="user", data_schema=_ottoeject_schema(defaults, adding=True), errors=errors
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Change the address, port, API key or timings."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input = {
                CONF_API_KEY: subentry.data.get(CONF_API_KEY),
                **{k: v for k, v in user_input.items() if v != ""},
            }
            data = await self._async_validated(user_input, errors, except_subentry=subentry.subentry_id)
            if data is not None:
                return self.async_update_and_abort(entry, subentry, data=data)
        defaults = dict(subentry.data)
        return self.async_show_form(
            step_id="reconfigure", data_schema=_ottoeject_schema(defaults, adding=False), errors=errors
        )
