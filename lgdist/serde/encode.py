"""Writing tagged JSON: plain JSON values as they are, everything else as a
tagged object (the kinds are listed in :mod:`lgdist.serde`)."""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as _dt
import decimal
import enum
import json
import sys
import uuid
from typing import Any, Callable, Optional

from lgdist.errors import SerializationError
from lgdist.serde.classes import SIMPLE_FACTORIES, TAG, Unserializable, class_path, is_lgdist_slotted

_HINT = "use JSON types, pydantic models, dataclasses, or langchain messages"
_SCALARS = (str, int, float, bool, type(None))
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_ascii_encoder = json.JSONEncoder(separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` to tagged JSON bytes (UTF-8)."""
    return dumps_key(None, obj)


def dumps_checkpoint(checkpoint: Any) -> bytes:
    """A checkpoint without its channel values: versions and bookkeeping,
    plain JSON by construction (string keys, string/int values), so the
    per-step write skips the type walk of :func:`dumps`."""
    body = {k: v for k, v in checkpoint.items() if k != "channel_values"}
    try:
        return _encoder.encode(body).encode()
    except (TypeError, ValueError):
        return dumps(body)


def dumps_key(key: Optional[str], obj: Any) -> bytes:
    """Like :func:`dumps`, but a failure names the state key being stored."""
    try:
        if type(obj) not in _SCALARS and not _is_plain(obj):
            obj = _encode(obj)
        # else the fast path: plain JSON needs no tagging, so no copy is built.
        text = _encoder.encode(obj)
        try:
            return text.encode()
        except UnicodeEncodeError:  # lone surrogates: let json escape them
            return _ascii_encoder.encode(obj).encode()
    except Unserializable as exc:
        what = f"cannot store state key {key!r}" if key is not None else "cannot serialize value"
        raise SerializationError(
            f"{what}: object of type {exc.cls.__qualname__} {exc.reason}; {_HINT}"
        ) from None
    except RecursionError:
        what = f"state key {key!r}" if key is not None else "value"
        raise SerializationError(f"cannot serialize {what}: it is circular or nested too deeply") from None


def _is_plain(obj: Any) -> bool:
    """True when ``json`` alone round-trips ``obj`` exactly.

    Stops at the first value that needs a tag, so for tagged data (a list of
    messages, say) this costs one element's worth of work."""
    t = type(obj)
    if t is list:
        return all(type(x) in _SCALARS or _is_plain(x) for x in obj)
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str or k == TAG:
                return False
            if type(v) not in _SCALARS and not _is_plain(v):
                return False
        return True
    return t in _SCALARS


def _encode(obj: Any) -> Any:
    """Turn ``obj`` into a tree of plain JSON values and tagged objects."""
    t = type(obj)
    if t in _SCALARS:
        return obj
    if t is list:
        return [_encode(x) for x in obj]
    if t is dict:
        if all(type(k) is str for k in obj) and TAG not in obj:
            return {k: _encode(v) for k, v in obj.items()}
        return {TAG: "dict", "v": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    encoder = _ENCODERS.get(t)
    if encoder is not None:
        return encoder(obj)
    # Order matters: IntEnum is an int, pydantic models may be dataclass-like.
    if isinstance(obj, enum.Enum):
        return {TAG: "enum", "c": class_path(t), "v": _encode(obj.value)}
    if isinstance(obj, str):
        # str subclasses with no state of their own (langchain's TextAccessor)
        # are stored as the plain string they are.
        return str(obj)
    if _is_pydantic_model(obj):
        return _encode_model(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _encode_dataclass(obj)
    if isinstance(obj, BaseException):
        args = [_encode_or_str(a) for a in obj.args]
        return {TAG: "exception", "c": class_path(t), "v": args}
    if isinstance(obj, tuple) and hasattr(t, "_fields"):
        return {TAG: "namedtuple", "c": class_path(t), "v": [_encode(x) for x in obj]}
    if is_lgdist_slotted(t):
        # lgdist's own slotted value types (Send): rebuilt as Cls(**slots).
        values = {name: _encode(getattr(obj, name)) for name in t.__slots__}
        return {TAG: "object", "c": class_path(t), "v": values}
    if isinstance(obj, dict) and _dict_subclass_round_trips(t):
        return {TAG: "dict", "c": class_path(t), "v": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    raise Unserializable(t)


def _encode_or_str(value: Any) -> Any:
    # Exception args are informative, not state: keep what cannot be encoded as text.
    try:
        return _encode(value)
    except Unserializable:
        return repr(value)


def _encode_datetime(obj: _dt.datetime) -> dict:
    zone = _zone_key(obj.tzinfo)
    if zone is None:
        return {TAG: "datetime", "v": obj.isoformat()}
    # ZoneInfo survives as its key, so "Europe/Paris" comes back as itself
    # rather than as a fixed offset; fold disambiguates repeated wall times.
    return {TAG: "datetime", "v": obj.replace(tzinfo=None).isoformat(), "tz": zone, "fold": obj.fold}


def _encode_time(obj: _dt.time) -> dict:
    return {TAG: "time", "v": obj.isoformat()}


def _zone_key(tzinfo: Any) -> Optional[str]:
    key = getattr(tzinfo, "key", None)
    zoneinfo = sys.modules.get("zoneinfo")
    if key and zoneinfo is not None and isinstance(tzinfo, zoneinfo.ZoneInfo):
        return key
    return None


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    tuple: lambda o: {TAG: "tuple", "v": [_encode(x) for x in o]},
    set: lambda o: {TAG: "set", "v": [_encode(x) for x in o]},
    frozenset: lambda o: {TAG: "frozenset", "v": [_encode(x) for x in o]},
    bytes: lambda o: {TAG: "bytes", "v": base64.b64encode(o).decode("ascii")},
    bytearray: lambda o: {TAG: "bytearray", "v": base64.b64encode(o).decode("ascii")},
    _dt.datetime: _encode_datetime,
    _dt.date: lambda o: {TAG: "date", "v": o.isoformat()},
    _dt.time: _encode_time,
    _dt.timedelta: lambda o: {TAG: "timedelta", "v": [o.days, o.seconds, o.microseconds]},
    uuid.UUID: lambda o: {TAG: "uuid", "v": str(o)},
    decimal.Decimal: lambda o: {TAG: "decimal", "v": str(o)},
}


def _is_pydantic_model(obj: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(obj, pydantic.BaseModel)


def _encode_model(obj: Any) -> dict:
    cls = type(obj)
    origin = obj.__pydantic_generic_metadata__.get("origin") or cls
    fields_set = obj.model_fields_set
    values = {}
    for name, field in cls.model_fields.items():
        value = obj.__dict__.get(name)
        # Leave out fields still at their default so messages stay small; a
        # default_factory other than an empty container may be non-deterministic
        # (ids, timestamps), so those values are always kept.
        if name not in fields_set:
            factory = field.default_factory
            if factory is None and _same(value, field.default):
                continue
            if factory in SIMPLE_FACTORIES and type(value) is factory and not value:
                continue
        values[name] = _encode(value)
    for name, value in (obj.__pydantic_extra__ or {}).items():
        values[name] = _encode(value)
    out = {TAG: "model", "c": class_path(origin), "v": values}
    if fields_set != cls.model_fields.keys():
        out["set"] = sorted(fields_set)
    private = getattr(obj, "__pydantic_private__", None)
    if private:
        out["p"] = {k: _encode(v) for k, v in private.items()}
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _encode_dataclass(obj: Any) -> dict:
    values = {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return {TAG: "dataclass", "c": class_path(type(obj)), "v": values}


def _dict_subclass_round_trips(cls: type) -> bool:
    # defaultdict(pairs) would fail on load (its first argument is the factory).
    return not issubclass(cls, collections.defaultdict)
