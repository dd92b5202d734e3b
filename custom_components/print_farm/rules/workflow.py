"""The ejection workflow: what happens to a finished plate, step by step, without Home Assistant.

After a printer reports FINISH its job stays PRINTING at 100 % while its plate goes through these
steps (docs/ARCHITECTURE.md, "The ejection workflow"):

    cool      wait until the bed is at or below the release temperature (or the longest wait)
    position  send the bed-positioning G-code to the printer
    settle    wait while the printer moves (a printer answers a G-code when it gets it, not at the end)
    home      OTTOEJECT_HOME                    the ejector is held from here to the last step
    eject     EJECT_FROM_{position}
    store     STORE_TO_SLOT_{shelf}            the shelf then holds the plate with the job's print
    grab      GRAB_FROM_SLOT_{shelf}           the shelf then holds no plate
    load      LOAD_ONTO_{position}             the printer's bed is then clear
    park      PARK_OTTOEJECT                   only when no other printer waits for the ejector

Each step is stored before it is begun (`sent`) and after it is confirmed; a macro carries a marker
comment (`; pf-step=<id>`) that Moonraker's G-code store keeps, so that after a restart the device
tells whether it received it. A step that cannot be resolved pauses the workflow (`fault`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
import re
from typing import Any, Final

from .racks import PLATE_EMPTY, Shelf

COOL: Final = "cool"
POSITION: Final = "position"
SETTLE: Final = "settle"
HOME: Final = "home"
EJECT: Final = "eject"
STORE: Final = "store"
GRAB: Final = "grab"
LOAD: Final = "load"
PARK: Final = "park"
STEPS: Final = (COOL, POSITION, SETTLE, HOME, EJECT, STORE, GRAB, LOAD, PARK)
MACRO_STEPS: Final = frozenset({HOME, EJECT, STORE, GRAB, LOAD, PARK})
# The steps during which the workflow holds its ejector (no other workflow, no manual macro).
HOLDING_STEPS: Final = MACRO_STEPS

# A job's stage (`orchestration_status`) while its plate goes through the workflow.
COOLING: Final = "cooling"
EJECTING: Final = "ejecting"
STORING: Final = "storing"
LOADING: Final = "loading"
PARKING: Final = "parking"
STAGE_OF_STEP: Final = {
    COOL: COOLING,
    POSITION: EJECTING,
    SETTLE: EJECTING,
    HOME: EJECTING,
    EJECT: EJECTING,
    STORE: STORING,
    GRAB: LOADING,
    LOAD: LOADING,
    PARK: PARKING,
}
WORKFLOW_STAGES: Final = frozenset(STAGE_OF_STEP.values())

# A step's state: not begun, begun (stored before it was sent), or stopped for a person.
READY: Final = "ready"
SENT: Final = "sent"
PAUSED: Final = "paused"

DEFAULT_MACROS: Final = {
    HOME: "OTTOEJECT_HOME",
    EJECT: "EJECT_FROM_{position}",
    STORE: "STORE_TO_SLOT_{shelf}",
    GRAB: "GRAB_FROM_SLOT_{shelf}",
    LOAD: "LOAD_ONTO_{position}",
    PARK: "PARK_OTTOEJECT",
}
_TEMPLATE_FIELD: Final = re.compile(r"\{(\w*)\}")
TEMPLATE_FIELDS: Final = frozenset({"position", "shelf"})
MARKER: Final = "pf-step"

# The bed temperature (°C) at which a plate of each material comes off: ours, editable per farm.
RELEASE_TEMPERATURES: Final = {
    "PLA": 30.0,
    "PETG": 35.0,
    "TPU": 30.0,
    "ABS": 40.0,
    "ASA": 40.0,
    "PC": 45.0,
    "PA": 45.0,
}
DEFAULT_RELEASE_TEMPERATURE: Final = 32.0

# What moves the bed out of the ejector's way, and how long the move takes (s), by model family.
_LOWER_BED: Final = "G90\nG1 Z200 F3000"
_BED_FORWARD: Final = "G90\nG1 Y170 F3000"
POSITIONING: Final = {"A1": _BED_FORWARD, "A1 mini": _BED_FORWARD}
DEFAULT_POSITIONING: Final = _LOWER_BED
SETTLE_SECONDS: Final = {"A1": 8.0, "A1 mini": 8.0}
DEFAULT_SETTLE_SECONDS: Final = 15.0


def release_temperature(material: str | None, overrides: Mapping[str, float] | None = None) -> float:
    """The bed temperature at which a plate printed in `material` may be ejected."""
    key = (material or "").strip().upper()
    base = key.split("-", 1)[0].split(" ", 1)[0]  # PLA-CF, PETG HF, ... take their family's
    for table in (overrides or {}, RELEASE_TEMPERATURES):
        upper = {name.upper(): value for name, value in table.items()}
        for name in (key, base):
            if name in upper:
                return float(upper[name])
    return DEFAULT_RELEASE_TEMPERATURE


def positioning_gcode(model: str | None) -> str:
    """The default bed-positioning G-code for a printer model."""
    return POSITIONING.get(model or "", DEFAULT_POSITIONING)


def settle_seconds(model: str | None) -> float:
    """The default time a printer needs to finish the positioning move."""
    return SETTLE_SECONDS.get(model or "", DEFAULT_SETTLE_SECONDS)


def check_template(template: str) -> None:
    """Raise ValueError unless a macro template names only {position} and {shelf}."""
    unknown = set(_TEMPLATE_FIELD.findall(template)) - TEMPLATE_FIELDS
    if unknown or not template.strip():
        raise ValueError(f"a macro template may only use {{position}} and {{shelf}}: {template!r}")
    try:  # an unclosed brace, a format spec or an index would only fail mid-ejection
        template.format(position="P1", shelf=1)
    except (ValueError, LookupError, AttributeError, TypeError) as err:
        raise ValueError(f"a macro template that cannot be filled: {template!r} ({err})") from err


def macro_name(templates: Mapping[str, str], step: str, *, position: str, shelf: int | None) -> str:
    """The macro a step runs, from the ejector's templates (defaults where it has none)."""
    template = templates.get(step) or DEFAULT_MACROS[step]
    check_template(template)
    return template.format(position=position, shelf="" if shelf is None else shelf)


def marker(job_id: int, step_id: str) -> str:
    """The comment a step's script ends with: Klipper ignores it, Moonraker's G-code store keeps it."""
    return f"{MARKER}={job_id}-{step_id}"


RECEIVED: Final = "received"  # the marker is in the store, and no error answered it
FAILED: Final = "failed"  # Klipper answered the marked script with an error (`!! ...`)
NEVER: Final = "never"  # the store reaches back to before the send, and the marker is not in it


def anchor_of(store: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest entry of Moonraker's G-code store, remembered before a script is sent."""
    if not store:
        return None
    newest = store[-1]
    return {"time": newest.get("time"), "message": newest.get("message")}


def resolve(store: Sequence[Mapping[str, Any]], mark: str, anchor: Mapping[str, Any] | None) -> str | None:
    """What became of the script marked `mark`, read from Moonraker's G-code store; None when unknown.

    No clock is compared (Moonraker's host and Home Assistant's may disagree after a power cut): the
    store's newest entry before the send (`anchor`) still there and no marker after it means the
    script never arrived. A store emptied by Moonraker's restart, or rolled past the anchor, cannot
    tell. After the marker, Klipper's answers up to the next script say whether it failed.
    """
    entries = list(store)
    for index, entry in enumerate(entries):
        message = entry.get("message")
        if (
            entry.get("type") == "command"
            and isinstance(message, str)
            and message.rstrip().endswith(f"; {mark}")
        ):
            for answer in entries[index + 1 :]:
                if answer.get("type") == "command":
                    break
                if str(answer.get("message") or "").startswith("!!"):
                    return FAILED
            return RECEIVED
    if anchor is not None and any(
        entry.get("time") == anchor.get("time") and entry.get("message") == anchor.get("message")
        for entry in entries
    ):
        return NEVER
    return None


@dataclass(frozen=True, slots=True)
class Reservation:
    """The shelves a job's plate will use: where the finished plate goes, where a fresh one comes from."""

    ejector_id: int
    rack_id: int
    store_shelf: int
    grab_shelf: int


def choose_shelves(shelves: Iterable[Shelf], reserved: set[int]) -> tuple[int | None, int | None]:
    """The shelf rule: (the shelf for the finished plate, the shelf to grab an empty plate from).

    The lowest-numbered free shelf, and the lowest-numbered shelf with an empty plate; shelves other
    jobs reserved are not taken. None where there is none.
    """
    store = grab = None
    for shelf in sorted(shelves, key=lambda shelf: shelf.shelf_number):
        if shelf.shelf_number in reserved:
            continue
        if not shelf.has_plate and store is None:
            store = shelf.shelf_number
        elif shelf.has_plate and shelf.plate_state == PLATE_EMPTY and grab is None:
            grab = shelf.shelf_number
    return store, grab


@dataclass(slots=True)
class Workflow:
    """Where a job's plate is in the workflow; stored with the job."""

    ejector_id: int
    position: str
    rack_id: int
    store_shelf: int
    grab_shelf: int
    finished_at: float  # unix time of FINISH: the cooling's longest wait counts from it
    step: str = COOL
    state: str = READY
    attempt: int = 1
    sent_at: float | None = None  # unix time the current step was stored as sent
    anchor: dict[str, Any] | None = None  # Moonraker's newest G-code store entry before the send
    settle_until: float | None = None
    fault: str | None = None
    resume: str = READY  # the state a person's retry returns a paused step to
    done: bool = False  # ended: the plate is on the rack, or a person aborted the workflow
    history: list[str] = field(default_factory=list)  # the steps done (or skipped), in order

    @property
    def step_id(self) -> str:
        """The marker of the current step's current attempt (unique per job, step and attempt)."""
        return f"{self.step}-{self.attempt}"

    @property
    def stage(self) -> str:
        """The job's stage during this step."""
        return STAGE_OF_STEP[self.step]

    @property
    def holds_ejector(self) -> bool:
        """Whether the ejector is this workflow's (from home to the end)."""
        return self.step in HOLDING_STEPS

    def advance(self, *, skip_park: bool = False) -> bool:
        """The current step is done: move to the next; False when there is none (the workflow ends)."""
        self.history.append(self.step)
        index = STEPS.index(self.step) + 1
        if index < len(STEPS) and STEPS[index] == PARK and skip_park:
            index += 1
        if index >= len(STEPS):
            return False
        self.step = STEPS[index]
        self.state = READY
        self.attempt = 1
        self.sent_at = None
        self.anchor = None
        self.fault = None
        return True

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for storage."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Workflow:
        """Read it back; keys another version wrote are ignored."""
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in raw.items() if key in names})
