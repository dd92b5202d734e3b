"""The books' storage form: records to JSON-safe data and back (Decimals as text, instants as ISO 8601)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from .money import to_decimal


def dump(record: Any) -> Any:
    """A record as JSON-safe data (Decimals as text, instants as ISO 8601)."""
    if is_dataclass(record) and not isinstance(record, type):
        return {f.name: dump(getattr(record, f.name)) for f in fields(record)}
    if isinstance(record, Decimal):
        return str(record)
    if isinstance(record, datetime):
        return record.isoformat()
    if isinstance(record, list):
        return [dump(value) for value in record]
    return record


@cache
def _hints(cls: type, _datetime: type) -> dict[str, Any]:
    """The record's field types, cached per the `datetime` class they resolve to.

    A test clock (freezegun) swaps the module's `datetime` for its own class while it runs: hints
    cached under one class and compared with the other would take every instant for text.
    """
    return get_type_hints(cls)


def load[R](cls: type[R], data: Mapping[str, Any]) -> R:
    """A record from its storage form; unknown keys (from a newer minor version) are ignored."""
    hints = _hints(cls, datetime)  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            values[f.name] = _load_value(hints[f.name], data[f.name])
    return cls(**values)


def _load_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
        origin = get_origin(hint)
    if origin is list:
        (inner,) = get_args(hint)
        return [_load_value(inner, v) for v in value]
    if hint is Decimal:
        return to_decimal(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if is_dataclass(hint):
        return load(hint, value)  # type: ignore[arg-type]
    return value
