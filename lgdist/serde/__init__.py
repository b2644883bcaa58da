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

from typing import Any, Optional

from lgdist.errors import SerializationError
from lgdist.serde.decode import loads
from lgdist.serde.encode import dumps, dumps_checkpoint, dumps_key

__all__ = ["dumps", "loads", "dumps_key", "dumps_checkpoint", "serialize_value", "deserialize_value"]


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
