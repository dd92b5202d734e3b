"""REST mirror of the OttoEngine OttoRacks API at /api/print_farm/ottoracks."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from homeassistant.const import CONF_NAME
import voluptuous as vol

from ..const import CONF_OTTOEJECT, DOMAIN
from ..rules.racks import RACK_FIELDS, Shelf, ShelfError, ShelfReservedError
from ..runtime.farm import PrintFarm
from ..runtime.rack import RackCoordinator, async_add_rack, async_remove_rack
from .base import API_PREFIX, ApiError, FarmView, Operation, int_id, json_integer, operation, whole_number
from .shapes import BOOLEAN, INTEGER, MESSAGE, NUMBER, STRING, array, extend, merge, nullable, one_of, shape

_OTTOEJECT_ID = vol.Any(None, json_integer(1))
_CREATE_FIELDS: dict[vol.Marker, Any] = {vol.Required(k): v for k, v in RACK_FIELDS.items()}
CREATE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME): vol.All(str, vol.Strip, vol.Length(min=1, max=50)),
        **_CREATE_FIELDS,
        # Beyond the seed: the OttoEject that stores plates on it.
        vol.Optional("ottoeject_id", default=None): _OTTOEJECT_ID,
    }
)
UPDATE_SCHEMA = vol.Schema({vol.Required("ottoeject_id"): _OTTOEJECT_ID})
SHELF_SCHEMA = vol.Schema(
    {
        vol.Required("has_plate"): bool,
        vol.Optional("plate_state", default=None): vol.Any(None, str),
        vol.Optional("print_job_id", default=None): vol.Any(None, json_integer(1)),
    }
)


def _spacing(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


RACK_BODY = shape(
    {
        "id": INTEGER,
        "name": STRING,
        "number_of_shelves": INTEGER,
        "shelf_spacing_mm": NUMBER,
        "bed_size": STRING,
        "ottoeject_id": nullable(INTEGER),
    }
)
# Shelf.as_dict(): its id (its number) and its fields.
SHELF_BODY = shape(
    {
        "id": INTEGER,
        "shelf_number": INTEGER,
        "has_plate": BOOLEAN,
        "plate_state": nullable(STRING),
        "print_job_id": nullable(INTEGER),
    }
)
_SHELF_JOB = shape({"id": INTEGER, "filename": nullable(STRING), "completed_at": nullable(STRING)})
SHELF_WITH_JOB_BODY = extend(SHELF_BODY, print_job=nullable(_SHELF_JOB))
COUNTS_BODY = shape({"occupied_shelves": INTEGER, "available_shelves": INTEGER})
_SHELF_CHANGED_BODY = extend(SHELF_BODY, ottorack_id=INTEGER, message=STRING)


def rack_body(rack: RackCoordinator) -> dict[str, Any]:
    """The seed's rack fields, and (beyond the seed) the OttoEject that stores plates on it."""
    ejector = rack.entry.runtime_data.ejectors.get(rack.subentry.data.get(CONF_OTTOEJECT) or "")
    return {
        "id": rack.rack_id,
        "name": rack.name,
        "number_of_shelves": rack.number_of_shelves,
        "shelf_spacing_mm": rack.shelf_spacing_mm,
        "bed_size": rack.bed_size,
        "ottoeject_id": ejector.ejector_id if ejector else None,
    }


def _ejector_subentry(farm: PrintFarm, ottoeject_id: int | None) -> str | None:
    if ottoeject_id is None:
        return None
    ejector = farm.ejector_by_id(ottoeject_id)
    if ejector is None:
        raise ApiError(400, f"Ottoeject {ottoeject_id} not found")
    return ejector.subentry.subentry_id


def _shelf_body(rack: RackCoordinator, shelf: Shelf, *, with_job: bool) -> dict[str, Any]:
    body = shelf.as_dict()
    if with_job:
        jobs = rack.entry.runtime_data.jobs
        job = jobs.store.jobs.get(shelf.print_job_id) if shelf.print_job_id is not None else None
        # What the shelf shows of the job whose print it holds (kept on the shelf if it was deleted).
        if job is not None:
            body["print_job"] = {
                "id": job.id,
                "filename": jobs.filename_of(job),
                "completed_at": job.completed_at,
            }
        elif shelf.print_job_id is not None and (kept := rack.kept(shelf.shelf_number)) is not None:
            body["print_job"] = {"id": shelf.print_job_id, **kept}
        else:
            body["print_job"] = None
    return body


def _counts(rack: RackCoordinator) -> dict[str, int]:
    return {"occupied_shelves": rack.occupied_shelves, "available_shelves": rack.available_shelves}


class _RackView(FarmView):
    def rack(self, rack_id: str) -> RackCoordinator:
        rack = self.farm().rack_by_id(int_id(rack_id, "Ottorack"))
        if rack is None:
            raise ApiError(404, f"Ottorack {rack_id} not found")
        return rack

    @staticmethod
    def shelf_number(rack: RackCoordinator, shelf_id: str) -> int:
        """A shelf id is its number in the rack; anything else is a bad request, as the seed's 400s."""
        number = whole_number(shelf_id)
        if number is None:
            raise ApiError(400, f"Shelf id must be a number from 1 to {rack.number_of_shelves}.")
        if not 1 <= number <= rack.number_of_shelves:
            raise ApiError(
                400,
                f"Shelf {number} does not exist: ottorack {rack.rack_id} has shelves 1 to {rack.number_of_shelves}.",
            )
        return number


class RacksView(FarmView):
    """/ottoracks: list and create."""

    url = f"{API_PREFIX}/ottoracks"
    extra_urls = [f"{API_PREFIX}/ottoracks/"]
    name = f"api:{DOMAIN}:ottoracks"

    @operation(
        Operation(
            summary="List ottoracks with their occupancy",
            admin=False,
            responses={200: "The racks"},
            returns={200: array(merge(RACK_BODY, COUNTS_BODY))},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """All racks with counts."""
        racks = sorted(self.farm().racks.values(), key=lambda rack: rack.rack_id)
        return self.json([{**rack_body(rack), **_counts(rack)} for rack in racks])

    @operation(
        Operation(
            summary="Create an ottorack",
            body=CREATE_SCHEMA,
            responses={
                201: "Created, with every shelf",
                400: "Invalid body",
                409: "A rack with this name exists",
            },
            returns={201: extend(RACK_BODY, shelves=array(SHELF_BODY), message=STRING)},
        )
    )
    async def post(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Add the rack's subentry; its shelves start without plates."""
        farm = self.farm()
        ejector = _ejector_subentry(farm, body.pop("ottoeject_id"))
        try:
            rack = await async_add_rack(self.hass, farm.entry, {**body, CONF_OTTOEJECT: ejector})
        except ShelfError as err:
            raise ApiError(409, str(err)) from None
        return self.json(
            {
                **rack_body(rack),
                "shelves": [_shelf_body(rack, shelf, with_job=False) for shelf in rack.shelves],
                "message": "Ottorack created successfully",
            },
            status_code=201,
        )


class RackView(_RackView):
    """/ottoracks/{id}: one rack with every shelf; change its OttoEject; remove it."""

    url = f"{API_PREFIX}/ottoracks/{{rack_id}}"
    name = f"api:{DOMAIN}:ottorack"

    @operation(
        Operation(
            summary="An ottorack with all its shelves",
            admin=False,
            responses={200: "The rack", 404: "Unknown rack"},
            returns={200: merge(extend(RACK_BODY, shelves=array(SHELF_WITH_JOB_BODY)), COUNTS_BODY)},
        )
    )
    async def get(self, request: web.Request, rack_id: str) -> web.Response:
        """The rack in full."""
        rack = self.rack(rack_id)
        return self.json(
            {
                **rack_body(rack),
                "shelves": [_shelf_body(rack, shelf, with_job=True) for shelf in rack.shelves],
                **_counts(rack),
            }
        )

    @operation(
        Operation(
            summary="Name the OttoEject that stores plates on the rack (beyond the seed; null: none)",
            body=UPDATE_SCHEMA,
            responses={
                200: "The rack",
                400: "Invalid body or unknown OttoEject",
                404: "Unknown rack",
                409: "A job has shelves reserved on it",
            },
            returns={200: extend(merge(RACK_BODY, COUNTS_BODY), message=STRING)},
        )
    )
    async def put(self, request: web.Request, rack_id: str, body: dict[str, Any]) -> web.Response:
        """Change the rack's OttoEject."""
        rack = self.rack(rack_id)
        farm = self.farm()
        ejector = _ejector_subentry(farm, body["ottoeject_id"])
        if (holder := farm.ejection.placement.in_use(rack_id=rack.rack_id)) is not None:
            raise ApiError(409, f"Print job {holder} has shelves reserved on this rack: change it later.")
        data = {key: value for key, value in rack.subentry.data.items() if key != CONF_OTTOEJECT}
        if ejector is not None:
            data[CONF_OTTOEJECT] = ejector
        self.hass.config_entries.async_update_subentry(farm.entry, rack.subentry, data=data)
        await farm.async_sync()
        return self.json({**rack_body(rack), **_counts(rack), "message": "Ottorack updated successfully"})

    @operation(
        Operation(
            summary="Remove an ottorack (beyond the seed); ?force=true even while a job needs its shelves",
            responses={
                200: "Deleted",
                400: "force is not true or false",
                404: "Unknown rack",
                409: "A job still needs one of its shelves (reserved, or its plate on its way)",
            },
            returns={200: MESSAGE},
            query={"force": one_of(("true", "false"))},
        )
    )
    async def delete(self, request: web.Request, rack_id: str) -> web.Response:
        """Remove the rack's subentry, its shelves and its device."""
        rack = self.rack(rack_id)
        force = request.query.get("force", "false").lower()
        if force not in ("true", "false"):
            raise ApiError(400, "force must be true or false.")
        try:
            await async_remove_rack(self.hass, self.farm().entry, rack, force=force == "true")
        except ShelfReservedError as err:
            raise ApiError(409, str(err)) from None
        return self.json({"message": "Ottorack deleted successfully"})


class ShelfView(_RackView):
    """/ottoracks/{id}/shelves/{shelf_id}: set a shelf."""

    url = f"{API_PREFIX}/ottoracks/{{rack_id}}/shelves/{{shelf_id}}"
    name = f"api:{DOMAIN}:ottorack:shelf"

    @operation(
        Operation(
            summary="Set a shelf: no plate, empty plate, or plate with a print of a job",
            body=SHELF_SCHEMA,
            responses={
                200: "Updated",
                400: "Not one of the three valid shelf states, or no such shelf",
                404: "Unknown rack",
                409: "The shelf is reserved for a job's plate",
            },
            returns={200: _SHELF_CHANGED_BODY},
        )
    )
    async def put(
        self, request: web.Request, rack_id: str, shelf_id: str, body: dict[str, Any]
    ) -> web.Response:
        """Validate the state whole, then save it."""
        rack = self.rack(rack_id)
        number = self.shelf_number(rack, shelf_id)
        try:
            shelf = await rack.async_set_shelf(number, **body, context=self.context(request))
        except ShelfReservedError as err:
            raise ApiError(409, str(err)) from None
        except ShelfError as err:
            raise ApiError(400, str(err)) from None
        return self.json(
            {**shelf.as_dict(), "ottorack_id": rack.rack_id, "message": "Shelf updated successfully"}
        )


class ShelfResetView(_RackView):
    """/ottoracks/{id}/shelves/{shelf_id}/reset."""

    url = f"{API_PREFIX}/ottoracks/{{rack_id}}/shelves/{{shelf_id}}/reset"
    name = f"api:{DOMAIN}:ottorack:shelf:reset"

    @operation(
        Operation(
            summary="Mark a shelf as holding no plate",
            responses={
                200: "Reset",
                400: "No such shelf",
                404: "Unknown rack",
                409: "The shelf is reserved for a job's plate",
            },
            returns={200: _SHELF_CHANGED_BODY},
        )
    )
    async def post(self, request: web.Request, rack_id: str, shelf_id: str) -> web.Response:
        """Clear the shelf."""
        rack = self.rack(rack_id)
        number = self.shelf_number(rack, shelf_id)
        try:
            shelf = await rack.async_reset_shelf(number, context=self.context(request))
        except ShelfReservedError as err:
            raise ApiError(409, str(err)) from None
        return self.json(
            {**shelf.as_dict(), "ottorack_id": rack.rack_id, "message": "Shelf reset successfully"}
        )


RACK_VIEWS: list[type[FarmView]] = [RacksView, RackView, ShelfView, ShelfResetView]
