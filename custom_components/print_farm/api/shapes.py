"""JSON Schemas of the response bodies, declared beside the functions that build them.

Each body builder has its shape next to it, built with these helpers; the views name it in their
`Operation(returns=...)`, and the OpenAPI document shows it. `shape` lists every key as required and
allows no other, so a builder that drops, adds or retypes a key no longer fits (tests check real
bodies against the document).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final

type JsonSchema = dict[str, Any]

STRING: Final[JsonSchema] = {"type": "string"}
INTEGER: Final[JsonSchema] = {"type": "integer"}
NUMBER: Final[JsonSchema] = {"type": "number"}
BOOLEAN: Final[JsonSchema] = {"type": "boolean"}
# An object whose keys are not fixed (free-form metadata, a device's own answer).
OPEN_OBJECT: Final[JsonSchema] = {"type": "object"}
ANY: Final[JsonSchema] = {}


def nullable(schema: JsonSchema) -> JsonSchema:
    """The schema, or null."""
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: JsonSchema) -> JsonSchema:
    """A list of items of one schema."""
    return {"type": "array", "items": items}


def one_of(values: Iterable[str] | type[StrEnum]) -> JsonSchema:
    """A string that is one of the values (an enum's members, a tuple of constants)."""
    return {"type": "string", "enum": [str(value) for value in values]}


def mapping_of(values: JsonSchema) -> JsonSchema:
    """An object with any keys, each value of one schema."""
    return {"type": "object", "additionalProperties": values}


def shape(properties: Mapping[str, JsonSchema]) -> JsonSchema:
    """An object with exactly these keys, every one present (a null value counts as present)."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


def extend(base: JsonSchema, **more: JsonSchema) -> JsonSchema:
    """A shape with more keys: the schema of `{**base_body, key: ...}`."""
    return shape({**base["properties"], **more})


def merge(*shapes: JsonSchema) -> JsonSchema:
    """The schema of `{**a, **b}` for bodies of these shapes."""
    properties: dict[str, JsonSchema] = {}
    for part in shapes:
        properties.update(part["properties"])
    return shape(properties)


def pick(base: JsonSchema, *keys: str) -> JsonSchema:
    """Some keys of a shape, in this order."""
    return shape({key: base["properties"][key] for key in keys})


MESSAGE: Final = shape({"message": STRING})
