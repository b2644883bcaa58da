"""Retry policies: a list of policies on one node, ``retry_on`` as an
exception class, a tuple or list of classes or a callable, LangGraph's
default rules for what is transient, and ``RetryPolicy`` as a value."""

import operator
from typing import Annotated

import httpx
import requests
from typing_extensions import TypedDict

from .harness import capture, differential, thread
from .observe import snapshot, stream

FAST = dict(initial_interval=0.001, jitter=False)


class Flaky(Exception):
    """Transient by LangGraph's default rules (not a programming error)."""


class Log(TypedDict):
    log: Annotated[list, operator.add]


class Script:
    """A node that raises the scripted exceptions in turn, then succeeds."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self, state: Log) -> dict:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"log": [f"ok on call {self.calls}"]}


def build_retry_graph(ns, node, retry_policy):
    g = ns.StateGraph(Log)
    g.add_node("node", node, retry_policy=retry_policy)
    g.add_edge(ns.START, "node")
    return g.compile(checkpointer=ns.InMemorySaver())


def run(ns, policy, *failures):
    node = Script(*failures)
    graph = build_retry_graph(ns, node, policy)
    cfg = thread()
    outcome = capture(lambda: graph.invoke({"log": []}, cfg))
    return {"outcome": outcome, "calls": node.calls, "state": snapshot(graph, cfg)}


@differential
def test_first_matching_policy_of_a_list_applies(ns):
    policies = [
        ns.RetryPolicy(retry_on=KeyError, max_attempts=1, **FAST),
        ns.RetryPolicy(retry_on=Flaky, max_attempts=3, **FAST),
    ]
    return {
        # Flaky matches the second policy: three attempts, the third succeeds.
        "third_time_lucky": run(ns, policies, Flaky("1"), Flaky("2")),
        # ...and gives up after its three.
        "gives_up": run(ns, policies, Flaky("1"), Flaky("2"), Flaky("3")),
        # KeyError matches the first (one attempt): no retry.
        "first_policy": run(ns, policies, KeyError("k")),
        # Nothing matches: no retry.
        "no_match": run(ns, policies, ValueError("v")),
        # Attempts count failures of the task, whichever policy matched.
        "mixed": run(
            ns,
            [ns.RetryPolicy(retry_on=KeyError, max_attempts=2, **FAST), ns.RetryPolicy(retry_on=Flaky, max_attempts=4, **FAST)],
            Flaky("1"), Flaky("2"), KeyError("k"),
        ),
        "mixed_ok": run(
            ns,
            [ns.RetryPolicy(retry_on=KeyError, max_attempts=4, **FAST), ns.RetryPolicy(retry_on=Flaky, max_attempts=2, **FAST)],
            Flaky("1"), KeyError("k"), KeyError("k2"),
        ),
        "tuple_of_policies": run(ns, (ns.RetryPolicy(retry_on=Flaky, **FAST),), Flaky("1")),
        "empty_list": run(ns, [], Flaky("1")),
    }


@differential
def test_retry_on_forms(ns):
    return {
        "class": run(ns, ns.RetryPolicy(retry_on=ValueError, **FAST), ValueError("1"), ValueError("2")),
        "subclass": run(ns, ns.RetryPolicy(retry_on=LookupError, **FAST), KeyError("1")),
        "tuple": run(ns, ns.RetryPolicy(retry_on=(KeyError, ValueError), **FAST), KeyError("1"), ValueError("2")),
        "list": run(ns, ns.RetryPolicy(retry_on=[KeyError, ValueError], **FAST), ValueError("1")),
        "tuple_miss": run(ns, ns.RetryPolicy(retry_on=(KeyError,), **FAST), ValueError("1")),
        "callable": run(
            ns, ns.RetryPolicy(retry_on=lambda exc: "again" in str(exc), **FAST), ValueError("again"), ValueError("stop")
        ),
        "callable_says_no": run(ns, ns.RetryPolicy(retry_on=lambda exc: False, **FAST), Flaky("1")),
    }


def _http_status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://example.test/")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"status {status}", request=request, response=response)


def _requests_error(status):
    response = None
    if status is not None:
        response = requests.Response()
        response.status_code = status
    return requests.HTTPError(f"status {status}", response=response)


@differential
def test_default_retry_rules(ns):
    policy = ns.RetryPolicy(**FAST)
    cases = {
        "flaky": Flaky("x"),
        "connection_error": ConnectionError("x"),
        "connection_refused": ConnectionRefusedError("x"),
        "timeout": TimeoutError("x"),
        "os_error": OSError("x"),
        "value_error": ValueError("x"),
        "type_error": TypeError("x"),
        "key_error": KeyError("x"),
        "zero_division": ZeroDivisionError("x"),
        "runtime_error": RuntimeError("x"),
        "not_implemented": NotImplementedError("x"),
        "httpx_500": _http_status_error(503),
        "httpx_404": _http_status_error(404),
        "requests_502": _requests_error(502),
        "requests_400": _requests_error(400),
        "requests_no_response": _requests_error(None),
    }
    out = {name: run(ns, policy, exc)["calls"] for name, exc in cases.items()}
    out["default_retry_on"] = {name: policy.retry_on(exc) for name, exc in cases.items()}
    return out


@differential
def test_retry_policy_is_a_named_tuple(ns):
    policy = ns.RetryPolicy(max_attempts=5)
    return {
        "fields": tuple(policy)[:5],
        "field_names": ns.RetryPolicy._fields,
        "replace": ns.RetryPolicy()._replace(max_attempts=2).max_attempts,
        "equal": ns.RetryPolicy() == ns.RetryPolicy(),
        "default_retry_on_is_callable": callable(ns.RetryPolicy().retry_on),
    }


@differential
def test_retried_node_streams_once(ns):
    node = Script(Flaky("1"))
    graph = build_retry_graph(ns, node, [ns.RetryPolicy(retry_on=Flaky, **FAST)])
    return {"stream": stream(graph, {"log": []}, thread(), stream_mode=["updates", "values", "tasks"])}


class Calls(TypedDict):
    log: Annotated[list, operator.add]


INNER_CALLS = {"first": 0, "second": 0}


def inner_first(state: Calls):
    INNER_CALLS["first"] += 1
    return {"log": ["first"]}


def inner_second(state: Calls):
    INNER_CALLS["second"] += 1
    if INNER_CALLS["second"] < 2:
        raise Flaky("once")
    return {"log": ["second"]}


def build_retried_subgraph(ns):
    inner = ns.StateGraph(Calls)
    inner.add_node("inner_first", inner_first)
    inner.add_node("inner_second", inner_second)
    inner.add_edge(ns.START, "inner_first")
    inner.add_edge("inner_first", "inner_second")
    outer = ns.StateGraph(Calls)
    outer.add_node("sub", inner.compile(), retry_policy=ns.RetryPolicy(retry_on=Flaky, **FAST))
    outer.add_edge(ns.START, "sub")
    return outer.compile(checkpointer=ns.InMemorySaver())


@differential
def test_a_retried_subgraph_node_succeeds_with_the_same_state(ns):
    INNER_CALLS.update(first=0, second=0)
    graph = build_retried_subgraph(ns)
    cfg = thread()
    out = graph.invoke({"log": []}, cfg)
    # How often inner_first ran differs (DIFFERENCES.md): LangGraph runs the
    # retried subgraph again from its start, lgdist from its last checkpoint.
    return {"out": out, "second_calls": INNER_CALLS["second"], "state": snapshot(graph, cfg)}
