"""``durability`` on distributed runs. A worker that runs a thread's
one-task steps inline (a slice) stores each step's checkpoint in its own
transaction under "sync", and the slice's checkpoints in one transaction
when the slice ends under "async" (and "exit"): the stored history is the
same in every mode, and equals the local runtime's under "sync"/"async"."""

from __future__ import annotations

import pytest

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.graph.compiled import CompiledStateGraph
from lgdist.types import Command

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _key(snap) -> tuple:
    return (snap.metadata["step"], snap.metadata["source"], snap.values, tuple(snap.next))


def _local_history(cluster, graph: str, inputs: list) -> list:
    compiled = cluster.client.backend.registry.get(graph)
    local = CompiledStateGraph(builder=compiled.builder, spec=compiled.spec, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "reference"}}
    for value in inputs:
        local.invoke(value, config)
    return [_key(s) for s in reversed(list(local.get_state_history(config)))]


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_a_slice_stores_the_same_history_in_every_mode(cluster, durability):
    thread_id = cluster.thread_id(f"dur-{durability}")
    run_id = cluster.client.submit("counter", {"n": 0}, thread_id, durability=durability)
    assert cluster.wait_run(run_id)["status"] == "success"
    assert [_key(s) for s in cluster.history("counter", thread_id)] == _local_history(cluster, "counter", [{"n": 0}])
    cluster.assert_thread_sound(thread_id)
    values = [c for m, c in cluster.client.events(run_id, timeout=10) if m == "values"]
    assert values == [{"n": n, "trail": list(range(n))} for n in range(6)]


def test_an_async_slice_stops_at_an_interrupt_with_its_steps_stored_and_resumes(cluster):
    thread_id = cluster.thread_id("dur-interrupt")
    first = cluster.client.submit("approval", {"request": "r1"}, thread_id, durability="async")
    assert cluster.wait_run(first)["status"] == "interrupted"
    second = cluster.client.submit("approval", Command(resume="yes"), thread_id, durability="async")
    assert cluster.wait_run(second)["status"] == "success"
    expected = _local_history(cluster, "approval", [{"request": "r1"}, Command(resume="yes")])
    assert [_key(s) for s in cluster.history("approval", thread_id)] == expected
    cluster.assert_thread_sound(thread_id)


def test_durability_must_be_a_known_mode(cluster):
    with pytest.raises(ValueError, match="durability"):
        cluster.client.submit("counter", {"n": 0}, cluster.thread_id("dur-bad"), durability="later")


def test_client_and_remote_graph_default_to_async_as_langgraph(cluster):
    """LangGraph's ``invoke``/``stream`` default to ``durability="async"``:
    so do ``Client.submit``/``stream`` and ``RemoteGraph.stream``/``invoke``
    (``None`` means the default too)."""
    from lgdist.client import RemoteGraph

    client = cluster.client
    submitted = client.submit("counter", {"n": 0}, cluster.thread_id("dur-default"))
    assert cluster.wait_run(submitted)["status"] == "success"
    explicit_none = client.submit("counter", {"n": 0}, cluster.thread_id("dur-none"), durability=None)
    assert cluster.wait_run(explicit_none)["status"] == "success"
    thread_id = cluster.thread_id("dur-remote")
    remote = RemoteGraph("counter", client=client)
    assert remote.invoke({"n": 0}, {"configurable": {"thread_id": thread_id}}) == {"n": 5, "trail": [0, 1, 2, 3, 4]}
    (remote_run,) = client.runs(thread_id)
    for run_id in (submitted, explicit_none, remote_run["run_id"]):
        assert client.backend.runs.get_run(run_id).options["durability"] == "async"


def test_a_resume_message_defaults_to_async_and_can_say_otherwise(cluster):
    """A resumed run stores its steps as its message says, by default as
    LangGraph's ``invoke`` does ("async"), whether ``Client.resume`` or any
    program sent the message."""
    client = cluster.client
    runs = []
    for durability in (None, "sync"):
        thread_id = cluster.thread_id("dur-resume")
        first = client.submit("approval", {"request": "r1"}, thread_id)
        assert cluster.wait_run(first)["status"] == "interrupted"
        extra = {} if durability is None else {"durability": durability}
        resumed = client.resume(thread_id, "yes", **extra)
        assert cluster.wait_run(resumed)["status"] == "success"
        runs.append(resumed)
    assert [client.backend.runs.get_run(r).options["durability"] for r in runs] == ["async", "sync"]
