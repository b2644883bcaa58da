"""How a failed node's exception travels from a worker's run record to the
client: rebuilt as the node's class only where that is safe."""

from __future__ import annotations

import pytest

from lgdist.distributed.failure import describe_node_failure, run_failed_error, trusted_packages
from lgdist.errors import InvalidUpdateError, LgdistError, RunFailedError
from workers import nested


def recorded(exc: Exception, node: str = "n") -> str:
    try:
        raise exc
    except Exception as raised:  # noqa: BLE001
        return describe_node_failure(node, raised)


GRAPH = trusted_packages("workers.nested:graph")


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad input"), KeyError("x"), ZeroDivisionError("division by zero"), OSError(2, "nope"),
     InvalidUpdateError("two writes"), nested.TopicError("no"), TimeoutError()],
    ids=lambda e: type(e).__name__,
)  # fmt: skip
def test_rebuilt_error_is_both_a_run_failed_error_and_the_nodes_class(exc: Exception) -> None:
    error = run_failed_error(recorded(exc), GRAPH)
    assert isinstance(error, type(exc)) and isinstance(error, RunFailedError) and isinstance(error, LgdistError)
    assert str(error) == str(exc) and error.args == exc.args
    assert "Traceback (most recent call last)" in error.remote_traceback
    assert "lgdist-exception" not in error.remote_traceback
    assert "node 'n' failed" in "\n".join(error.__notes__)


class Outsider(ValueError):
    """A class outside builtins, lgdist.errors and the graph's package."""


@pytest.mark.parametrize(
    "exc, packages",
    [
        (Outsider("x"), GRAPH),  # this test module is not the graph's package
        (nested.TopicError("x"), trusted_packages("workers_other.mod:graph")),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), GRAPH),  # bytes do not survive JSON
    ],
    ids=["foreign-module", "other-graph", "unplain-args"],
)
def test_classes_it_may_not_rebuild_give_a_plain_run_failed_error(exc: Exception, packages: tuple) -> None:
    error = run_failed_error(recorded(exc), packages)
    assert type(error) is RunFailedError
    assert error.args == (error.remote_traceback,) and type(exc).__name__ in str(error)


def test_a_constructor_that_needs_other_arguments_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    class NeedsTwo(ValueError):
        def __init__(self, code: int, text: str) -> None:
            super().__init__(f"{code}: {text}")

    # A trusted, importable class whose constructor refuses the recorded args.
    NeedsTwo.__module__, NeedsTwo.__qualname__ = "builtins", "NeedsTwo"
    monkeypatch.setattr(builtins, "NeedsTwo", NeedsTwo, raising=False)
    text = recorded(NeedsTwo(1, "x"))
    assert '"type": "builtins.NeedsTwo"' in text
    error = run_failed_error(text, GRAPH)
    assert type(error) is RunFailedError and "1: x" in str(error)


def test_forged_records_load_nothing() -> None:
    forged = "node 'n' failed:\nboom\nlgdist-exception: " + '{"type": "os.system", "args": ["echo hi"]}'
    assert type(run_failed_error(forged, GRAPH)) is RunFailedError
    bubble = "x\nlgdist-exception: " + '{"type": "lgdist.errors.GraphInterrupt", "args": []}'
    assert type(run_failed_error(bubble, GRAPH)) is RunFailedError
    assert type(run_failed_error("x\nlgdist-exception: {not json", GRAPH)) is RunFailedError
    assert str(run_failed_error(None)) == "run failed"


def test_old_import_paths_still_work() -> None:
    from lgdist.client.client import RunFailedError as from_client
    from lgdist.prebuilt import ToolInvocationError as from_prebuilt
    from lgdist.prebuilt.tool_node import ToolInvocationError as from_tool_node
    from lgdist.testing import ScriptExhaustedError as from_testing
    from lgdist.testing.models import ScriptExhaustedError as from_models
    from lgdist import errors

    assert from_client is errors.RunFailedError
    assert from_prebuilt is from_tool_node is errors.ToolInvocationError
    assert from_testing is from_models is errors.ScriptExhaustedError
    for cls in (errors.RunFailedError, errors.ToolInvocationError, errors.ScriptExhaustedError):
        assert issubclass(cls, errors.LgdistError) and cls.__name__ in errors.__all__
