"""Tagged JSON round trips exactly (type and value) and refuses what it cannot
store or should not load."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import json
import sys
import threading
import uuid
from decimal import Decimal
from typing import Any, NamedTuple, Optional, TypedDict
from zoneinfo import ZoneInfo

import pydantic
import pytest
from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from lgdist import serde
from lgdist.errors import SerializationError
from lgdist.types import Command, Interrupt, Send


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(pydantic.BaseModel):
    city: str
    visited: Optional[dt.date] = None


class Person(pydantic.BaseModel):
    name: str
    tags: tuple[str, ...] = ()
    address: Optional[Address] = None
    extra_data: dict[str, Any] = pydantic.Field(default_factory=dict)


class Loose(pydantic.BaseModel, extra="allow"):
    a: int = 0


class WithPrivate(pydantic.BaseModel):
    a: int
    _cache: dict = pydantic.PrivateAttr(default_factory=dict)


@dataclasses.dataclass
class Point:
    x: int
    y: int
    label: Any = None


@dataclasses.dataclass(frozen=True)
class Frozen:
    items: tuple
    computed: int = dataclasses.field(init=False, default=0)


class Pair(NamedTuple):
    left: Any
    right: Any


class Plan(TypedDict):
    steps: list[str]
    done: bool


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class NotStorable:
    pass


# This module is the program here: its own classes may be loaded back, as a
# graph's schema classes are once it is compiled.
serde.allow_classes(Color, Level, Address, Person, Loose, WithPrivate, Point, Frozen, Pair, CustomError)


def round_trip(value: Any) -> Any:
    return serde.loads(serde.dumps(value))


def assert_round_trips(value: Any) -> None:
    back = round_trip(value)
    assert back == value
    assert type(back) is type(value)


ROUND_TRIPS = {
    "none": None,
    "bools": [True, False],
    "int": 12,
    "big_int": 2**100,
    "float": 1.5,
    "str": "héllo \u0000 \ud83d",
    "empty": [[], {}, ""],
    "nested_plain": {"a": [1, {"b": None}], "c": "d"},
    "int_keys": {1: "a", 2: "b"},
    "tuple_keys": {(1, "a"): "x", (2, "b"): "y"},
    "mixed_keys": {"s": 1, 2: 2, None: 3, True: 4},
    "dict_with_tag_key": {"__lg__": "tuple", "v": [1]},
    "tuple": (1, (2, 3), []),
    "set": {1, 2, "3"},
    "frozenset": frozenset({(1, 2), "x"}),
    "bytes": b"\x00\xff binary",
    "bytearray": bytearray(b"abc"),
    "datetime_naive": dt.datetime(2024, 5, 17, 12, 30, 1, 123456),
    "datetime_utc": dt.datetime(2024, 5, 17, 12, 30, tzinfo=dt.timezone.utc),
    "datetime_offset": dt.datetime(2024, 5, 17, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    "datetime_zoneinfo": dt.datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1),
    "date": dt.date(2024, 2, 29),
    "time": dt.time(23, 59, 59, 999),
    "time_tz": dt.time(8, 0, tzinfo=dt.timezone.utc),
    "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("3.14159265358979323846"),
    "enum": Color.BLUE,
    "int_enum": Level.HIGH,
    "pydantic": Person(name="Ada", tags=("a", "b"), address=Address(city="London", visited=dt.date(2020, 1, 1))),
    "pydantic_extra": Loose(a=1, surprise=(1, 2)),
    "dataclass": Point(1, 2, label=Color.RED),
    "frozen_dataclass": Frozen(items=(1, 2)),
    "namedtuple": Pair(1, (2,)),
    "typed_dict": Plan(steps=["a", "b"], done=False),
    "ordered_dict": collections.OrderedDict([("b", 1), ("a", 2)]),
    "human": HumanMessage("hi", id="1", name="ada", additional_kwargs={"k": (1,)}),
    "ai_with_tool_calls": AIMessage(
        content=[{"type": "text", "text": "calling"}],
        id="2",
        tool_calls=[{"name": "search", "args": {"q": "x", "n": 3}, "id": "call-1"}],
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        response_metadata={"model": "m"},
    ),
    "ai_chunk": AIMessageChunk(
        content="par", tool_call_chunks=[{"name": "f", "args": '{"a"', "id": "c", "index": 0}]
    ),
    "human_chunk": HumanMessageChunk(content="x"),
    "tool": ToolMessage("done", tool_call_id="call-1", status="error", artifact={"raw": b"\x01"}),
    "system": SystemMessage("be brief"),
    "function": FunctionMessage("out", name="f"),
    "remove": RemoveMessage(id="2"),
    "document": Document(page_content="text", metadata={"source": "a.txt", "page": 3}, id="d1"),
    "send": Send("node", {"arg": (1, 2)}),
    "interrupt": Interrupt(value={"question": "ok?"}, id="abc"),
    "command": Command(update={"x": 1}, goto=[Send("a", 1), "b"], resume={"i": "yes"}),
}


@pytest.mark.parametrize("value", list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS))
def test_value_round_trips_with_type_and_equality(value):
    assert_round_trips(value)


def test_containers_of_rich_values_round_trip_element_types():
    state = {"messages": [HumanMessage("a", id="1"), AIMessage("b", id="2")], "seen": {Color.RED}, "at": (Level.LOW,)}
    back = round_trip(state)
    assert back == state
    assert [type(m) for m in back["messages"]] == [HumanMessage, AIMessage]
    assert type(next(iter(back["seen"]))) is Color


def test_pydantic_fields_set_survives_so_exclude_unset_is_unchanged():
    person = Person(name="Ada")
    back = round_trip(person)
    assert back.model_fields_set == {"name"}
    assert back.model_dump(exclude_unset=True) == {"name": "Ada"}


def test_pydantic_private_attributes_round_trip():
    model = WithPrivate(a=1)
    model._cache["k"] = "v"
    assert round_trip(model)._cache == {"k": "v"}


def test_dataclass_field_not_in_init_is_restored():
    frozen = Frozen(items=(1,))
    object.__setattr__(frozen, "computed", 42)
    assert round_trip(frozen).computed == 42


def test_exception_round_trips_type_and_args():
    back = round_trip(ValueError("bad", 3))
    assert type(back) is ValueError and back.args == ("bad", 3)
    custom = round_trip(CustomError(7, "boom"))  # __init__ differs from .args
    assert type(custom) is CustomError and custom.args == ("7: boom",)


def test_plain_json_takes_the_fast_path_and_is_compact_standard_json():
    value = {"a": [1, 2.5, None, True], "b": {"c": "d"}}
    data = serde.dumps(value)
    assert data == json.dumps(value, separators=(",", ":")).encode()
    assert serde.loads(data) == value
    assert serde.loads(data.decode()) == value  # str input too


def test_messages_are_stored_under_the_public_langchain_module():
    assert b'"langchain_core.messages:HumanMessage"' in serde.dumps(HumanMessage("x"))


def test_mutating_loaded_data_does_not_affect_a_second_load():
    data = serde.dumps({"xs": [1, 2]})
    serde.loads(data)["xs"].append(3)
    assert serde.loads(data) == {"xs": [1, 2]}


# ------------------------------------------------------------------ errors
def test_dumps_key_error_names_the_key_and_the_offending_type():
    with pytest.raises(SerializationError) as info:
        serde.dumps_key("foo", {"nested": [NotStorable()]})
    message = str(info.value)
    assert "cannot store state key 'foo'" in message
    assert "object of type NotStorable is not serializable" in message
    assert "pydantic models, dataclasses, or langchain messages" in message


def test_serialization_error_is_a_type_error():
    with pytest.raises(TypeError):
        serde.dumps(threading.Lock())


def test_unserializable_field_inside_a_model_names_the_inner_type():
    with pytest.raises(SerializationError, match="type function"):
        serde.dumps_key("person", Person(name="x", extra_data={"callback": lambda: None}))


def test_class_defined_inside_a_function_is_refused_when_stored():
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match="defined inside a function"):
        serde.dumps_key("k", Local(1))


def test_circular_value_is_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="circular"):
        serde.dumps_key("loop", loop)


def test_defaultdict_is_refused_because_it_cannot_be_rebuilt():
    with pytest.raises(SerializationError, match="defaultdict"):
        serde.dumps(collections.defaultdict(list))


# ------------------------------------------------------------ trust model
@pytest.mark.parametrize(
    "payload",
    [
        {"__lg__": "dataclass", "c": "os:system", "v": {}},  # a function, not a class
        {"__lg__": "model", "c": "builtins:dict", "v": {}},  # a class of the wrong kind
        {"__lg__": "enum", "c": "subprocess:Popen", "v": "ls"},
        {"__lg__": "exception", "c": "builtins:eval", "v": ["1+1"]},
        {"__lg__": "object", "c": "subprocess:Popen", "v": {"args": "ls"}},
    ],
)
def test_loading_refuses_anything_but_a_class_of_the_tagged_kind(payload):
    with pytest.raises(SerializationError, match="refusing to load"):
        serde.loads(json.dumps(payload))


def test_loading_an_unknown_module_fails_with_a_clear_error():
    payload = {"__lg__": "dataclass", "c": "no_such_module_xyz:Thing", "v": {}}
    with pytest.raises(SerializationError, match="no_such_module_xyz:Thing"):
        serde.loads(json.dumps(payload))


def test_loading_an_unknown_tag_fails():
    with pytest.raises(SerializationError, match="unknown tag"):
        serde.loads('{"__lg__": "pickle", "v": "gASV"}')


# ----------------------------------------------------------- store helpers
@pytest.mark.parametrize("value", [b"raw", {"a": (1,)}, HumanMessage("x"), None])
def test_serialize_value_round_trips_through_type_and_blob(value):
    type_, blob = serde.serialize_value(value)
    assert isinstance(blob, bytes)
    assert serde.deserialize_value(type_, blob) == value


def test_serialize_value_keeps_raw_bytes_unencoded():
    assert serde.serialize_value(b"\x00\x01") == ("bytes", b"\x00\x01")


def test_serialize_value_error_names_the_key():
    with pytest.raises(SerializationError, match="'channel_x'"):
        serde.serialize_value(NotStorable(), "channel_x")


# ----------------------------------------------------------- what loading may import
@pytest.fixture
def settings_env(monkeypatch):
    """Set ``LGDIST_*`` variables for one test; the settings are re-read."""
    from lgdist.settings import get_settings

    def setenv(**values: str) -> None:
        for key in ("LGDIST_SERDE_MODULES", "LGDIST_GRAPHS"):
            monkeypatch.delenv(key, raising=False)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield setenv
    monkeypatch.undo()
    get_settings.cache_clear()


def _side_effect_package(tmp_path, monkeypatch, name: str):
    """A package on sys.path that records being imported, with a dataclass."""
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(tmp_path / 'imported')!r}).write_text('yes')\n"
        "import dataclasses\n"
        "@dataclasses.dataclass\n"
        "class Thing:\n"
        "    x: int = 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return {"__lg__": "dataclass", "c": f"{name}:Thing", "v": {"x": 3}}


@pytest.mark.parametrize(
    ("module", "path"),
    [
        ("json.tool", "json.tool:main"),  # a module of a package the program has loaded
        ("xmlrpc.server", "xmlrpc.server:SimpleXMLRPCServer"),
        ("this", "this:Zen"),  # a module whose import has a side effect
    ],
)
def test_stored_data_naming_a_module_off_the_allowlist_is_refused_without_importing_it(module, path, settings_env):
    settings_env()
    sys.modules.pop(module, None)
    payload = {"__lg__": "dataclass", "c": path, "v": {}}
    with pytest.raises(SerializationError, match="is not on the allowlist"):
        serde.loads(json.dumps(payload))
    assert module not in sys.modules


def test_os_system_is_refused_by_the_allowlist_before_any_lookup(settings_env):
    settings_env()
    for kind in ("dataclass", "model", "exception", "object", "enum", "namedtuple", "dict"):
        payload = {"__lg__": kind, "c": "os:system", "v": {} if kind != "dict" else []}
        with pytest.raises(SerializationError, match="module 'os' is not on the allowlist"):
            serde.loads(json.dumps(payload))


def test_stored_data_never_imports_a_package_the_program_does_not_use(tmp_path, monkeypatch, settings_env):
    payload = _side_effect_package(tmp_path, monkeypatch, "lgdist_unused_pkg_a")
    settings_env()
    with pytest.raises(SerializationError, match="LGDIST_SERDE_MODULES"):
        serde.loads(json.dumps(payload))
    assert not (tmp_path / "imported").exists()
    assert "lgdist_unused_pkg_a" not in sys.modules


def test_packages_named_in_lgdist_serde_modules_may_be_imported(tmp_path, monkeypatch, settings_env):
    payload = _side_effect_package(tmp_path, monkeypatch, "lgdist_unused_pkg_b")
    settings_env(LGDIST_SERDE_MODULES="other, lgdist_unused_pkg_b")
    assert serde.loads(json.dumps(payload)).x == 3
    assert (tmp_path / "imported").read_text() == "yes"


def test_the_package_of_a_registered_graph_may_be_imported(tmp_path, monkeypatch, settings_env):
    payload = _side_effect_package(tmp_path, monkeypatch, "lgdist_unused_pkg_c")
    settings_env(LGDIST_GRAPHS="agent=lgdist_unused_pkg_c.graphs:graph")
    assert serde.loads(json.dumps(payload)).x == 3


class Ticket(pydantic.BaseModel):
    """Declared only inside a graph's state schema below."""

    title: str
    priority: Optional[Level] = None


class TicketState(TypedDict):
    tickets: list[Optional[Ticket]]


def test_classes_a_compiled_graphs_schema_declares_load_and_others_do_not(settings_env):
    from lgdist.graph import END, START, StateGraph

    settings_env()
    data = serde.dumps({"tickets": [Ticket(title="t")]})
    with pytest.raises(SerializationError, match="'test_serde:Ticket'"):
        serde.loads(data)
    builder = StateGraph(TicketState)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    builder.add_edge("noop", END)
    builder.compile()
    assert serde.loads(data) == {"tickets": [Ticket(title="t")]}
    with pytest.raises(SerializationError, match="'test_serde:NotStorable'"):
        serde.loads(json.dumps({"__lg__": "object", "c": "test_serde:NotStorable", "v": {}}))
