"""Class references in stored data (``"module:QualName"``): how a class is
named when it is written, and how a name is turned back into a class when
it is read, under the trust model of :mod:`lgdist.serde`: a module is
imported only when its package is in use by this program (or named in
``LGDIST_SERDE_MODULES``), and the name must be a class of the tagged kind."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

from lgdist.errors import SerializationError

# The key that marks a tagged object.
TAG = "__lg__"
# Default factories of empty containers: a field still at such a default is
# left out when written and filled in when read.
SIMPLE_FACTORIES = (dict, list, set, tuple)


class Unserializable(Exception):
    """Raised inside the encoder; carries the innermost offending object."""

    def __init__(self, cls: type, reason: str = "is not serializable") -> None:
        super().__init__(cls)
        self.cls = cls
        self.reason = reason


_class_paths: dict[type, str] = {}


def class_path(cls: type) -> str:
    path = _class_paths.get(cls)
    if path is None:
        path = _class_paths[cls] = _computeclass_path(cls)
    return path


def _computeclass_path(cls: type) -> str:
    module, qualname = cls.__module__, cls.__qualname__
    if "<locals>" in qualname:
        raise Unserializable(
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


def is_lgdist_slotted(cls: type) -> bool:
    return cls.__module__.startswith("lgdist.") and "__slots__" in cls.__dict__


_resolved: dict[tuple[str, str], type] = {}


def resolve(path: str, kind: str, check: Callable[[type], bool]) -> type:
    """Find the class named ``module:QualName``; refuse anything that is not a
    class of the expected kind (the trust model of :mod:`lgdist.serde`)."""
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
