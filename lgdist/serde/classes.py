"""Class references in stored data (``"module:QualName"``): how a class is
named when it is written, and how a name is turned back into a class when
it is read, under the trust model of :mod:`lgdist.serde`: a name is looked
up only when it is on the allowlist, and it must be a class of the tagged
kind."""

from __future__ import annotations

import importlib
from functools import lru_cache
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
# Modules whose classes stored data may always name: lgdist's own types,
# langchain-core's messages and documents, builtin exceptions and the
# ``collections`` dict subclasses (a module covers its submodules).
ALWAYS_ALLOWED = ("lgdist", "langchain_core.messages", "langchain_core.documents", "builtins", "collections")
# Classes a compiled graph declares in its schemas (see allow_classes).
_allowed_classes: dict[str, type] = {}


def allow_classes(*classes: type) -> None:
    """Let stored data name these classes (graphs call this with the classes
    their state, input, output and context schemas declare). Loading never
    imports anything for them: the class itself is remembered."""
    for cls in classes:
        try:
            _allowed_classes[class_path(cls)] = cls
        except Unserializable:
            pass  # defined inside a function: never stored, so never loaded


def resolve(path: str, kind: str, check: Callable[[type], bool]) -> type:
    """Find the class named ``module:QualName``; refuse anything that is not
    on the allowlist (before importing or even looking up its module) or not
    a class of the expected kind (the trust model of :mod:`lgdist.serde`)."""
    cached = _resolved.get((path, kind))
    if cached is not None:
        return cached
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise SerializationError(f"malformed class reference {path!r} in stored data")
    target: Any = _allowed_classes.get(path)
    if target is None:
        if not _module_allowed(module_name):
            raise SerializationError(
                f"refusing to load stored {kind} {path!r}: module {module_name!r} is not on the allowlist "
                "(lgdist's types, langchain_core messages and documents, the packages of the graphs in "
                "LGDIST_GRAPHS, classes a compiled graph's schemas declare); name it in LGDIST_SERDE_MODULES "
                "or pass the class to lgdist.serde.allow_classes"
            )
        try:
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


def _module_allowed(module_name: str) -> bool:
    """Whether stored data may name classes of ``module_name`` (and so make
    this process import it)."""
    return any(module_name == p or module_name.startswith(p + ".") for p in allowed_modules())


def allowed_modules() -> tuple[str, ...]:
    """:data:`ALWAYS_ALLOWED`, the top-level packages of the graphs this
    process's settings register (the operator's own code), and the modules
    named in ``LGDIST_SERDE_MODULES``."""
    from lgdist.settings import get_settings

    settings = get_settings()
    return _settings_modules(settings.graphs, settings.serde_modules)


@lru_cache(maxsize=16)
def _settings_modules(graphs: str, extra: str) -> tuple[str, ...]:
    from lgdist.distributed.registry import parse_graphs

    try:
        targets = parse_graphs(graphs).values()
    except ValueError:  # a worker refuses to start with it; loading just trusts none of it
        targets = ()
    packages = {target.partition(":")[0].partition(".")[0] for target in targets}
    named = {name.strip() for name in extra.split(",") if name.strip()}
    return (*ALWAYS_ALLOWED, *sorted(packages | named))
