"""What a graph reads from its functions' type hints: a node's input schema
(its first parameter), a router's path map (a ``Literal`` return), a node's
``Command`` destinations, and the coercion of a run's context."""

import dataclasses
import functools
from typing import Literal, Optional, Union

import pydantic
import pytest
from typing_extensions import TypedDict

from lgdist.graph import START, StateGraph
from lgdist.graph.drawing import command_destinations
from lgdist.graph.schema import literal_values, node_input_schema
from lgdist.runtime import coerce_context
from lgdist.types import Command


class Private(TypedDict):
    secret: str


class State(TypedDict):
    log: list


def takes_private(state: Private) -> dict:
    return {}


def takes_dict(state: dict) -> dict:
    return {}


def takes_nothing_typed(state):
    return {}


def takes_generic(state: list[str]) -> dict:
    return {}


class CallableNode:
    def __call__(self, state: Private) -> dict:
        return {}


def test_a_node_input_schema_is_its_first_parameters_annotated_class():
    assert node_input_schema(takes_private) is Private
    assert node_input_schema(CallableNode()) is Private
    for action in (takes_dict, takes_nothing_typed, takes_generic, lambda s: s, functools.partial(takes_private)):
        assert node_input_schema(action) is None, action


def test_an_inferred_input_schema_adds_its_keys_as_channels():
    g = StateGraph(State)
    g.add_node("reads", takes_private)
    assert "secret" in g.channels and "log" in g.channels


def route_literal(state) -> Literal["a", "b"]:
    return "a"


def route_plain(state) -> str:
    return "a"


def test_a_router_literal_return_is_its_path_map():
    assert literal_values(route_literal) == ("a", "b")
    assert literal_values(route_plain) is None
    g = StateGraph(State)
    g.add_node("a", takes_dict)
    g.add_node("b", takes_dict)
    g.add_conditional_edges(START, route_literal)
    (branch,) = g.branches[START].values()
    assert branch.ends == {"a": "a", "b": "b"}


def go(state) -> Command[Literal["a", "__end__"]]:
    return Command(goto="a")


def go_or_dict(state) -> Union[dict, Command[Literal["b"]]]:
    return {}


class _Def:
    def __init__(self, action, destinations=None):
        self.action, self.destinations = action, destinations


def test_command_destinations_from_the_argument_or_the_return_hint():
    assert command_destinations(_Def(go)) == ("a", "__end__")
    assert command_destinations(_Def(go_or_dict)) == ("b",)
    assert command_destinations(_Def(takes_dict)) == ()
    assert command_destinations(_Def(go, destinations={"x": "label"})) == {"x": "label"}


@dataclasses.dataclass
class DataclassContext:
    user: str
    lang: str = "en"


class PydanticContext(pydantic.BaseModel):
    user: str


class TypedDictContext(TypedDict):
    user: str


def test_context_coercion():
    assert coerce_context(DataclassContext, {"user": "ada"}) == DataclassContext(user="ada")
    assert coerce_context(PydanticContext, {"user": "ada"}) == PydanticContext(user="ada")
    assert coerce_context(TypedDictContext, {"user": "ada"}) == {"user": "ada"}
    given = DataclassContext(user="bo")
    assert coerce_context(DataclassContext, given) is given
    assert coerce_context(None, {"user": "ada"}) == {"user": "ada"}
    assert coerce_context(DataclassContext, None) is None
    with pytest.raises(TypeError):
        coerce_context(DataclassContext, {"lang": "fr"})
    with pytest.raises(pydantic.ValidationError):
        coerce_context(PydanticContext, {"user": 3})


def test_optional_hint_is_not_an_input_schema():
    def node(state: Optional[Private]) -> dict:
        return {}

    assert node_input_schema(node) is None
