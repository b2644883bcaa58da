"""Reading tagged JSON back into the values :mod:`lgdist.serde.encode`
wrote; classes are found through :func:`lgdist.serde.classes.resolve`."""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import importlib
import json
import uuid
from typing import Any, Callable

from lgdist.errors import SerializationError
from lgdist.serde.classes import SIMPLE_FACTORIES, TAG, is_lgdist_slotted, resolve

_TAG_BYTES = b'"__lg__"'


def loads(data: bytes | str) -> Any:
    """Deserialize tagged JSON produced by :func:`dumps`."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if _TAG_BYTES not in data:
            return json.loads(data)
    elif '"__lg__"' not in data:
        return json.loads(data)
    # object_hook runs bottom-up, so a tag's payload is already decoded.
    return json.loads(data, object_hook=_decode_object)


def _decode_object(obj: dict) -> Any:
    kind = obj.get(TAG)
    if kind is None:
        return obj
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise SerializationError(f"unknown tag {kind!r} in stored data; was it written by a newer lgdist?")
    return decoder(obj)


def _decode_dict(obj: dict) -> Any:
    pairs = [tuple(p) for p in obj["v"]]
    if "c" not in obj:
        return dict(pairs)
    cls = resolve(obj["c"], "dict", lambda c: issubclass(c, dict))
    return cls(pairs)


def _decode_datetime(obj: dict) -> _dt.datetime:
    value = _dt.datetime.fromisoformat(obj["v"])
    if "tz" in obj:
        import zoneinfo

        value = value.replace(tzinfo=zoneinfo.ZoneInfo(obj["tz"]), fold=obj.get("fold", 0))
    return value


def _decode_enum(obj: dict) -> Any:
    cls = resolve(obj["c"], "enum", lambda c: issubclass(c, enum.Enum))
    return cls(obj["v"])


def _decode_model(obj: dict) -> Any:
    pydantic = importlib.import_module("pydantic")
    cls = resolve(obj["c"], "pydantic model", lambda c: issubclass(c, pydantic.BaseModel))
    values = obj["v"]
    # Fill empty-container defaults here: pydantic's get_default() inspects the
    # factory's signature on every call, which dominates loading messages.
    for name, factory in _container_defaults(cls):
        if name not in values:
            values[name] = factory()
    fields_set = set(obj["set"]) if "set" in obj else set(cls.model_fields)
    model = cls.model_construct(_fields_set=fields_set, **values)
    if "p" in obj and getattr(model, "__pydantic_private__", None) is not None:
        model.__pydantic_private__.update(obj["p"])
    return model


_container_factories: dict[type, list[tuple[str, type]]] = {}


def _container_defaults(cls: type) -> list[tuple[str, type]]:
    found = _container_factories.get(cls)
    if found is None:
        found = _container_factories[cls] = [
            (name, field.default_factory)
            for name, field in cls.model_fields.items()
            if field.default_factory in SIMPLE_FACTORIES and field.alias in (None, name)
        ]
    return found


def _decode_dataclass(obj: dict) -> Any:
    cls = resolve(obj["c"], "dataclass", lambda c: dataclasses.is_dataclass(c))
    values = obj["v"]
    fields = dataclasses.fields(cls)
    instance = cls(**{f.name: values[f.name] for f in fields if f.init and f.name in values})
    for f in fields:
        if not f.init and f.name in values:
            object.__setattr__(instance, f.name, values[f.name])  # frozen-safe
    return instance


def _decode_namedtuple(obj: dict) -> Any:
    cls = resolve(obj["c"], "namedtuple", lambda c: issubclass(c, tuple) and hasattr(c, "_fields"))
    return cls(*obj["v"])


def _decode_slotted(obj: dict) -> Any:
    cls = resolve(obj["c"], "lgdist object", is_lgdist_slotted)
    return cls(**obj["v"])


def _decode_exception(obj: dict) -> BaseException:
    cls = resolve(obj["c"], "exception", lambda c: issubclass(c, BaseException))
    args = obj["v"]
    try:
        return cls(*args)
    except Exception:
        # A custom __init__ may take other arguments than it stores in .args.
        exc = cls.__new__(cls)
        exc.args = tuple(args)
        return exc


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


_DECODERS: dict[str, Callable[[dict], Any]] = {
    "tuple": lambda o: tuple(o["v"]),
    "set": lambda o: set(o["v"]),
    "frozenset": lambda o: frozenset(o["v"]),
    "dict": _decode_dict,
    "bytes": lambda o: _b64(o["v"]),
    "bytearray": lambda o: bytearray(_b64(o["v"])),
    "datetime": _decode_datetime,
    "date": lambda o: _dt.date.fromisoformat(o["v"]),
    "time": lambda o: _dt.time.fromisoformat(o["v"]),
    "timedelta": lambda o: _dt.timedelta(*o["v"]),
    "uuid": lambda o: uuid.UUID(o["v"]),
    "decimal": lambda o: decimal.Decimal(o["v"]),
    "enum": _decode_enum,
    "model": _decode_model,
    "dataclass": _decode_dataclass,
    "exception": _decode_exception,
    "namedtuple": _decode_namedtuple,
    "object": _decode_slotted,
}
