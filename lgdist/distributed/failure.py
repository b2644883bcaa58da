"""A node's failure as the run records it, and the error a client raises
for it.

The worker writes the traceback and, on the last line, the exception's
class and arguments as JSON (``lgdist-exception: {"type": "builtins.ValueError",
"args": ["bad input"]}``). The client raises a ``RunFailedError`` that is also
an instance of that class when the class is one it may rebuild: a builtin, an
lgdist error, or a class of the registered graph's own top-level package. A
run's error text never makes the client import anything else, so a forged
record cannot load arbitrary code.
"""

from __future__ import annotations

import builtins
import importlib
import json
import traceback
from typing import Any, Iterable, Optional

from lgdist.errors import GraphBubbleUp, RunFailedError

__all__ = ["describe_node_failure", "run_failed_error", "trusted_packages"]

_MARK = "lgdist-exception: "
_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain_args(args: tuple) -> Optional[list]:
    """The exception's arguments if they survive JSON unchanged."""
    def plain(value: Any) -> bool:
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return isinstance(value, _JSON_SCALARS)

    return list(args) if all(plain(a) and not isinstance(a, tuple) for a in args) else None


def describe_node_failure(node: str, exc: BaseException) -> str:
    """The run's error text for a node that raised ``exc``."""
    text = "".join(traceback.format_exception(exc))
    cls = type(exc)
    info = {"type": f"{cls.__module__}.{cls.__qualname__}", "args": _plain_args(exc.args)}
    return f"node {node!r} failed:\n{text}{_MARK}{json.dumps(info)}"


def _recorded(error: str) -> tuple[str, Optional[dict]]:
    """``(readable text, recorded class info or None)``."""
    head, sep, tail = error.rpartition("\n" + _MARK)
    if not sep:
        return error, None
    try:
        info = json.loads(tail)
    except ValueError:
        return error, None
    return head, info if isinstance(info, dict) and isinstance(info.get("type"), str) else None


def trusted_packages(graph_target: Optional[str]) -> tuple[str, ...]:
    """Packages whose exception classes a client may rebuild for a graph
    registered as ``module:attribute``: lgdist's errors and the graph's own
    top-level package."""
    packages = ["lgdist.errors"]
    if graph_target:
        packages.append(graph_target.partition(":")[0].split(".")[0])
    return tuple(packages)


def _resolve(path: str, packages: Iterable[str]) -> Optional[type]:
    module_name, _, qualname = path.rpartition(".")
    if module_name == "builtins":
        cls = getattr(builtins, qualname, None)
    elif any(module_name == p or module_name.startswith(p + ".") for p in packages):
        try:
            cls: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                cls = getattr(cls, part)
        except (ImportError, AttributeError):
            return None
    else:
        return None
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or issubclass(cls, GraphBubbleUp):
        return None
    return cls


def _rebuild(cls: type, args: list) -> Optional[RunFailedError]:
    if issubclass(cls, RunFailedError):
        combined: type = cls
    else:
        try:
            combined = type(cls.__name__, (RunFailedError, cls), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        except TypeError:  # incompatible layouts (e.g. OSError's): no common subclass
            return None
    try:
        error = cls.__new__(combined, *args)
        cls.__init__(error, *args)
    except Exception:  # noqa: BLE001 - a constructor that needs more than its args: plain RunFailedError
        return None
    return error


def run_failed_error(error: Optional[str], packages: Iterable[str] = ("lgdist.errors",)) -> RunFailedError:
    """The exception a client raises for a run that ended with ``error``."""
    if not error:
        return RunFailedError("run failed")
    text, info = _recorded(error)
    rebuilt = None
    if info is not None and info.get("args") is not None:
        cls = _resolve(info["type"], packages)
        if cls is not None:
            rebuilt = _rebuild(cls, list(info["args"]))
    if rebuilt is None:
        rebuilt = RunFailedError(text)
    rebuilt.remote_traceback = text
    if rebuilt.args != (text,):
        rebuilt.add_note(f"remote traceback (the run's error):\n{text}")
    return rebuilt
