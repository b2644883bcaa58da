"""The graphs a worker may run, by name.

Names map to ``module:attribute`` in configuration (``LGDIST_GRAPHS``), never
in a message: a message naming a graph can only pick from this list.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from lgdist.errors import GraphLoadError, GraphNotRegisteredError


def parse_graphs(spec: str) -> dict[str, str]:
    """``"a=pkg.mod:graph,b=pkg.other:app"`` -> ``{"a": "pkg.mod:graph", ...}``."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ValueError(f"bad LGDIST_GRAPHS entry {item!r}; expected name=module:attribute")
        out[name.strip()] = target.strip()
    return out


class GraphRegistry:
    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = dict(entries)
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: str) -> "GraphRegistry":
        return cls(parse_graphs(spec))

    def names(self) -> list[str]:
        return sorted(self.entries)

    def load_all(self) -> None:
        """Import every registered graph now (a worker does this at start):
        a typo in ``LGDIST_GRAPHS`` fails the worker with the entry's name,
        not its first run, and no task pays the import."""
        for name in self.names():
            try:
                self.get(name)
            except Exception as exc:  # noqa: BLE001 - re-raised with the entry named
                raise GraphLoadError(
                    f"LGDIST_GRAPHS entry {name}={self.entries[name]} cannot be loaded: {type(exc).__name__}: {exc}"
                ) from exc

    def get(self, name: str) -> Any:
        """The compiled graph registered as ``name``."""
        if name not in self.entries:
            raise GraphNotRegisteredError(name, self.names())
        with self._lock:
            if name not in self._loaded:
                module_name, _, attr = self.entries[name].partition(":")
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
                if callable(obj) and not hasattr(obj, "get_graph_spec"):
                    obj = obj()  # a factory
                if not hasattr(obj, "get_graph_spec"):
                    raise TypeError(
                        f"{self.entries[name]} is not a compiled lgdist graph (got {type(obj).__name__})"
                    )
                self._loaded[name] = obj
            return self._loaded[name]
