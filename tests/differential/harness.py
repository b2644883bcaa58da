"""Run one scenario against LangGraph (the oracle) and against lgdist, turn
what each produced into plain normalized values, and compare them.

A scenario is a function ``scenario(ns) -> observations``: it builds its
graph from ``ns`` (the same names imported from ``langgraph.*`` or from
``lgdist.*``), runs it, and returns whatever should be equal between the two
(final values, stream chunks, snapshots, captured errors...). Decorate it
with :func:`differential` to make it a pytest test.

Normalization keeps structure but replaces what is random by design:
message, checkpoint, task and interrupt ids become numbered placeholders (by
first appearance, so "the same id twice" is still checked), timestamps
become ``<ts>``. Objects become tagged dicts named by their class name, so
``langgraph.types.Interrupt`` and ``lgdist.types.Interrupt`` compare equal
when their fields do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import re
import types
import uuid
from typing import Any, Callable

from langchain_core.messages import BaseMessage

__all__ = [
    "LANGGRAPH",
    "LGDIST",
    "Unordered",
    "acapture",
    "capture",
    "differential",
    "normalize",
    "plain",
    "thread",
]

# name -> module path below the root package ("langgraph" or "lgdist").
_EXPORTS = {
    "graph": ["StateGraph", "START", "END", "MessagesState", "add_messages", "MessageGraph"],
    "types": ["Send", "Command", "interrupt", "Interrupt", "RetryPolicy", "Overwrite", "CachePolicy"],
    "errors": [
        "GraphRecursionError",
        "InvalidUpdateError",
        "EmptyInputError",
        "GraphInterrupt",
        "GraphBubbleUp",
    ],
    "checkpoint.memory": ["InMemorySaver", "MemorySaver"],
    "cache.memory": ["InMemoryCache"],
    "prebuilt": ["ToolNode", "tools_condition"],
    "config": ["get_stream_writer", "get_config", "get_store"],
    "store.memory": ["InMemoryStore"],
    "store.base": [
        "BaseStore", "Item", "SearchItem", "GetOp", "PutOp", "SearchOp", "ListNamespacesOp", "MatchCondition",
        "get_text_at_path", "tokenize_path", "ensure_embeddings", "validate_op_namespace",
    ],  # fmt: skip
    "runtime": ["Runtime", "get_runtime"],
}


def _namespace(root: str) -> types.SimpleNamespace:
    ns = types.SimpleNamespace(name=root)
    for module, names in _EXPORTS.items():
        mod = importlib.import_module(f"{root}.{module}")
        for name in names:
            setattr(ns, name, getattr(mod, name))
    return ns


LANGGRAPH = _namespace("langgraph")
LGDIST = _namespace("lgdist")


def thread(name: str = "") -> dict:
    """A config for a fresh thread (fresh per call, so the two runs of a
    scenario never share a thread)."""
    return {"configurable": {"thread_id": f"{name or 't'}-{uuid.uuid4()}"}}


def capture(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or the exception it raised as ``{"raised": type
    name, "message": text}`` (compared like any other observation)."""
    try:
        return {"returned": fn()}
    except Exception as exc:  # noqa: BLE001 - the exception is the observation
        return {"raised": type(exc).__name__, "message": str(exc)}


async def acapture(coro: Any) -> Any:
    """Async :func:`capture`: awaits ``coro``."""
    try:
        return {"returned": await coro}
    except Exception as exc:  # noqa: BLE001
        return {"raised": type(exc).__name__, "message": str(exc)}


class Unordered(list):
    """Items whose order is not part of the contract (the updates of
    parallel tasks in one step finish in any order): compared as a
    multiset."""


# -- turning objects into plain values ------------------------------------------

def plain(value: Any) -> Any:
    """``value`` as dicts/lists/tuples/scalars, objects tagged by class name."""
    if isinstance(value, Unordered):
        return Unordered(plain(v) for v in value)
    if isinstance(value, BaseMessage):
        out = {"__msg__": type(value).__name__, "content": plain(value.content), "id": value.id}
        for key in ("name", "tool_call_id", "status"):
            if getattr(value, key, None) is not None:
                out[key] = getattr(value, key)
        if getattr(value, "tool_calls", None):
            out["tool_calls"] = plain(value.tool_calls)
        return out
    if isinstance(value, BaseException):
        return {"__exc__": type(value).__name__, "message": str(value)}
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if hasattr(value, "_fields") and isinstance(value, tuple):  # NamedTuple
        return {"__type__": type(value).__name__, **{f: plain(getattr(value, f)) for f in value._fields}}
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, (list, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__type__": type(value).__name__,
            **{f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):
        return {"__type__": type(value).__name__, **plain(dict(value))}
    if type(value).__name__ == "Send":
        return {"__type__": "Send", "node": value.node, "arg": plain(value.arg)}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return {"__type__": type(value).__name__, "repr": re.sub(r" at 0x[0-9a-f]+", "", repr(value))}


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")
_ISO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?$")


class _Ids:
    def __init__(self, numbered: bool) -> None:
        self.numbered = numbered
        self.seen: dict[str, str] = {}

    def __call__(self, match: re.Match) -> str:
        raw = match.group(0)
        if not self.numbered:
            return "<id>"
        if raw not in self.seen:
            self.seen[raw] = f"<id{len(self.seen)}>"
        return self.seen[raw]


def normalize(value: Any, *, numbered: bool = True) -> Any:
    """Plain, id- and timestamp-free form of ``value``."""
    return _norm(plain(value), _Ids(numbered))


def _norm(value: Any, ids: _Ids) -> Any:
    if isinstance(value, Unordered):
        # Ids inside may appear in any order: not numbered.
        items = [_norm(v, _Ids(False)) for v in value]
        return ("<unordered>", sorted(items, key=repr))
    if isinstance(value, str):
        if _ISO_TS.match(value):
            return "<ts>"
        return _HEX32.sub(ids, _UUID.sub(ids, value))
    if isinstance(value, dict):
        return {_norm(k, ids): _norm(v, ids) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_norm(v, ids) for v in value)
    if isinstance(value, list):
        return [_norm(v, ids) for v in value]
    return value


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two normalized values differ, as readable lines."""
    if type(expected) is not type(actual):
        return [f"at {path or '<root>'}: langgraph {expected!r}\n{'':>{len(path) + 4}}lgdist    {actual!r}"]
    if isinstance(expected, dict):
        out = []
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in actual:
                out.append(f"at {path}[{key!r}]: only langgraph has it: {expected[key]!r}")
            elif key not in expected:
                out.append(f"at {path}[{key!r}]: only lgdist has it: {actual[key]!r}")
            else:
                out.extend(differences(expected[key], actual[key], f"{path}[{key!r}]"))
        return out
    if isinstance(expected, (list, tuple)):
        if len(expected) != len(actual):
            return [
                f"at {path}: langgraph has {len(expected)} items, lgdist {len(actual)}:\n"
                f"  langgraph {expected!r}\n  lgdist    {actual!r}"
            ]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(differences(e, a, f"{path}[{i}]"))
        return out
    if expected != actual:
        return [f"at {path or '<root>'}: langgraph {expected!r}\n  lgdist {actual!r}"]
    return []


# -- the decorator ------------------------------------------------------------------

def observe(scenario: Callable[[types.SimpleNamespace], Any], ns: types.SimpleNamespace) -> Any:
    result = scenario(ns)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return normalize(result)


def differential(scenario: Callable[[types.SimpleNamespace], Any]) -> Callable[[], None]:
    """Make ``scenario`` a test asserting lgdist observes what LangGraph does."""

    def test() -> None:
        expected = observe(scenario, LANGGRAPH)
        actual = observe(scenario, LGDIST)
        if actual != expected:
            raise AssertionError(
                "lgdist differs from langgraph:\n" + "\n".join(differences(expected, actual))
            )

    # Not functools.wraps: pytest would read the scenario's `ns` parameter
    # through __wrapped__ and look for a fixture of that name.
    test.__name__ = scenario.__name__
    test.__qualname__ = scenario.__qualname__
    test.__doc__ = scenario.__doc__
    test.__module__ = scenario.__module__
    test.scenario = scenario  # type: ignore[attr-defined]
    return test
