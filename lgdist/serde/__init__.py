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
``__reduce__``. A tag names a class as ``"module:QualName"``, and the loader
looks a name up only when it is on an allowlist, checked before any module
is imported or even looked up (as langchain-core's ``load()`` checks its
namespaces first):

- lgdist's own types, ``langchain_core.messages`` and
  ``langchain_core.documents``, builtin exceptions, ``collections``;
- the classes a compiled graph's state, input, output, node-input and context
  schemas declare, nested ones included (remembered at ``compile()``; nothing
  is imported for them);
- the top-level packages of the graphs named in ``LGDIST_GRAPHS`` (the
  operator's own code, which the workers import anyway);
- the modules named in ``LGDIST_SERDE_MODULES`` (comma-separated, a package
  covers its submodules), and classes passed to :func:`allow_classes`.

Anything else (``os:system``, a module no graph declares) is refused with
:class:`~lgdist.errors.SerializationError` without being imported.

An allowed name must then be a class *of the tagged kind* - a pydantic
model, a dataclass, an ``Enum``, a namedtuple, an exception, a ``dict``
subclass, or a slotted class defined in an ``lgdist.`` module. The only code it
calls is that class's own construction path: ``model_construct`` for pydantic
models (values were validated when first created and are restored exactly),
the constructor for the others, and ``Cls(value)`` for enums. Anything else -
functions, arbitrary callables, a name that is not a class of the expected
kind - is refused too. Treat a
checkpoint database as trusted as the code of the graphs that write to it.
"""

from __future__ import annotations

from typing import Any, Optional

from lgdist.errors import SerializationError
from lgdist.serde.classes import allow_classes
from lgdist.serde.decode import loads
from lgdist.serde.encode import dumps, dumps_checkpoint, dumps_key

__all__ = ["allow_classes", "dumps", "loads", "dumps_key", "dumps_checkpoint", "serialize_value", "deserialize_value"]


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
