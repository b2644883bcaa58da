"""JSON schemas of a compiled graph's input, output and context, as
LangGraph gives them: a pydantic model's or TypedDict's own schema, and for
other schemas (dataclasses) a model named after the graph built from the
keys' types and defaults."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, Optional, get_args, get_origin

from pydantic import RootModel, TypeAdapter, create_model

from lgdist.graph.schema import is_typed_dict, schema_hints
from lgdist.state_objects import is_pydantic_model_class

__all__ = ["context_jsonschema", "output_model", "state_jsonschema"]


def context_jsonschema(schema: Any) -> Optional[dict]:
    """JSON schema of a graph's ``context_schema``: a pydantic model's own,
    a TypedDict's or dataclass's through pydantic; None without a schema."""
    if schema is None:
        return None
    if is_pydantic_model_class(schema):
        return schema.model_json_schema()
    if is_typed_dict(schema) or dataclasses.is_dataclass(schema):
        return TypeAdapter(schema).json_schema()
    raise ValueError(f"Invalid context schema type: {schema}. Must be a BaseModel, TypedDict or dataclass.")


def state_jsonschema(schema: Any, name: str, *, root_type: Any = None) -> dict:
    """JSON schema of an input or output (state) schema; ``name`` titles
    the model built for a schema that is neither pydantic nor a TypedDict.
    A graph whose state is one root value (``MessageGraph``) has no schema
    but ``root_type``."""
    if schema is None and root_type is not None:
        return create_model(name, __base__=RootModel[root_type], root=(root_type, None)).model_json_schema()
    if is_pydantic_model_class(schema):
        return schema.model_json_schema()
    if is_typed_dict(schema):
        return TypeAdapter(schema).json_schema()
    fields = {key: (_base_type(hint), _default(schema, key, hint)) for key, hint in schema_hints(schema).items()}
    return create_model(name, **fields).model_json_schema()


def _base_type(hint: Any) -> Any:
    """A key's value type, without ``Annotated`` reducers or channels."""
    return get_args(hint)[0] if get_origin(hint) is Annotated else hint


def _default(schema: Any, key: str, hint: Any) -> Any:
    """A key's default: the dataclass field's, else None for an optional
    type, else required."""
    if dataclasses.is_dataclass(schema):
        for f in dataclasses.fields(schema):
            if f.name == key:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
    base = _base_type(hint)
    if get_origin(base) in (typing.Union, types.UnionType) and type(None) in get_args(base):
        return None
    return ...


def output_model(name: str, channels: dict, keys: Any) -> Any:
    """The pydantic model ``get_output_schema()`` returns: every output key
    with its channel's value type, each optional (default None), as
    LangGraph builds it."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    return create_model(name, **{k: (getattr(channels[k], "typ", Any), None) for k in keys if k in channels})
