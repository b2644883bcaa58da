"""``context_schema`` and ``Runtime``: ``invoke(..., context=...)`` coerced
to a dataclass or pydantic schema (a TypedDict stays a dict),
``runtime.context`` in nodes, routers and subgraphs, ``get_runtime()``,
``runtime.stream_writer``, ``runtime.execution_info``."""

import asyncio
import dataclasses
import operator
from typing import Annotated, Optional

import pydantic
from typing_extensions import TypedDict

from .harness import acapture, capture, differential, thread
from .observe import stream


@dataclasses.dataclass
class DataclassContext:
    user: str
    lang: str = "en"


class TypedDictContext(TypedDict):
    user: str


class PydanticContext(pydantic.BaseModel):
    user: str
    lang: str = "en"


class Log(TypedDict):
    log: Annotated[list, operator.add]


def _describe(context) -> dict:
    user = context["user"] if isinstance(context, dict) else getattr(context, "user", None)
    return {"type": type(context).__name__, "user": user}


def greet(state: Log, runtime):
    return {"log": [{"greet": _describe(runtime.context), "store": runtime.store, "previous": runtime.previous}]}


def via_get_runtime(state: Log):
    runtime = ns_runtime_module().get_runtime()
    return {"log": [{"get_runtime": _describe(runtime.context)}]}


_RUNTIME_MODULE = {}


def ns_runtime_module():
    return _RUNTIME_MODULE["module"]


def route(state: Log, runtime) -> str:
    return "via_get_runtime" if _describe(runtime.context)["user"] == "ada" else "writer"


def writer(state: Log, runtime):
    runtime.stream_writer({"custom_from": _describe(runtime.context)["user"]})
    return {"log": ["writer"]}


def build_context_graph(ns, context_schema):
    g = ns.StateGraph(Log, context_schema=context_schema)
    g.add_node("greet", greet)
    g.add_node("via_get_runtime", via_get_runtime)
    g.add_node("writer", writer)
    g.add_edge(ns.START, "greet")
    g.add_conditional_edges("greet", route, ["via_get_runtime", "writer"])
    g.add_edge("via_get_runtime", "writer")
    return g.compile(checkpointer=ns.InMemorySaver())


def _runtime_module(ns):
    import importlib

    module = importlib.import_module(f"{ns.name}.runtime")
    _RUNTIME_MODULE["module"] = module
    return module


@differential
def test_context_is_coerced_to_the_context_schema(ns):
    _runtime_module(ns)
    out = {}
    for label, schema in (
        ("dataclass", DataclassContext),
        ("typeddict", TypedDictContext),
        ("pydantic", PydanticContext),
        ("none", None),
    ):
        graph = build_context_graph(ns, schema)
        out[label] = {
            "ada": graph.invoke({"log": []}, thread(), context={"user": "ada"}),
            "bob_stream": stream(graph, {"log": []}, thread(), context={"user": "bob"}, stream_mode=["updates", "custom"]),
            "no_context": capture(lambda: graph.invoke({"log": []}, thread())),
        }
    dataclass_graph = build_context_graph(ns, DataclassContext)
    out["instance"] = dataclass_graph.invoke({"log": []}, thread(), context=DataclassContext(user="ada"))
    out["missing_field"] = capture(lambda: dataclass_graph.invoke({"log": []}, thread(), context={"lang": "fr"}))
    pydantic_graph = build_context_graph(ns, PydanticContext)
    out["pydantic_invalid"] = capture(lambda: pydantic_graph.invoke({"log": []}, thread(), context={"user": 3})).get("raised")
    out["async"] = asyncio.run(acapture(dataclass_graph.ainvoke({"log": []}, thread(), context={"user": "ada"})))
    return out


def inner_node(state: Log, runtime):
    return {"log": [{"inner": _describe(runtime.context)}]}


def build_subgraph_context_graph(ns):
    inner = ns.StateGraph(Log, context_schema=DataclassContext)
    inner.add_node("inner_node", inner_node)
    inner.add_edge(ns.START, "inner_node")
    compiled_inner = inner.compile()

    def calls_inner(state: Log):
        return {"log": compiled_inner.invoke({"log": []})["log"]}

    outer = ns.StateGraph(Log, context_schema=DataclassContext)
    outer.add_node("sub", compiled_inner)
    outer.add_node("calls_inner", calls_inner)
    outer.add_edge(ns.START, "sub")
    outer.add_edge("sub", "calls_inner")
    return outer.compile(checkpointer=ns.InMemorySaver())


@differential
def test_subgraphs_see_the_parent_context(ns):
    graph = build_subgraph_context_graph(ns)
    return {"invoke": graph.invoke({"log": []}, thread(), context={"user": "ada"})}


def attempts(state: Log, runtime):
    info = runtime.execution_info
    ATTEMPTS.append(info.node_attempt)
    if info.node_attempt < 2:
        raise ConnectionError("transient")
    return {
        "log": [
            {
                "attempt": info.node_attempt,
                "thread_id": info.thread_id,
                "task_id": info.task_id,
                "checkpoint_ns": info.checkpoint_ns,
                "checkpoint_id": info.checkpoint_id,
                "first_attempt_time": isinstance(info.node_first_attempt_time, float),
            }
        ]
    }


ATTEMPTS: list = []


@differential
def test_runtime_execution_info(ns):
    g = ns.StateGraph(Log)
    g.add_node("attempts", attempts, retry_policy=ns.RetryPolicy(initial_interval=0.001, jitter=False))
    g.add_edge(ns.START, "attempts")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    ATTEMPTS.clear()
    cfg = thread()
    result = graph.invoke({"log": []}, cfg)
    entry = result["log"][0]
    snap = graph.get_state(cfg)
    parent_id = list(graph.get_state_history(cfg))[1].config["configurable"]["checkpoint_id"]
    return {
        "attempts": list(ATTEMPTS),
        "attempt": entry["attempt"],
        "thread_matches": entry["thread_id"] == cfg["configurable"]["thread_id"],
        "ns_is_node_and_task": entry["checkpoint_ns"] == f"attempts:{entry['task_id']}",
        "checkpoint_is_the_step_start": entry["checkpoint_id"] == parent_id,
        "first_attempt_time": entry["first_attempt_time"],
        "no_checkpointer_thread": g.compile().invoke({"log": []})["log"][0]["thread_id"] if not ATTEMPTS.clear() else None,
        "next": snap.next,
    }


@differential
def test_context_json_schema(ns):
    out = {}
    for label, schema in (("dataclass", DataclassContext), ("typeddict", TypedDictContext), ("pydantic", PydanticContext)):
        g = ns.StateGraph(Log, context_schema=schema)
        g.add_node("greet", greet)
        g.add_edge(ns.START, "greet")
        out[label] = g.compile().get_context_jsonschema()
    g = ns.StateGraph(Log)
    g.add_node("greet", greet)
    g.add_edge(ns.START, "greet")
    out["none"] = g.compile().get_context_jsonschema()
    return out


def typed_runtime(state: Log, runtime: "Optional[object]" = None):
    return {"log": [_describe(runtime.context) if runtime is not None else None]}


@differential
def test_runtime_parameter_with_a_default_and_an_annotation(ns):
    runtime_module = _runtime_module(ns)

    def annotated(state: Log, runtime: runtime_module.Runtime[DataclassContext]):
        return {"log": [_describe(runtime.context)]}

    g = ns.StateGraph(Log, context_schema=DataclassContext)
    g.add_node("typed_runtime", typed_runtime)
    g.add_node("annotated", annotated)
    g.add_edge(ns.START, "typed_runtime")
    g.add_edge("typed_runtime", "annotated")
    return {"invoke": g.compile().invoke({"log": []}, context={"user": "ada"})}


@differential
def test_runtime_value_api(ns):
    module = _runtime_module(ns)
    Runtime = module.Runtime
    base = Runtime(context={"user": "ada"}, previous=1)
    other = Runtime(store=None, previous=None)
    merged = base.merge(other)
    overridden = base.override(context={"user": "bob"})
    out = {
        "merged": (merged.context, merged.previous, merged.store, merged.execution_info),
        "overridden": (overridden.context, base.context),
        "patch_without_info": capture(lambda: base.patch_execution_info(node_attempt=2)),
        "frozen": capture(lambda: setattr(base, "context", None)).get("raised"),
        "get_runtime_outside": capture(lambda: module.get_runtime()).get("raised"),
    }
    info = module.ExecutionInfo(checkpoint_id="c", checkpoint_ns="", task_id="t")
    patched = base.override(execution_info=info).patch_execution_info(node_attempt=3)
    out["patched"] = (patched.execution_info.node_attempt, patched.execution_info.task_id, info.node_attempt)
    out["info_fields"] = [f for f in ("checkpoint_id", "checkpoint_ns", "task_id", "thread_id", "run_id", "node_attempt", "node_first_attempt_time") if hasattr(info, f)]
    return out
