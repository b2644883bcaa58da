"""Local step overhead: lgdist vs langgraph on the same graphs, same process."""

from __future__ import annotations

import importlib
import operator
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

POSTGRES_URL = os.environ.get("LGDIST_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


class ChainState(TypedDict, total=False):
    n: int


class FanState(TypedDict, total=False):
    hits: Annotated[list, operator.add]


def _mods(lib: str) -> Any:
    graph = importlib.import_module(f"{lib}.graph")
    return graph


def build_chain(lib: str, length: int) -> Any:
    g = _mods(lib).StateGraph(ChainState)
    prev = _mods(lib).START
    for i in range(length):
        name = f"n{i}"
        g.add_node(name, lambda s: {"n": s.get("n", 0) + 1})
        g.add_edge(prev, name)
        prev = name
    g.add_edge(prev, _mods(lib).END)
    return g


def build_fanout(lib: str, width: int) -> Any:
    mod = _mods(lib)
    g = mod.StateGraph(FanState)
    g.add_node("src", lambda s: {"hits": []})
    g.add_edge(mod.START, "src")
    names = [f"w{i}" for i in range(width)]
    for name in names:
        g.add_node(name, lambda s: {"hits": [1]})
        g.add_edge("src", name)
    g.add_node("join", lambda s: {"hits": [0]})
    g.add_edge(names, "join")
    g.add_edge("join", mod.END)
    return g


def saver(lib: str, kind: str, tmp: Path) -> Any:
    if kind == "none":
        return None
    if kind == "memory":
        return importlib.import_module(f"{lib}.checkpoint.memory").InMemorySaver()
    if kind == "sqlite":
        path = tmp / f"{lib}-{uuid.uuid4().hex[:6]}.db"
        if lib == "langgraph":
            import sqlite3

            from langgraph.checkpoint.sqlite import SqliteSaver

            return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
        from lgdist.checkpoint.sqlite import SqliteSaver

        return SqliteSaver.from_conn_string(str(path))
    if kind == "postgres":
        if lib == "langgraph":
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg import Connection
            from psycopg.rows import dict_row

            conn = Connection.connect(POSTGRES_URL, autocommit=True, prepare_threshold=0, row_factory=dict_row)
            s = PostgresSaver(conn)
            s.setup()
            return s
        from lgdist.checkpoint.postgres import PostgresSaver

        s = PostgresSaver.from_conn_string(POSTGRES_URL)
        s.setup()
        return s
    raise ValueError(kind)


def time_run(app: Any, inp: Any, with_thread: bool, reps: int) -> float:
    times = []
    for _ in range(reps):
        cfg = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 10_000}
        t0 = time.perf_counter()
        app.invoke(inp, cfg if with_thread else {"recursion_limit": 10_000})
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool) -> list[dict]:
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="lgdist-bench-"))
    chain_len = 50 if quick else 200
    width = 32
    reps = 3 if quick else 7
    kinds = ["none", "memory", "sqlite"] + ([] if quick else ["postgres"])
    for kind in kinds:
        for workload, builder, steps, inp in (
            (f"chain {chain_len}", lambda lib: build_chain(lib, chain_len), chain_len + 1, {"n": 0}),
            (f"fan-out {width}", lambda lib: build_fanout(lib, width), 4, {"hits": []}),
        ):
            result = {}
            for lib in ("lgdist", "langgraph"):
                app = builder(lib).compile(checkpointer=saver(lib, kind, tmp))
                time_run(app, inp, kind != "none", 1)  # warm up
                result[lib] = time_run(app, inp, kind != "none", reps)
            rows.append(
                {
                    "workload": f"local {workload}, {kind}" + (" (stretch <= 0.25x)" if kind == "none" else ""),
                    "lgdist": result["lgdist"] / steps * 1e3,
                    "reference": result["langgraph"] / steps * 1e3,
                    "unit": "ms/step",
                    "target": 0.5,
                }
            )
    return rows
