"""Tagged JSON: how lgdist stores state, checkpoints and pending writes.

Values that JSON already represents exactly (``None``, ``bool``, ``int``,
``float``, ``str``, lists, dicts with ``str`` keys) are written as plain JSON.
Everything else becomes a *tagged object*, a JSON object whose ``"__lg__"``
key names the kind::

    {"__lg__": "tuple", "v": [1, 2]}
    {"__lg__": "model", "c": "langchain_core.messages:HumanMessage", "v": {...}}

Kinds: tuple, set, frozenset, dict (non-``str`` keys, a dict that itself has an
``"__lg__"`` key, or a dict subclass), bytes, bytearray, datetime, date, time,
timedelta, uuid, decimal, enum, model (pydantic v2, which includes every
``langchain_core`` message and ``Document``), dataclass (including lgdist's
``Interrupt`` and ``Command``), namedtuple, object (lgdist's own slotted
classes such as ``Send``) and exception.

Trust model
-----------
Pickle is never used, so loading data cannot run arbitrary code through
``__reduce__``. A tag names a class as ``"module:QualName"``; to rebuild it the
loader takes the module from ``sys.modules``, or imports it only when its
top-level package is one this process has loaded already (the program's own
code and its libraries: ``workers.models`` once ``workers`` is loaded), or
one named in ``LGDIST_SERDE_MODULES`` (comma-separated); stored data never
makes the loader import a package the program does not use. It then requires the attribute to be a class *of the tagged kind* - a pydantic
model, a dataclass, an ``Enum``, a namedtuple, an exception, a ``dict``
subclass, or a slotted class defined in an ``lgdist.`` module. The only code it
calls is that class's own construction path: ``model_construct`` for pydantic
models (values were validated when first created and are restored exactly),
the constructor for the others, and ``Cls(value)`` for enums. Anything else -
functions, arbitrary callables, a name that is not a class of the expected
kind - is refused with :class:`~lgdist.errors.SerializationError`. Treat a
checkpoint database as trusted as the code of the graphs that write to it.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as _dt
import decimal
import enum
import importlib
import json
import os
import sys
import uuid
from typing import Any, Callable, Optional

from lgdist.errors import SerializationError

__all__ = ["dumps", "loads", "dumps_key", "serialize_value", "deserialize_value"]

TAG = "__lg__"
_TAG_BYTES = b'"__lg__"'
_HINT = "use JSON types, pydantic models, dataclasses, or langchain messages"
_SCALARS = (str, int, float, bool, type(None))
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_ascii_encoder = json.JSONEncoder(separators=(",", ":"))


class _Unserializable(Exception):
    """Raised inside the encoder; carries the innermost offending object."""

    def __init__(self, cls: type, reason: str = "is not serializable") -> None:
        super().__init__(cls)
        self.cls = cls
        self.reason = reason


# --------------------------------------------------------------------- dumps
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
    except _Unserializable as exc:
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
        return {TAG: "enum", "c": _class_path(t), "v": _encode(obj.value)}
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
        return {TAG: "exception", "c": _class_path(t), "v": args}
    if isinstance(obj, tuple) and hasattr(t, "_fields"):
        return {TAG: "namedtuple", "c": _class_path(t), "v": [_encode(x) for x in obj]}
    if _is_lgdist_slotted(t):
        # lgdist's own slotted value types (Send): rebuilt as Cls(**slots).
        values = {name: _encode(getattr(obj, name)) for name in t.__slots__}
        return {TAG: "object", "c": _class_path(t), "v": values}
    if isinstance(obj, dict) and _dict_subclass_round_trips(t):
        return {TAG: "dict", "c": _class_path(t), "v": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    raise _Unserializable(t)


def _encode_or_str(value: Any) -> Any:
    # Exception args are informative, not state: keep what cannot be encoded as text.
    try:
        return _encode(value)
    except _Unserializable:
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


_class_paths: dict[type, str] = {}


def _class_path(cls: type) -> str:
    path = _class_paths.get(cls)
    if path is None:
        path = _class_paths[cls] = _compute_class_path(cls)
    return path


def _compute_class_path(cls: type) -> str:
    module, qualname = cls.__module__, cls.__qualname__
    if "<locals>" in qualname:
        raise _Unserializable(
            cls, "is defined inside a function, so it could not be loaded back; define it at module level"
        )
    # Prefer langchain_core's public package ("langchain_core.messages") over
    # the private module that happens to define the class today, so stored
    # data survives langchain reorganising its files.
    parts = module.split(".")
    if parts[0] == "langchain_core" and len(parts) > 2:
        public = ".".join(parts[:2])
        try:
            if getattr(importlib.import_module(public), qualname, None) is cls:
                module = public
        except ImportError:
            pass
    return f"{module}:{qualname}"


def _is_pydantic_model(obj: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(obj, pydantic.BaseModel)


_SIMPLE_FACTORIES = (dict, list, set, tuple)


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
            if factory in _SIMPLE_FACTORIES and type(value) is factory and not value:
                continue
        values[name] = _encode(value)
    for name, value in (obj.__pydantic_extra__ or {}).items():
        values[name] = _encode(value)
    out = {TAG: "model", "c": _class_path(origin), "v": values}
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
    return {TAG: "dataclass", "c": _class_path(type(obj)), "v": values}


def _dict_subclass_round_trips(cls: type) -> bool:
    # defaultdict(pairs) would fail on load (its first argument is the factory).
    return not issubclass(cls, collections.defaultdict)


# --------------------------------------------------------------------- loads
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
    cls = _resolve(obj["c"], "dict", lambda c: issubclass(c, dict))
    return cls(pairs)


def _decode_datetime(obj: dict) -> _dt.datetime:
    value = _dt.datetime.fromisoformat(obj["v"])
    if "tz" in obj:
        import zoneinfo

        value = value.replace(tzinfo=zoneinfo.ZoneInfo(obj["tz"]), fold=obj.get("fold", 0))
    return value


def _decode_enum(obj: dict) -> Any:
    cls = _resolve(obj["c"], "enum", lambda c: issubclass(c, enum.Enum))
    return cls(obj["v"])


def _decode_model(obj: dict) -> Any:
    pydantic = importlib.import_module("pydantic")
    cls = _resolve(obj["c"], "pydantic model", lambda c: issubclass(c, pydantic.BaseModel))
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
            if field.default_factory in _SIMPLE_FACTORIES and field.alias in (None, name)
        ]
    return found


def _decode_dataclass(obj: dict) -> Any:
    cls = _resolve(obj["c"], "dataclass", lambda c: dataclasses.is_dataclass(c))
    values = obj["v"]
    fields = dataclasses.fields(cls)
    instance = cls(**{f.name: values[f.name] for f in fields if f.init and f.name in values})
    for f in fields:
        if not f.init and f.name in values:
            object.__setattr__(instance, f.name, values[f.name])  # frozen-safe
    return instance


def _decode_namedtuple(obj: dict) -> Any:
    cls = _resolve(obj["c"], "namedtuple", lambda c: issubclass(c, tuple) and hasattr(c, "_fields"))
    return cls(*obj["v"])


def _decode_slotted(obj: dict) -> Any:
    cls = _resolve(obj["c"], "lgdist object", _is_lgdist_slotted)
    return cls(**obj["v"])


def _is_lgdist_slotted(cls: type) -> bool:
    return cls.__module__.startswith("lgdist.") and "__slots__" in cls.__dict__


def _decode_exception(obj: dict) -> BaseException:
    cls = _resolve(obj["c"], "exception", lambda c: issubclass(c, BaseException))
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


_resolved: dict[tuple[str, str], type] = {}


def _resolve(path: str, kind: str, check: Callable[[type], bool]) -> type:
    """Find the class named ``module:QualName``; refuse anything that is not a
    class of the expected kind (see the trust model above)."""
    cached = _resolved.get((path, kind))
    if cached is not None:
        return cached
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise SerializationError(f"malformed class reference {path!r} in stored data")
    target: Any = sys.modules.get(module_name)
    if target is None and not _may_import(module_name):
        raise SerializationError(
            f"refusing to load stored {kind} {path!r}: module {module_name!r} is not loaded and its package "
            "is not in use by this program (import it first, or name it in LGDIST_SERDE_MODULES)"
        )
    try:
        if target is None:
            target = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise SerializationError(
            f"cannot load stored {kind} {path!r}: {exc}; is the module that defines it installed?"
        ) from None
    if not isinstance(target, type) or not check(target):
        raise SerializationError(f"refusing to load {path!r}: stored data says it is a {kind}, but it is not")
    _resolved[(path, kind)] = target
    return target


def _may_import(module_name: str) -> bool:
    """Whether stored data may make this process import ``module_name``."""
    package = module_name.partition(".")[0]
    if package in sys.modules:
        return True
    extra = os.environ.get("LGDIST_SERDE_MODULES", "")
    return package in {name.strip().partition(".")[0] for name in extra.split(",") if name.strip()}


# ------------------------------------------------------------ store helpers
def serialize_value(value: Any, key: Optional[str] = None) -> tuple[str, bytes]:
    """``(type, blob)`` for a store row: raw bytes are kept as they are (no
    base64 inflation), everything else is tagged JSON."""
    if type(value) is bytes:
        return "bytes", value
    return "json", dumps_key(key, value)


def deserialize_value(type_: str, blob: bytes) -> Any:
    """Inverse of :func:`serialize_value`."""
    if type_ == "bytes":
        return bytes(blob)
    if type_ == "json":
        return loads(blob)
    raise SerializationError(f"unknown stored value type {type_!r}")
