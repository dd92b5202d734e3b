"""OttoRack shelves: the three valid shelf states and the rack's fields.

A shelf holds no plate, an empty plate, or a plate with a finished print of a known job.
`validate_shelf` checks a change whole before anything is written; `RackStore` (runtime/storage.py)
keeps the shelves and saves before a change returns: a shelf's content is a fact the orchestrator
relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
import re
from typing import Any, Final

import voluptuous as vol

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


class ShelfReservedError(ShelfError):
    """A person's change of a shelf a job reserved for its plate (REST answers 409)."""


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
        """The shelf as plain data, its id and fields: what REST, the actions and the shelf event show."""
        return {"id": self.id, **asdict(self)}


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
