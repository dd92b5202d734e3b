"""Print items: uploaded files kept with the metadata their slicer wrote, or refused."""

from __future__ import annotations

from pathlib import Path
import re
import shutil
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from ..fileinfo import FileInfoError, read_file_info
from ..rules.jobs import JobError, PrintItem, iso
from .storage import JobStore

# What a hard kill can leave behind: an upload being received (api/base.py writes `.upload-<hex>` in
# the uploads folder) and a file being placed (`_place_and_read` writes `.<id>-<name>.partial` in the
# files folder). Kept files never start with a dot.
_LEFTOVERS: Final = (
    ("uploads", re.compile(r"\.upload-[0-9a-f]{32}")),
    ("files", re.compile(r"\.\d+-.+\.partial")),
)


async def async_remove_leftovers(hass: HomeAssistant) -> None:
    """Remove the temporary files of uploads cut short by a hard kill, and only those.

    Call it once per Home Assistant run, before the REST views exist: no upload can then be under way.
    """
    removed = await hass.async_add_executor_job(remove_leftovers, Path(hass.config.path(DOMAIN)))
    if removed:
        LOGGER.info("Removed %s unfinished upload(s) left by an interrupted run", removed)


def remove_leftovers(folder: Path) -> int:
    """Remove `.upload-*` files from `folder`/uploads and `.*.partial` from `folder`/files (blocking)."""
    removed = 0
    for name, pattern in _LEFTOVERS:
        try:
            entries = list((folder / name).iterdir())
        except FileNotFoundError:
            continue
        for path in entries:
            if pattern.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed += 1
    return removed


class PrintItems:
    """The farm's print files under `<config>/print_farm/files`, and their items in the job store."""

    def __init__(self, hass: HomeAssistant, store: JobStore) -> None:
        """Keep the files beside the configuration."""
        self.hass = hass
        self.store = store
        self.files = Path(hass.config.path(DOMAIN, "files"))

    async def async_add(self, source: Path, filename: str, *, move: bool) -> PrintItem:
        """Keep an uploaded (moved) or allowed local (copied) file as a print item, with its metadata.

        A file that is not a sliced print is refused (400, with the reader's reason) and nothing is
        kept; the item is recorded only once the file is in place, so a failure leaves neither.
        """
        item_id = self.store.next_item_id()
        target = self.files / f"{item_id}-{filename}"
        info = await self.hass.async_add_executor_job(self._place_and_read, source, target, move, filename)
        item = PrintItem(
            id=item_id,
            filename=filename,
            stored_name=target.name,
            size=info.pop("size"),
            uploaded_at=iso(dt_util.utcnow()) or "",
            estimated_time_s=info.get("estimated_time_s"),
            layer_count=info.get("layer_count"),
            filament_g=info.get("filament_g"),
            filament_mm=info.get("filament_mm"),
            slicer=info.get("slicer"),
            plates=max(1, len(info.get("plates") or ())),
            info=info,
        )
        try:
            return await self.store.async_add_item(item)
        except Exception:
            await self.hass.async_add_executor_job(target.unlink, True)
            raise

    @staticmethod
    def _place_and_read(source: Path, target: Path, move: bool, filename: str) -> dict[str, Any]:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            if move:
                shutil.move(source, partial)
            else:
                shutil.copyfile(source, partial)
            info = read_metadata(partial, filename)
            partial.rename(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        info["size"] = target.stat().st_size
        return info

    def path(self, item: PrintItem) -> Path:
        """Where an item's file is kept."""
        return self.files / item.stored_name

    async def async_remove(self, item_id: int) -> None:
        """Delete an item and its file; refused (409) while a job uses it."""
        if item_id not in self.store.items:
            raise JobError(f"Print item {item_id} not found", 404)
        item = await self.store.async_remove_item(item_id)
        await self.hass.async_add_executor_job(lambda: self.path(item).unlink(missing_ok=True))


def read_metadata(path: Path, filename: str) -> dict[str, Any]:
    """The slicer's metadata of a print file, as a dict (blocking).

    JobError (400) when the file is no sliced print; a print the reader cannot read (a newer
    format version, say) is kept with its metadata unknown.
    """
    try:
        info: dict[str, Any] = read_file_info(path).to_json_dict()
    except FileInfoError as err:
        if err.unsupported:
            LOGGER.info("No metadata in %s: %s", filename, err)
            return {}
        raise JobError(f"{filename} is not a sliced print file: {err}.", 400) from None
    return info
