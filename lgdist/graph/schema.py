"""Read a state schema (TypedDict, dataclass, pydantic model) into channels,
and read the type hints of node functions (input schema, return hint).

Converting state objects to and from dicts is :mod:`lgdist.state_objects`."""

from __future__ import annotations

import dataclasses
import inspect
from functools import lru_cache
from typing import Annotated, Any, Optional, get_args, get_origin, get_type_hints

import typing_extensions

from lgdist.engine.channels import BaseChannel, BinaryOperatorAggregate, LastValue
from lgdist.state_objects import is_pydantic_model_class


def _reducer_from(meta: tuple) -> Optional[Any]:
    for item in reversed(meta):
        if callable(item) and not isinstance(item, type):
            try:
                params = [
                    p
                    for p in inspect.signature(item).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                ]
            except (TypeError, ValueError):
                return item  # builtins such as operator.add have no signature
            if len(params) >= 2:
                return item
    return None


def _channel_from_meta(meta: tuple) -> Optional[BaseChannel]:
    for item in meta:
        if isinstance(item, BaseChannel):
            return item
        if isinstance(item, type) and issubclass(item, BaseChannel):
            return item(Any)
    return None


def channel_for(key: str, annotation: Any) -> BaseChannel:
    """The channel a state key gets: a reducer channel for
    ``Annotated[T, reducer]``, an explicit channel if one is annotated,
    otherwise ``LastValue``."""
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        explicit = _channel_from_meta(tuple(meta))
        if explicit is not None:
            explicit.key = key
            return explicit
        reducer = _reducer_from(tuple(meta))
        if reducer is not None:
            return BinaryOperatorAggregate(base, reducer, key=key)
        return LastValue(base, key=key)
    return LastValue(annotation, key=key)


def schema_hints(schema: Any) -> dict[str, Any]:
    """Field name -> annotation (with ``Annotated`` extras) for a schema."""
    if schema is None or schema is Any:
        return {}
    if is_pydantic_model_class(schema):
        hints = get_type_hints(schema, include_extras=True)
        return {name: hints.get(name, field.annotation) for name, field in schema.model_fields.items()}
    try:
        hints = get_type_hints(schema, include_extras=True)
    except (TypeError, NameError):
        hints = dict(getattr(schema, "__annotations__", {}))
    if dataclasses.is_dataclass(schema):
        names = [f.name for f in dataclasses.fields(schema)]
        return {n: hints.get(n, Any) for n in names}
    return {k: v for k, v in hints.items() if not k.startswith("__")}


def channels_for_schema(schema: Any) -> dict[str, BaseChannel]:
    return {key: channel_for(key, ann) for key, ann in schema_hints(schema).items()}


def schema_classes(*schemas: Any) -> set[type]:
    """Every class the schemas name, at any depth: the schemas themselves,
    the classes of their fields, of those classes' fields, and inside
    ``Optional``/``list``/``dict``/``Annotated``/... - the classes whose
    values stored state of these schemas may hold (:mod:`lgdist.serde`
    loads those and refuses others)."""
    found: set[type] = set()
    for schema in schemas:
        if schema is not None:
            try:
                found |= _classes_named_by(schema)
            except TypeError:  # unhashable: not cached
                found |= _classes_named_by.__wrapped__(schema)
    return found


_NOT_STATE_MODULES = frozenset({"builtins", "typing", "typing_extensions", "types", "abc", "collections.abc"})


@lru_cache(maxsize=1024)
def _classes_named_by(schema: Any) -> frozenset[type]:
    found: set[type] = set()
    pending = [schema]
    while pending:
        annotation = pending.pop()
        args = get_args(annotation)
        if args:
            pending.extend(a for a in args if not isinstance(a, (str, int, bytes)))
            pending.append(get_origin(annotation))
            continue
        if not isinstance(annotation, type) or annotation in found or annotation.__module__ in _NOT_STATE_MODULES:
            continue
        found.add(annotation)
        try:
            pending.extend(schema_hints(annotation).values())
        except Exception:  # noqa: BLE001 - a class whose hints do not resolve still counts itself
            pass
    return frozenset(found)


def is_typed_dict(schema: Any) -> bool:
    # typing_extensions' check also knows typing_extensions.TypedDict classes.
    return isinstance(schema, type) and typing_extensions.is_typeddict(schema)


def node_input_schema(action: Any) -> Any:
    """The input schema a node declares by its first parameter's type hint
    (a class with annotations: TypedDict, dataclass, pydantic model), as
    LangGraph infers it; None when it declares none."""
    call = getattr(action, "__call__", None)
    if not (inspect.isfunction(action) or inspect.ismethod(action) or inspect.ismethod(call)):
        return None
    try:
        hints = get_type_hints(call) or get_type_hints(action)
        if not hints:
            return None
        first = next(iter(inspect.signature(action).parameters))
        hint = hints.get(first)
        if isinstance(hint, type) and get_type_hints(hint):
            return hint
    except (NameError, TypeError, StopIteration, ValueError):
        pass
    return None


def return_hint(func: Any) -> Any:
    """A function's (or a callable object's, or a wrapped function's)
    return type hint, if any."""
    call = getattr(func, "__call__", None)
    if not (inspect.isfunction(func) or inspect.ismethod(func) or inspect.ismethod(call)):
        func = getattr(func, "func", None) or getattr(func, "afunc", None)
        if func is None:
            return None
    try:
        return (get_type_hints(getattr(func, "__call__", func)) or get_type_hints(func)).get("return")
    except (NameError, TypeError):
        return None


def literal_values(func: Any) -> Optional[tuple]:
    """The values of a function's ``Literal[...]`` return hint, if any."""
    hint = return_hint(func)
    if hint is not None and get_origin(hint) is typing_extensions.Literal:
        return get_args(hint)
    return None
