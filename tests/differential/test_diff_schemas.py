"""Private channels and input/output schemas: a node's input type hint
adds its keys to the graph (LangGraph's "pass private state between nodes"),
``input_schema`` / ``output_schema`` shape what a graph takes and returns,
and ``get_input_jsonschema`` / ``get_output_jsonschema`` describe them."""

import dataclasses
import operator
from typing import Annotated, Optional

import pydantic
from typing_extensions import TypedDict

from .harness import capture, differential, thread
from .observe import history, snapshot, stream


class InputState(TypedDict):
    user_input: str


class OutputState(TypedDict):
    graph_output: str


class OverallState(TypedDict):
    foo: str
    user_input: str
    graph_output: str


class PrivateState(TypedDict):
    bar: str


def node_1(state: InputState) -> OverallState:
    return {"foo": state["user_input"] + " name"}


def node_2(state: OverallState) -> PrivateState:
    return {"bar": state["foo"] + " is"}


def node_3(state: PrivateState) -> OutputState:
    return {"graph_output": state["bar"] + " Lance"}


def build_private_channels(ns):
    b = ns.StateGraph(OverallState, input_schema=InputState, output_schema=OutputState)
    b.add_node("node_1", node_1)
    b.add_node("node_2", node_2)
    b.add_node("node_3", node_3)
    b.add_edge(ns.START, "node_1")
    b.add_edge("node_1", "node_2")
    b.add_edge("node_2", "node_3")
    b.add_edge("node_3", ns.END)
    return b.compile(checkpointer=ns.InMemorySaver())


@differential
def test_private_channels_between_nodes(ns):
    graph = build_private_channels(ns)
    cfg = thread()
    return {
        "invoke": graph.invoke({"user_input": "My", "foo": "ignored: not an input key"}, cfg),
        "stream": stream(graph, {"user_input": "My"}, thread(), stream_mode=["updates", "values"]),
        "state": snapshot(graph, cfg),
        "history": history(graph, cfg),
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
    }


class Secret(TypedDict):
    secret: str


class Public(TypedDict):
    log: Annotated[list, operator.add]


def writes_secret(state: Public):
    return {"secret": "s3cr3t", "log": ["wrote"]}


def reads_secret(state: Secret):
    return {"log": [f"read {state['secret']}"]}


def sees_public_only(state):
    return {"log": [sorted(state)]}


def reads_public_annotated(state: Public):
    return {"log": [sorted(state)]}


def build_secret_graph(ns):
    g = ns.StateGraph(Public)
    g.add_node("writes_secret", writes_secret)
    g.add_node("reads_secret", reads_secret)
    g.add_node("sees_public_only", sees_public_only)
    g.add_node("reads_public_annotated", reads_public_annotated)
    g.add_edge(ns.START, "writes_secret")
    g.add_edge("writes_secret", "reads_secret")
    g.add_edge("reads_secret", "sees_public_only")
    g.add_edge("sees_public_only", "reads_public_annotated")
    return g.compile(checkpointer=ns.InMemorySaver())


@differential
def test_a_node_reads_a_key_outside_the_state_schema_through_its_type_hint(ns):
    graph = build_secret_graph(ns)
    cfg = thread()
    return {
        "invoke": graph.invoke({"log": []}, cfg),
        "stream": stream(graph, {"log": []}, thread(), stream_mode="values"),
        "state": snapshot(graph, cfg),
        # A private key can be given as input and updated as state too.
        "input": graph.invoke({"log": [], "secret": "given"}, thread()),
        "update_state": graph.update_state(cfg, {"secret": "updated"}, as_node="writes_secret") and snapshot(graph, cfg)["values"],
    }


class PydanticInput(pydantic.BaseModel):
    question: str
    hint: Optional[str] = None


class PydanticNodeInput(pydantic.BaseModel):
    question: str


@dataclasses.dataclass
class DataclassOutput:
    answer: str
    score: int = 1


class Everything(TypedDict):
    question: str
    hint: Optional[str]
    answer: str
    score: int
    log: Annotated[list, operator.add]


def answer(state: PydanticNodeInput):
    return {"answer": f"{type(state).__name__}: {state.question}", "log": ["answer"]}


def build_pydantic_io(ns):
    g = ns.StateGraph(Everything, input_schema=PydanticInput, output_schema=DataclassOutput)
    g.add_node("answer", answer)
    g.add_edge(ns.START, "answer")
    return g.compile()


@differential
def test_pydantic_input_and_dataclass_output_schemas(ns):
    graph = build_pydantic_io(ns)
    return {
        "invoke": graph.invoke({"question": "why?", "log": ["not an input key"]}),
        "invalid_input": capture(lambda: graph.invoke({"hint": "no question"})).get("raised"),
        "stream": stream(graph, {"question": "how?"}, stream_mode=["updates", "values"]),
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
    }


@dataclasses.dataclass
class DataclassState:
    a: str
    d: int = 3
    o: Optional[int] = None


class PydanticState(pydantic.BaseModel):
    a: str
    n: Annotated[list, operator.add] = []
    d: int = 3


class TypedState(TypedDict):
    a: str
    n: Annotated[list, operator.add]
    o: Optional[int]


def noop(state):
    return {}


@differential
def test_json_schemas_of_each_kind_of_state(ns):
    out = {}
    for schema in (TypedState, PydanticState, DataclassState, ns.MessagesState):
        g = ns.StateGraph(schema)
        g.add_node("noop", noop)
        g.add_node("reads_secret", reads_secret)
        g.add_edge(ns.START, "noop")
        g.add_edge("noop", "reads_secret")
        for name in (None, "named"):
            graph = g.compile(name=name)
            out[f"{schema.__name__}-{name}"] = {
                "input": graph.get_input_jsonschema(),
                "output": graph.get_output_jsonschema(),
                # The Runnable API's pydantic models of them.
                "input_model": graph.get_input_schema().model_json_schema(),
                "output_model": graph.get_output_schema().model_json_schema(),
                "input_type": getattr(graph.InputType, "__name__", repr(graph.InputType)),
                "output_type": graph.OutputType,
            }
    return out


class QuestionOnly(TypedDict):
    question: str


class AnswerOnly(TypedDict):
    answer: str


class DraftState(TypedDict):
    draft: str


def first_unannotated(state):
    return {"draft": f"keys {sorted(state)}"}


def second_unannotated(state):
    return {"answer": f"{state['draft']} / {sorted(state)}"}


def build_unannotated_io(ns):
    g = ns.StateGraph(DraftState, input_schema=QuestionOnly, output_schema=AnswerOnly)
    g.add_node("first", first_unannotated)
    g.add_node("second", second_unannotated)
    g.add_edge(ns.START, "first")
    g.add_edge("first", "second")
    return g.compile()


@differential
def test_an_unannotated_node_reads_the_state_schema_keys_only(ns):
    graph = build_unannotated_io(ns)
    return {
        "invoke": graph.invoke({"question": "q"}),
        "stream": stream(graph, {"question": "q"}, stream_mode="values"),
    }
