"""Checkpoint cost as a conversation grows: lgdist vs langgraph, SQLite and Postgres.

One thread, ``MessagesState`` (``add_messages``), a node that answers with one
1 KB ``AIMessage`` per step, for 500 steps (100 with ``--quick``). After chosen
steps the benchmark sums the bytes the thread has stored so far (logical sizes
of the value columns: lgdist's checkpoint/metadata/value_chains text and blob
and write blobs; langgraph's checkpoint/metadata and blob/write values), and it
times every step (the measuring happens while the stream is paused, outside the
timed spans).

"Per step at step 10" is the mean over steps 10..41 and "at the end" over the
last 32 steps: windows of 32 steps, so a periodic larger row (lgdist's delta
chain restates 32 steps every 32nd step) counts at its amortized cost. Times
are the median step of the same windows.
Both run with ``durability="sync"`` (each checkpoint saved before the next
step; the default of both, "async", stores it while the next step runs) so
the byte counts are read after the writes.
"""

from __future__ import annotations

import random
import sqlite3
import os
import statistics
import string
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

POSTGRES_URL = os.environ.get("LGDIST_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
WINDOW = 32
START_STEP = 10
GROWTH_GOAL = 1.5  # bytes per step at the end / at step 10, for lgdist


def _text(i: int) -> str:
    """1 KB of incompressible-ish text (so TOAST/page compression cannot hide
    a rewrite), different for every message."""
    rng = random.Random(i)
    return "".join(rng.choices(string.ascii_letters + "      ", k=1024))


def build(lib: str, steps: int) -> Any:
    graph = __import__(f"{lib}.graph", fromlist=["StateGraph"])
    from langchain_core.messages import AIMessage

    def agent(state: dict) -> dict:
        n = len(state["messages"])
        return {"messages": [AIMessage(_text(n), id=f"ai-{n}")]}

    def route(state: dict) -> str:
        return graph.END if len(state["messages"]) > steps else "agent"

    g = graph.StateGraph(graph.MessagesState)
    g.add_node("agent", agent)
    g.add_edge(graph.START, "agent")
    g.add_conditional_edges("agent", route)
    return g


# ------------------------------------------------------- stores and sizes
def _lgdist_saver(kind: str, tmp: Path) -> tuple[Any, Callable[[str], int], Callable[[], None]]:
    from lgdist.checkpoint.postgres import PostgresSaver
    from lgdist.checkpoint.sqlite import SqliteSaver

    if kind == "sqlite":
        saver: Any = SqliteSaver.from_conn_string(str(tmp / f"lgdist-{uuid.uuid4().hex[:6]}.db"))
        size = "length(CAST({} AS BLOB))"
    else:
        saver = PostgresSaver.from_conn_string(POSTGRES_URL)
        size = "octet_length({})"
    saver.setup()
    s = lambda col: f"coalesce(sum({size.format(col)}), 0)"  # noqa: E731
    query = sa.text(
        f"SELECT (SELECT {s('blob')} FROM lgdist_blobs WHERE thread_id = :t)"
        f" + (SELECT {s('checkpoint')} + {s('metadata')} + {s('value_chains')} FROM lgdist_checkpoints WHERE thread_id = :t)"
        f" + (SELECT {s('blob')} FROM lgdist_writes WHERE thread_id = :t)"
    )

    def stored(thread_id: str) -> int:
        with saver.engine.connect() as conn:
            return int(conn.execute(query, {"t": thread_id}).scalar_one())

    return saver, stored, saver.close


def _langgraph_saver(kind: str, tmp: Path) -> tuple[Any, Callable[[str], int], Callable[[], None]]:
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = tmp / f"langgraph-{uuid.uuid4().hex[:6]}.db"
        conn = sqlite3.connect(str(path), check_same_thread=False)
        saver: Any = SqliteSaver(conn)
        saver.setup()
        reader = sqlite3.connect(str(path), check_same_thread=False)
        s = lambda col: f"coalesce(sum(length(CAST({col} AS BLOB))), 0)"  # noqa: E731
        query = (
            f"SELECT (SELECT {s('checkpoint')} + {s('metadata')} FROM checkpoints WHERE thread_id = ?)"
            f" + (SELECT {s('value')} FROM writes WHERE thread_id = ?)"
        )

        def stored(thread_id: str) -> int:
            return int(reader.execute(query, (thread_id, thread_id)).fetchone()[0])

        def close() -> None:
            reader.close()
            conn.close()

        return saver, stored, close
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row

    conn = Connection.connect(POSTGRES_URL, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    saver = PostgresSaver(conn)
    saver.setup()
    s = lambda col: f"coalesce(sum(octet_length({col})), 0)"  # noqa: E731
    query = (
        f"SELECT (SELECT {s('checkpoint::text')} + {s('metadata::text')} FROM checkpoints WHERE thread_id = %(t)s)"
        f" + (SELECT {s('blob')} FROM checkpoint_blobs WHERE thread_id = %(t)s)"
        f" + (SELECT {s('blob')} FROM checkpoint_writes WHERE thread_id = %(t)s) AS total"
    )

    def stored(thread_id: str) -> int:
        return int(conn.execute(query, {"t": thread_id}).fetchone()["total"])

    return saver, stored, conn.close


# ------------------------------------------------------------------ run
def measure(lib: str, kind: str, steps: int, tmp: Path) -> dict[str, float]:
    """Bytes per step and ms per step at step 10 and at the end of one thread."""
    saver, stored, close = (_lgdist_saver if lib == "lgdist" else _langgraph_saver)(kind, tmp)
    from langchain_core.messages import HumanMessage

    app = build(lib, steps).compile(checkpointer=saver)
    thread_id = f"bench-growing-{uuid.uuid4().hex[:10]}"
    cfg: dict[str, Any] = {"configurable": {"thread_id": thread_id}, "recursion_limit": steps + 10}
    kwargs = {"durability": "sync"}  # both: the byte counts are read between steps
    marks = {START_STEP, START_STEP + WINDOW, steps - WINDOW, steps}
    sizes: dict[int, int] = {}
    times: list[float] = []
    step = 0
    try:
        stream = app.stream({"messages": [HumanMessage(_text(-1), id="human")]}, cfg, stream_mode="updates", **kwargs)
        resumed = time.perf_counter()
        for update in stream:
            elapsed = time.perf_counter() - resumed
            if "agent" not in update:
                resumed = time.perf_counter()
                continue
            step += 1
            times.append(elapsed)
            if step in marks:
                sizes[step] = stored(thread_id)
            resumed = time.perf_counter()
        assert step == steps, (lib, kind, step)
    finally:
        try:
            saver.delete_thread(thread_id)
        finally:
            close()

    def per_step(first: int, last: int) -> float:
        return (sizes[last] - sizes[first]) / (last - first)

    return {
        "bytes_start": per_step(START_STEP, START_STEP + WINDOW),
        "bytes_end": per_step(steps - WINDOW, steps),
        # Medians: the shared database and machine add outliers to single steps.
        "ms_start": statistics.median(times[START_STEP : START_STEP + WINDOW]) * 1e3,
        "ms_end": statistics.median(times[-WINDOW:]) * 1e3,
    }


def run(quick: bool) -> list[dict]:
    steps = 100 if quick else 500
    rows = []
    for kind in ("sqlite", "postgres"):
        with tempfile.TemporaryDirectory(prefix="lgdist-bench-growing-") as tmp:
            got = {lib: measure(lib, kind, steps, Path(tmp)) for lib in ("lgdist", "langgraph")}
        lg, ref = got["lgdist"], got["langgraph"]
        name = f"growing state {steps} steps, {kind}"
        lg_growth, ref_growth = lg["bytes_end"] / lg["bytes_start"], ref["bytes_end"] / ref["bytes_start"]
        rows += [
            {
                # The goal is absolute (lgdist's own growth <= 1.5x: flat);
                # langgraph's growth is shown for context. The table judges
                # lgdist / reference <= target, so the target is the bound
                # divided by the reference's growth.
                "workload": f"{name}: bytes/step growth (end / step {START_STEP}), goal lgdist <= {GROWTH_GOAL}x",
                "lgdist": lg_growth,
                "reference": ref_growth,
                "unit": "x",
                "target": round(GROWTH_GOAL / ref_growth, 3),
                "absolute_target": GROWTH_GOAL,
            },
            {
                "workload": f"{name}: bytes/step at step {START_STEP}",
                "lgdist": lg["bytes_start"] / 1024,
                "reference": ref["bytes_start"] / 1024,
                "unit": "KB/step",
                "target": 1.0,
            },
            {
                "workload": f"{name}: bytes/step at the end",
                "lgdist": lg["bytes_end"] / 1024,
                "reference": ref["bytes_end"] / 1024,
                "unit": "KB/step",
                "target": 0.1,
            },
            {
                "workload": f"{name}: time/step at step {START_STEP}",
                "lgdist": lg["ms_start"],
                "reference": ref["ms_start"],
                "unit": "ms/step",
                "target": 0.5,
            },
            {
                "workload": f"{name}: time/step at the end",
                "lgdist": lg["ms_end"],
                "reference": ref["ms_end"],
                "unit": "ms/step",
                "target": 0.5,
            },
        ]
    return rows


if __name__ == "__main__":
    import sys

    from bench.__main__ import table

    print(table(run("--quick" in sys.argv)))
