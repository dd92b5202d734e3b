"""Stable integer ids and the farm-side details of each printer (kept in Home Assistant storage)."""

from __future__ import annotations

from typing import Any, TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from ..const import DOMAIN

STORAGE_VERSION = 1


class PrinterRecord(TypedDict):
    """What the REST API stores about a printer beyond its connection (which is the subentry's)."""

    id: int
    brand: str
    type: str
    build_volume: dict[str, Any] | None
    filament: dict[str, Any] | None


class _Stored(TypedDict):
    next_id: int
    printers: dict[str, PrinterRecord]


class PrinterRegistry:
    """Integer ids for printers, stable across restarts, keyed by subentry id."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the registry; call async_load before use."""
        self._store: Store[_Stored] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.printers")
        self._data: _Stored = {"next_id": 1, "printers": {}}

    async def async_load(self) -> None:
        """Read the stored records."""
        if (stored := await self._store.async_load()) is not None:
            self._data = stored

    def get(self, subentry_id: str) -> PrinterRecord | None:
        """Return a printer's record."""
        return self._data["printers"].get(subentry_id)

    def subentry_for(self, printer_id: int) -> str | None:
        """Return the subentry id of an integer printer id."""
        for subentry_id, record in self._data["printers"].items():
            if record["id"] == printer_id:
                return subentry_id
        return None

    async def async_ensure(self, subentry_id: str, **details: Any) -> PrinterRecord:
        """Return the record of a subentry, creating it (with the next id) when missing."""
        record = self._data["printers"].get(subentry_id)
        if record is None:
            record = PrinterRecord(
                id=self._data["next_id"],
                brand=details.get("brand") or "Bambu Lab",
                type=details.get("type") or "FDM",
                build_volume=details.get("build_volume"),
                filament=details.get("filament"),
            )
            self._data["next_id"] += 1
            self._data["printers"][subentry_id] = record
            # An id handed out must never be handed out again: save before returning.
            await self._store.async_save(self._data)
        return record

    async def async_update(self, subentry_id: str, **details: Any) -> PrinterRecord:
        """Change the stored details of a printer."""
        record = await self.async_ensure(subentry_id)
        for key in ("brand", "type", "build_volume", "filament"):
            if key in details:
                record[key] = details[key]
        await self._store.async_save(self._data)
        return record

    async def async_remove(self, subentry_id: str) -> None:
        """Forget a printer (its id is not reused)."""
        if self._data["printers"].pop(subentry_id, None) is not None:
            await self._store.async_save(self._data)


class _StoredIds(TypedDict):
    next_id: int
    ids: dict[str, int]


class IdRegistry:
    """Integer ids for one kind of device, stable across restarts and never reused, keyed by subentry id."""

    def __init__(self, hass: HomeAssistant, kind: str) -> None:
        """Create the registry of `kind` ("ottoejects", ...); call async_load before use."""
        self._store: Store[_StoredIds] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.{kind}")
        self._data: _StoredIds = {"next_id": 1, "ids": {}}

    async def async_load(self) -> None:
        """Read the stored ids."""
        if (stored := await self._store.async_load()) is not None:
            self._data = stored

    def subentry_for(self, device_id: int) -> str | None:
        """The subentry of an integer id."""
        return next((subentry for subentry, number in self._data["ids"].items() if number == device_id), None)

    async def async_ensure(self, subentry_id: str) -> int:
        """The id of a subentry, handed out (and saved) on first use."""
        if (number := self._data["ids"].get(subentry_id)) is None:
            number = self._data["ids"][subentry_id] = self._data["next_id"]
            self._data["next_id"] += 1
            await self._store.async_save(self._data)
        return number

    async def async_remove(self, subentry_id: str) -> None:
        """Forget a subentry's id (it is not reused)."""
        if self._data["ids"].pop(subentry_id, None) is not None:
            await self._store.async_save(self._data)
