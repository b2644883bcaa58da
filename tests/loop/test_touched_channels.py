"""finish() clears and checkpoints only the channels a step touched (the
last step's updates, the versions it bumped). The result must be exactly
what checking every channel gives, on graphs that use every kind of
channel a step clears or finishes."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.graph import END, START, StateGraph
from lgdist.loop import ThreadLoop
from lgdist.types import Send


class S(TypedDict, total=False):
    n: int
    items: Annotated[list, operator.add]
    note: str


def _graph() -> Any:
    def route(state: S) -> Any:
        if state["n"] < 3:
            return [Send("work", {"n": state["n"], "items": [], "note": str(i)}) for i in range(3)]
        return "last"

    g = StateGraph(S)
    g.add_node("start", lambda s: {"n": s["n"] + 1, "items": ["start"]})
    g.add_node("work", lambda s: {"items": [f"work{s['note']}"]})
    g.add_node("join", lambda s: {"n": s["n"] + 1, "note": "joined"})
    g.add_node("left", lambda s: {"items": ["left"]})
    g.add_node("right", lambda s: {"items": ["right"]})
    g.add_node("both", lambda s: {"items": ["both"]})
    g.add_node("later", lambda s: {"items": ["later"]}, defer=True)
    g.add_node("last", lambda s: {"note": "done"})
    g.add_edge(START, "start")
    g.add_conditional_edges("start", route, ["work", "last"])
    g.add_edge("work", "join")
    g.add_edge("join", "left")
    g.add_edge("join", "right")
    g.add_edge("join", "later")
    g.add_edge(["left", "right"], "both")
    g.add_edge("both", "start")
    g.add_edge("later", END)
    g.add_edge("last", END)
    return g.compile(checkpointer=InMemorySaver())


def _run(monkeypatch: pytest.MonkeyPatch, *, touched_only: bool) -> list:
    if not touched_only:
        original = ThreadLoop.finish

        def finish_checking_every_channel(self: ThreadLoop, **kwargs: Any) -> None:
            self.may_hold = None
            original(self, **kwargs)

        monkeypatch.setattr(ThreadLoop, "finish", finish_checking_every_channel)
    graph = _graph()
    cfg = {"configurable": {"thread_id": "t"}}
    graph.invoke({"n": 0, "items": []}, cfg)
    graph.invoke({"n": 0, "items": []}, cfg)
    history = []
    for snap in graph.get_state_history(cfg):
        checkpoint = graph.checkpointer.get_tuple(snap.config).checkpoint
        history.append((
            snap.values, snap.next, snap.metadata["step"],
            sorted(checkpoint["channel_values"]), sorted(checkpoint["channel_versions"]),
            checkpoint["updated_channels"],
        ))  # fmt: skip
    monkeypatch.undo()
    return history


def test_touched_channels_give_the_same_history_as_checking_every_channel(monkeypatch):
    fast = _run(monkeypatch, touched_only=True)
    full = _run(monkeypatch, touched_only=False)
    assert len(fast) > 10
    assert fast == full
