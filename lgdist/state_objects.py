"""State objects (pydantic models, dataclasses) as plain dicts of channel
values, and back.

Imports nothing from lgdist: ``lgdist.types`` (``Command.update`` given as a
state object) and ``lgdist.graph`` both build on it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional


def is_pydantic_model_class(schema: Any) -> bool:
    """Whether ``schema`` is a pydantic (v2) model class."""
    return isinstance(schema, type) and hasattr(schema, "model_fields") and hasattr(schema, "model_validate")


def state_to_dict(value: Any) -> Optional[dict]:
    """A node's state-object output as a dict of updates, or None if the value
    is not a state object."""
    if isinstance(value, dict):
        return value
    if hasattr(type(value), "model_fields") and hasattr(value, "model_dump"):
        # Only fields that differ from their defaults or were set explicitly
        # count as updates, like a partial dict would.
        return {name: getattr(value, name) for name in type(value).model_fields if name in value.model_fields_set}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def coerce_to_schema(schema: Any, values: dict) -> Any:
    """Build the object a node receives for a schema from channel values."""
    if schema is None or schema is Any:
        return values
    if is_pydantic_model_class(schema):
        return schema.model_validate(values) if values else schema.model_construct()
    if dataclasses.is_dataclass(schema):
        try:
            return schema(**values)
        except TypeError:
            return values
    return values
