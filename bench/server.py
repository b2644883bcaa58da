"""``lgdist serve`` against LangGraph's own development server.

The same SDK workload on both, for the same graph (five supersteps of one
trivial node, ``bench-five-steps``): lgdist serve in front of two lgdist
workers on Redis + Postgres, and ``langgraph dev`` (``langgraph-cli[inmem]``,
in-memory, in-process) serving the same graph written with langgraph.

* **Time to first event**: a ``runs.stream`` call until its first ``values``
  chunk (median of sequential runs).
* **Run latency**: ``runs.wait`` on a new thread (median).
* **Runs per second**: 50 async SDK clients each running stateless
  ``runs.wait`` back to back.

``langgraph dev`` is installed only for this benchmark, into its own venv
(``LGDIST_BENCH_LANGGRAPH_VENV``, default ``.lgdist/bench-langgraph-venv``),
never into lgdist's dependencies. If it cannot be installed the reference
column is empty.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from bench.distributed import POSTGRES_URL, REDIS_URL, WORKER_FLAGS, worker_env
from bench._workers import WorkerPool, lgdist_command

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("LGDIST_BENCH_LANGGRAPH_VENV", ROOT / ".lgdist" / "bench-langgraph-venv"))
GRAPH = "bench-five-steps"
INPUT = {"n": 0}
NAN = float("nan")

REFERENCE_GRAPH = textwrap.dedent(
    '''
    from typing import TypedDict
    from langgraph.graph import END, START, StateGraph

    class StepsState(TypedDict, total=False):
        n: int

    def step(state):
        return {"n": state.get("n", 0) + 1}

    def more(state):
        return "step" if state.get("n", 0) < 5 else END

    g = StateGraph(StepsState)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", more, ["step", END])
    graph = g.compile()
    '''
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer /ok within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def langgraph_dev_binary() -> Optional[Path]:
    binary = VENV / "bin" / "langgraph"
    if binary.exists():
        return binary
    print(f"installing langgraph-cli[inmem] into {VENV} (benchmark reference only)", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", "langgraph-cli[inmem]", "langgraph==1.2.24"], check=True
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"could not install langgraph dev ({exc}); no reference column", file=sys.stderr)
        return None
    return binary if binary.exists() else None


# -- the workload ----------------------------------------------------------------------------


def first_event_seconds(url: str, reps: int) -> float:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=url)
    times = []
    for _ in range(reps + 1):
        tid = client.threads.create()["thread_id"]
        t0 = time.perf_counter()
        first = None
        for part in client.runs.stream(tid, GRAPH, input=INPUT, stream_mode="values"):
            if part.event == "values" and first is None:
                first = time.perf_counter() - t0
        times.append(first)
    return statistics.median(times[1:])  # the first run warms up


def run_latency_seconds(url: str, reps: int) -> float:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=url)
    times = []
    for _ in range(reps + 1):
        tid = client.threads.create()["thread_id"]
        t0 = time.perf_counter()
        result = client.runs.wait(tid, GRAPH, input=INPUT)
        times.append(time.perf_counter() - t0)
        assert result == {"n": 5}, result
    return statistics.median(times[1:])


def runs_per_second(url: str, clients: int, runs_each: int) -> float:
    from langgraph_sdk import get_client

    async def main() -> float:
        client = get_client(url=url, timeout=300)

        async def one_client() -> None:
            for _ in range(runs_each):
                result = await client.runs.wait(None, GRAPH, input=INPUT)
                assert result == {"n": 5}, result

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return clients * runs_each / (time.perf_counter() - t0)

    return asyncio.run(main())


def measure(url: str, quick: bool) -> dict[str, float]:
    reps = 5 if quick else 20
    return {
        "first": first_event_seconds(url, reps),
        "latency": run_latency_seconds(url, reps),
        "rps": runs_per_second(url, 50, 2 if quick else 6),
    }


# -- the two servers ---------------------------------------------------------------------------


def measure_lgdist(quick: bool, log_dir: Path, workload: Any = None) -> Any:
    from lgdist.client import Client
    from lgdist.settings import Settings

    queue = f"lgdist-bench-serve-{uuid.uuid4().hex[:6]}"
    env = worker_env(queue)
    settings = Settings(broker_url=REDIS_URL, database_url=POSTGRES_URL, default_queue=queue, node_queues="",
                        graphs=env["LGDIST_GRAPHS"], home=Path(env["LGDIST_HOME"]))  # fmt: skip
    client = Client(settings)
    client.backend.runs.setup()
    port = free_port()
    with WorkerPool([*lgdist_command(), "worker", *WORKER_FLAGS], env, client.app, log_dir, prefix="serve-bench") as pool:
        pool.scale_to(2)
        log = log_dir / "serve.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([*lgdist_command(), "serve", "--port", str(port), "--log-level", "warning"],
                                    env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ok(url, proc, log)
            if workload is not None:
                return workload(url, proc.pid, pool.pids())
            return measure(url, quick)
        finally:
            stop(proc)


# -- per-run accounting ------------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and of every process in their
    process groups (a worker's pool children), from /proc."""
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) in pids or int(fields[2]) in groups:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _postgres_counters() -> tuple[list[int], int]:
    """The backends connected to the benchmark's database, and its committed
    plus rolled-back transactions so far."""
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        db = conn.execute(sa.text("select current_database()")).scalar()
        pids = [r[0] for r in conn.execute(sa.text("select pid from pg_stat_activity where datname = :d and pid <> pg_backend_pid()"), {"d": db})]
        conn.execute(sa.text("select pg_stat_clear_snapshot()"))
        xacts = conn.execute(sa.text("select xact_commit + xact_rollback from pg_stat_database where datname = :d"), {"d": db}).scalar()
    engine.dispose()
    return pids, int(xacts) - 1  # this query's own transaction


def _redis_counters() -> tuple[int, dict[str, int]]:
    """The Redis server's pid and the commands it has run so far, by name."""
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    pid = int(r.info("server")["process_id"])
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}
    r.close()
    calls["info"] -= 2  # these two
    return pid, calls


def _profile(server_pid: int, worker_pids: list[int]) -> list[subprocess.Popen]:
    """py-spy on the server and a worker (folded stacks, into the directory
    ``LGDIST_BENCH_PROFILE`` names), when it is set."""
    out = os.environ.get("LGDIST_BENCH_PROFILE")
    if not out:
        return []
    spy = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen([str(spy), "record", "--format", "raw", "-r", "200", "-o", f"{out}/{name}.txt", "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        for name, pid in (("server", server_pid), ("worker", worker_pids[0]))
    ]


def account(url: str, server_pid: int, worker_pids: list[int], *, clients: int = 50, runs_each: int = 6) -> dict:
    """CPU seconds per run of each process, Postgres transactions and Redis
    commands per run, over ``clients`` x ``runs_each`` stateless runs.wait
    (after a warm-up round)."""
    runs_per_second(url, clients, 1)
    time.sleep(1.0)
    pg_pids, _ = _postgres_counters()
    redis_pid, _ = _redis_counters()
    procs = {"server": [server_pid], "workers": worker_pids, "postgres": pg_pids, "redis": [redis_pid]}
    before = {k: _cpu_seconds(v) for k, v in procs.items()}
    profilers = _profile(server_pid, worker_pids)
    _, xacts0 = _postgres_counters()
    _, calls0 = _redis_counters()
    rps = runs_per_second(url, clients, runs_each)
    time.sleep(0.5)  # the last stateless threads' deletion
    _, xacts1 = _postgres_counters()
    _, calls1 = _redis_counters()
    after = {k: _cpu_seconds(v) for k, v in procs.items()}
    for profiler in profilers:
        profiler.send_signal(2)
        profiler.wait(timeout=30)
    n = clients * runs_each
    out = {f"{k} CPU ms/run": (after[k] - before[k]) * 1000 / n for k in procs}
    out["total CPU ms/run"] = sum(out.values())
    out["Postgres transactions/run"] = (xacts1 - xacts0 - 1) / n
    out["Redis commands/run"] = (sum(calls1.values()) - sum(calls0.values())) / n
    for name in sorted(calls1):
        if calls1[name] - calls0.get(name, 0) >= n / 10:
            out[f"  {name}/run"] = (calls1[name] - calls0.get(name, 0)) / n
    out["runs/s"] = rps
    out["load average"] = os.getloadavg()[0]
    return out


def measure_langgraph_dev(quick: bool, log_dir: Path, workload: Any = None) -> Any:
    binary = langgraph_dev_binary()
    if binary is None:
        return None
    project = Path(tempfile.mkdtemp(prefix="lgdist-bench-langgraph-"))
    (project / "graphs.py").write_text(REFERENCE_GRAPH)
    (project / "langgraph.json").write_text(
        '{"dependencies": ["."], "graphs": {"%s": "./graphs.py:graph"}}' % GRAPH
    )
    port = free_port()
    log = log_dir / "langgraph-dev.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGDIST_")}
    env["PATH"] = f"{binary.parent}{os.pathsep}{env.get('PATH', '')}"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(binary), "dev", "--no-browser", "--no-reload", "--port", str(port)],
            cwd=project, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ok(url, proc, log)
        if workload is not None:
            return workload(url, proc.pid, [])
        return measure(url, quick)
    finally:
        stop(proc)


def run(quick: bool) -> list[dict]:
    log_dir = Path(tempfile.mkdtemp(prefix="lgdist-bench-serve-"))
    ours = measure_lgdist(quick, log_dir)
    ref = measure_langgraph_dev(quick, log_dir) or {"first": NAN, "latency": NAN, "rps": NAN}
    return [
        {"workload": "SDK stream, time to first event (lgdist serve + 2 workers vs langgraph dev)",
         "lgdist": ours["first"] * 1000, "reference": ref["first"] * 1000, "unit": "ms", "target": 1.5},
        {"workload": "SDK runs.wait latency, 5 supersteps (lgdist serve vs langgraph dev)",
         "lgdist": ours["latency"] * 1000, "reference": ref["latency"] * 1000, "unit": "ms", "target": 1.5},
        {"workload": "SDK runs per second, 50 concurrent clients (lgdist serve + 2 workers vs langgraph dev)",
         "lgdist": ours["rps"], "reference": ref["rps"], "unit": "runs/s", "target": 1.0, "higher_is_better": True},
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.__main__ import header, table

    if "--account" in sys.argv:
        # Per-run accounting of lgdist serve + 2 workers under the 50-client load.
        clients = int(os.environ.get("LGDIST_BENCH_ACCOUNT_CLIENTS", "50"))
        figures = measure_lgdist(
            False, Path(tempfile.mkdtemp(prefix="lgdist-bench-serve-")),
            workload=lambda url, server, workers: account(url, server, workers, clients=clients, runs_each=300 // clients),
        )  # fmt: skip
        print("\n".join(f"{k}: {v:.2f}" for k, v in figures.items()))
        sys.exit(0)

    rows = run("--quick" in sys.argv)
    print(f"{header()}\n\n{table(rows)}")
