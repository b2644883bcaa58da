"""A growing conversation, one invoke per turn: does a turn cost the same at
turn 300 as at turn 10?

One thread, ``MessagesState``, one node that answers each turn with a 1 KB
``AIMessage``, a SQLite file saver, one ``invoke`` per turn (a chat server
handling one request per user message). Every invoke restores the thread: a
runtime that decodes the whole history on each restore gets slower every
turn; one that keeps decoded values (lgdist's blob cache) reads only the
checkpoint row and the newest message. The row compares lgdist's median turn
time at the end (the last 10 turns) with its own median over turns 10..60;
langgraph's same ratio is printed for context.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.growing_state import _text

TURNS = 300
GOAL = 1.5


def _app(lib: str, path: Path) -> Any:
    graph = __import__(f"{lib}.graph", fromlist=["StateGraph"])
    from langchain_core.messages import AIMessage

    def agent(state: dict) -> dict:
        n = len(state["messages"])
        return {"messages": [AIMessage(_text(n), id=f"ai-{n}")]}

    g = graph.StateGraph(graph.MessagesState)
    g.add_node("agent", agent)
    g.add_edge(graph.START, "agent")
    g.add_edge("agent", graph.END)
    if lib == "langgraph":
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver

        saver: Any = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
    else:
        from lgdist.checkpoint.sqlite import SqliteSaver

        saver = SqliteSaver.from_conn_string(str(path))
    return g.compile(checkpointer=saver)


def turn_times(lib: str, turns: int, folder: Path) -> list[float]:
    from langchain_core.messages import HumanMessage

    app = _app(lib, folder / f"{lib}-{uuid.uuid4().hex[:6]}.db")
    config = {"configurable": {"thread_id": "conversation"}}
    times = []
    for turn in range(turns):
        message = HumanMessage(f"question {turn}", id=f"human-{turn}")
        t0 = time.perf_counter()
        app.invoke({"messages": [message]}, config)
        times.append(time.perf_counter() - t0)
    return times


def run(quick: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="lgdist-bench-conversation-") as tmp:
        # langgraph's turns grow slow (it decodes the history every turn):
        # shown for context in the full run only, to keep --quick quick.
        libs = ("lgdist",) if quick else ("lgdist", "langgraph")
        got = {lib: turn_times(lib, TURNS, Path(tmp)) for lib in libs}
    for lib, times in got.items():
        early, late = statistics.median(times[10:60]) * 1e3, statistics.median(times[-10:]) * 1e3
        rows.append({
            "workload": f"growing conversation {TURNS} turns ({lib}, sqlite file, one invoke per turn): "
                        f"time/turn at turn {TURNS} vs turns 10-60 ({late:.2f} ms vs {early:.2f} ms)",
            "lgdist": late, "reference": early, "unit": "ms/turn",
            "target": GOAL if lib == "lgdist" else None,
        })  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
