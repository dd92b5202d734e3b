"""OttoRack shelves: the three valid shelf states, kept in Home Assistant storage.

A shelf holds no plate, an empty plate, or a plate with a finished print of a known job. Every
change goes through `RackStore.async_set_shelf`, which checks it whole before writing anything
and saves before returning: a shelf's content is a fact the orchestrator relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
import re
from typing import Any, Final, TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
import voluptuous as vol

from ..const import DOMAIN

STORAGE_VERSION: Final = 1
NO_PLATE: Final = "no_plate"  # how actions and the shelf select name "has_plate: false"
PLATE_EMPTY: Final = "empty"
PLATE_WITH_PRINT: Final = "with_print"
PLATE_STATES: Final = (PLATE_EMPTY, PLATE_WITH_PRINT)
BED_SIZE: Final = re.compile(r"^\d{2,4}x\d{2,4}$")
MAX_SHELVES: Final = 100


RACK_FIELDS: Final = {
    "number_of_shelves": vol.All(vol.Coerce(int), vol.Range(min=1, max=MAX_SHELVES)),
    "shelf_spacing_mm": vol.All(vol.Coerce(float), vol.Range(min=10, max=2000)),
    "bed_size": vol.All(
        str, vol.Strip, vol.Match(BED_SIZE, msg="bed_size is WIDTHxDEPTH in mm, like 256x256")
    ),
}


class ShelfError(ValueError):
    """A shelf change that is not one of the three valid states, or names what does not exist."""


@dataclass(slots=True)
class Shelf:
    """One shelf of a rack (its id is its number within the rack)."""

    shelf_number: int
    has_plate: bool = False
    plate_state: str | None = None
    print_job_id: int | None = None

    @property
    def id(self) -> int:
        """The shelf's id in the REST API: its number."""
        return self.shelf_number

    @property
    def occupied(self) -> bool:
        """Whether a plate is on the shelf."""
        return self.has_plate

    def as_dict(self) -> dict[str, Any]:
        """The seed's shelf body."""
        return {"id": self.id, **asdict(self)}


class _StoredRack(TypedDict):
    id: int
    shelves: list[dict[str, Any]]


class _Stored(TypedDict):
    next_id: int
    racks: dict[str, _StoredRack]


def validate_shelf(
    number_of_shelves: int,
    shelf_number: int,
    has_plate: Any,
    plate_state: Any,
    print_job_id: Any,
    job_exists: Callable[[int], bool] | None,
) -> Shelf:
    """Return the shelf the change describes, or raise ShelfError saying what is wrong."""
    if not isinstance(shelf_number, int) or not 1 <= shelf_number <= number_of_shelves:
        raise ShelfError(
            f"Shelf {shelf_number} does not exist: this rack has shelves 1 to {number_of_shelves}."
        )
    if not isinstance(has_plate, bool):
        raise ShelfError("has_plate must be true or false.")
    if print_job_id is not None and (isinstance(print_job_id, bool) or not isinstance(print_job_id, int)):
        raise ShelfError("print_job_id must be an integer or null.")
    if not has_plate:
        if plate_state is not None:
            raise ShelfError("A shelf without a plate has no plate_state (null).")
        if print_job_id is not None:
            raise ShelfError("A shelf without a plate holds no print job.")
        return Shelf(shelf_number)
    if plate_state not in PLATE_STATES:
        raise ShelfError("A plate is either 'empty' or 'with_print'.")
    if plate_state == PLATE_EMPTY and print_job_id is not None:
        raise ShelfError("An empty plate holds no print job: print_job_id must be null.")
    if plate_state == PLATE_WITH_PRINT:
        if print_job_id is None:
            raise ShelfError("A plate with a print needs the print_job_id of its job.")
        if job_exists is not None and not job_exists(print_job_id):
            raise ShelfError(f"Print job {print_job_id} does not exist.")
    return Shelf(shelf_number, True, plate_state, print_job_id)


class RackStore:
    """Racks' integer ids and shelves, by subentry id."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store; call async_load before use."""
        self._store: Store[_Stored] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.racks")
        self._data: _Stored = {"next_id": 1, "racks": {}}
        self._shelves: dict[str, list[Shelf]] = {}

    async def async_load(self) -> None:
        """Read the stored racks."""
        if (stored := await self._store.async_load()) is not None:
            self._data = stored
        self._shelves = {
            subentry_id: [Shelf(**shelf) for shelf in rack["shelves"]]
            for subentry_id, rack in self._data["racks"].items()
        }

    async def _async_save(self) -> None:
        for subentry_id, shelves in self._shelves.items():
            self._data["racks"][subentry_id]["shelves"] = [asdict(shelf) for shelf in shelves]
        await self._store.async_save(self._data)

    def rack_id(self, subentry_id: str) -> int | None:
        """The integer id of a rack."""
        rack = self._data["racks"].get(subentry_id)
        return rack["id"] if rack else None

    def subentry_for(self, rack_id: int) -> str | None:
        """The subentry id of an integer rack id."""
        for subentry_id, rack in self._data["racks"].items():
            if rack["id"] == rack_id:
                return subentry_id
        return None

    def shelves(self, subentry_id: str) -> list[Shelf]:
        """A rack's shelves, in order."""
        return self._shelves.get(subentry_id, [])

    async def async_ensure(self, subentry_id: str, number_of_shelves: int) -> int:
        """Create or resize a rack's shelves (removed shelves must be empty); return its id."""
        rack = self._data["racks"].get(subentry_id)
        if rack is None:
            rack = _StoredRack(id=self._data["next_id"], shelves=[])
            self._data["next_id"] += 1
            self._data["racks"][subentry_id] = rack
            self._shelves[subentry_id] = []
        shelves = self._shelves[subentry_id]
        if len(shelves) == number_of_shelves:
            return rack["id"]
        occupied = [shelf.shelf_number for shelf in shelves[number_of_shelves:] if shelf.occupied]
        if occupied:
            raise ShelfError(f"Shelves {occupied} hold plates: empty them before removing them.")
        del shelves[number_of_shelves:]
        shelves.extend(Shelf(number) for number in range(len(shelves) + 1, number_of_shelves + 1))
        await self._async_save()
        return rack["id"]

    async def async_remove(self, subentry_id: str) -> None:
        """Forget a rack (its id is not reused)."""
        if self._data["racks"].pop(subentry_id, None) is not None:
            self._shelves.pop(subentry_id, None)
            await self._async_save()

    async def async_set_shelf(self, subentry_id: str, shelf: Shelf) -> tuple[Shelf, Shelf]:
        """Replace a validated shelf and save; return (before, after)."""
        shelves = self._shelves[subentry_id]
        before = shelves[shelf.shelf_number - 1]
        shelves[shelf.shelf_number - 1] = shelf
        await self._async_save()
        return before, shelf
