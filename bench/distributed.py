"""Distributed benchmarks: lgdist workers on Redis + Postgres.

* **Superstep overhead** — a chain and a 32-wide fan-out run through
  ``RemoteGraph`` on two ``lgdist worker`` processes, against a raw Celery
  reference doing the least a chord-per-superstep runtime must do: the same
  chords (same number of supersteps, same widths) of no-op tasks, each
  callback writing one ~10 KB row to Postgres and sending the next chord.
  Both sides use lgdist's Celery configuration (late acks, prefetch 1, task
  events) and the same worker flags, so the ratio is lgdist's own cost.
  Both pools are up together and the two alternate run by run, so that
  both see the same machine (an idle pool waits on its own queue).
* **Horizontal scaling** — N I/O-bound nodes (200 ms sleeps, sent with
  ``Send``) on 1, 2, 4, 8 worker processes, each running one task at a time;
  speedup against one worker, compared with the ideal N.
* **Throughput** — many threads of a five-step graph submitted at once on
  two workers: threads completed per second and the p50/p99 time between a
  thread's consecutive checkpoints (one superstep, queueing included).

Isolation: a dedicated Redis database (``LGDIST_BENCH_REDIS_URL``, default db
14) flushed before and after, queue names unique to this run, thread ids
unique to this run (their checkpoints are deleted afterwards). Workers run
``-P solo`` by default (``LGDIST_BENCH_POOL=prefork`` runs ``-P prefork -c 1``;
solo was faster here, it skips the parent→child hand-off of every task).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional

REDIS_URL = os.environ.get("LGDIST_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
POSTGRES_URL = os.environ.get("LGDIST_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
POOL = os.environ.get("LGDIST_BENCH_POOL", "solo")
ROOT = Path(__file__).resolve().parents[1]
GRAPHS = {
    "bench-chain-20": "workers.bench_graphs:chain_20",
    "bench-chain-200": "workers.bench_graphs:chain_200",
    "bench-fanout-8": "workers.bench_graphs:fanout_8",
    "bench-fanout-32": "workers.bench_graphs:fanout_32",
    "bench-sleepy-fanout": "workers.bench_graphs:sleepy_fanout",
    "bench-five-steps": "workers.bench_graphs:five_steps",
}
SLEEP_SECONDS = 0.2
NAN = float("nan")
# Flags for every worker, lgdist's and the reference's alike. No mingle or
# gossip: they only slow start-up down. No -E: task events are traffic only
# Flower reads (a running Flower switches them on).
WORKER_FLAGS = ["-P", POOL, "-c", "1", "--loglevel=WARNING", "--without-mingle", "--without-gossip"]
THROUGHPUT_GOAL = 40.0  # threads/s, 200 threads x 5 steps on 2 workers
REFERENCE_TABLE = "lgdist_bench_reference_steps"


# -- the raw Celery reference ------------------------------------------------------
def make_reference_app(broker_url: str, queue: str, database_url: str) -> Any:
    """A bare Celery app with lgdist's Celery settings and three tasks: a
    no-op node; a step callback that writes a ~10 KB row then sends the next
    chord (``widths`` lists each superstep's number of nodes); and ``start``,
    which sends the first chord (as ``lgdist.start`` does)."""
    from celery import Celery, chord
    from kombu import Queue

    from lgdist.distributed.app import celery_config
    from lgdist.settings import Settings

    settings = Settings(broker_url=broker_url, database_url=database_url, default_queue=queue, node_queues="")
    app = Celery("lgdist-bench-reference")
    app.conf.update(celery_config(settings))
    app.conf.task_queues = [Queue(queue)]
    resources: dict = {}

    def connections() -> dict:
        # Opened lazily: in the worker process (after any fork), once.
        if not resources:
            import psycopg
            import redis

            resources["pg"] = psycopg.connect(database_url, autocommit=True)
            resources["redis"] = redis.Redis.from_url(broker_url)
            resources["payload"] = os.urandom(5_000).hex()  # 10 KB of text
        return resources

    @app.task(name="bench.node", acks_late=True)
    def node() -> None:
        return None

    @app.task(name="bench.finish_step", acks_late=True)
    def finish_step(run_id: str, step: int, widths: list) -> None:
        res = connections()
        res["pg"].execute(
            f"INSERT INTO {REFERENCE_TABLE} (run_id, step, state) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (run_id, step, res["payload"]),
        )
        if step + 1 < len(widths):
            send_step(run_id, step + 1, widths)
        else:
            res["redis"].rpush(f"bench:reference:done:{run_id}", time.time())

    @app.task(name="bench.start", acks_late=True)
    def start(run_id: str, widths: list) -> None:
        send_step(run_id, 0, widths)

    def send_step(run_id: str, step: int, widths: list) -> None:
        chord([node.si() for _ in range(widths[step])])(finish_step.si(run_id, step, widths))

    return app


def __getattr__(name: str) -> Any:
    # ``celery -A bench.distributed:reference_app worker``: built on demand
    # from the environment the benchmark gives its reference workers.
    if name == "reference_app":
        app = make_reference_app(
            os.environ["LGDIST_BENCH_REDIS_URL"], os.environ["LGDIST_BENCH_QUEUE"], os.environ["LGDIST_BENCH_DATABASE_URL"]
        )
        globals()["reference_app"] = app
        return app
    raise AttributeError(name)


def setup_reference_table() -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {REFERENCE_TABLE} "
            "(run_id text, step int, state text NOT NULL, PRIMARY KEY (run_id, step))"
        )


def run_reference(app: Any, widths: list[int], session: str) -> float:
    """Seconds for one reference run of ``len(widths)`` supersteps."""
    import redis

    run_id = f"{session}-{uuid.uuid4().hex[:10]}"
    r = redis.Redis.from_url(REDIS_URL)
    t0 = time.perf_counter()
    # Like lgdist's client, send one message; a worker sends the first chord.
    app.send_task("bench.start", args=(run_id, widths))
    if r.blpop([f"bench:reference:done:{run_id}"], timeout=120) is None:
        raise TimeoutError(f"reference run {run_id} did not finish in 120 s")
    return time.perf_counter() - t0


# -- lgdist ---------------------------------------------------------------------
def worker_env(queue: str, extra: Optional[dict] = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGDIST_")}
    env.update(
        LGDIST_HOME=str(Path(tempfile.gettempdir()) / "lgdist-bench-home"),
        LGDIST_BROKER_URL=REDIS_URL,
        LGDIST_DATABASE_URL=POSTGRES_URL,
        LGDIST_GRAPHS=",".join(f"{k}={v}" for k, v in GRAPHS.items()),
        LGDIST_DEFAULT_QUEUE=queue,
        LGDIST_BENCH_SLEEP_SECONDS=str(SLEEP_SECONDS),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **(extra or {}),
    )
    return env


def make_client(queue: str) -> Any:
    from lgdist.client import Client
    from lgdist.settings import Settings

    settings = Settings(
        home=Path(tempfile.gettempdir()) / "lgdist-bench-home",
        broker_url=REDIS_URL,
        database_url=POSTGRES_URL,
        graphs=",".join(f"{k}={v}" for k, v in GRAPHS.items()),
        default_queue=queue,
        node_queues="",
    )
    return Client(settings)


class Threads:
    """Unique thread ids for this run, remembered for clean-up."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.ids: list[str] = []

    def new(self) -> str:
        self.ids.append(f"bench-{self.session}-{uuid.uuid4().hex[:10]}")
        return self.ids[-1]


def step_widths(client: Any, graph: str, thread_id: str) -> list[int]:
    """The number of tasks of each superstep a finished thread ran."""
    history = list(reversed(client.get_state_history(graph, thread_id)))
    return [len(s.tasks) for s in history if s.tasks]


def time_remote(client: Any, graph: str, inp: Any, threads: Threads) -> float:
    from lgdist.client import RemoteGraph

    remote = RemoteGraph(graph, client=client)
    t0 = time.perf_counter()
    remote.invoke(inp, {"configurable": {"thread_id": threads.new()}})
    return time.perf_counter() - t0


def side_by_side(
    client: Any, ref_app: Any, threads: Threads, session: str, graph: str, inp: Any, reps: int
) -> tuple[float, float, list[int]]:
    """Median seconds per superstep of lgdist's run of ``graph`` and of the
    reference's run of the same supersteps (same widths), the two
    alternating run by run; and the widths."""
    time_remote(client, graph, inp, threads)  # warm up (graph import, connections)
    widths = step_widths(client, graph, threads.ids[-1])
    run_reference(ref_app, widths, session)
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(time_remote(client, graph, inp, threads))
        theirs.append(run_reference(ref_app, widths, session))
    return statistics.median(ours) / len(widths), statistics.median(theirs) / len(widths), widths


def scaling(client: Any, pool: Any, threads: Threads, counts: list[int], nodes: int, reps: int) -> dict[int, float]:
    """Seconds for ``nodes`` sleeping nodes on each number of workers. Largest
    count first: workers are started once, then stopped one size at a time."""
    graph = "bench-sleepy-fanout"
    seconds = {}
    for n in sorted(counts, reverse=True):
        started = n > len(pool.workers)
        pool.scale_to(n)
        if started:  # new workers load the graph and connect on their first task
            time_remote(client, graph, {"count": 2 * n}, threads)
        # One worker takes longest and varies least: one run is enough.
        runs = [time_remote(client, graph, {"count": nodes}, threads) for _ in range(1 if n == 1 else reps)]
        seconds[n] = statistics.median(runs)
    return seconds


def throughput(client: Any, threads: Threads, count: int) -> dict[str, float]:
    """Submit ``count`` five-step threads at once; wait for all of them."""
    import sqlalchemy as sa

    from lgdist.distributed.lifecycle import FINAL
    from lgdist.distributed.runs import runs_table

    graph = "bench-five-steps"
    time_remote(client, graph, {"n": 0}, threads)  # warm up
    ids = [threads.new() for _ in range(count)]
    t0 = time.time()
    run_ids = [client.submit(graph, {"n": 0}, tid) for tid in ids]
    pending, ended = set(run_ids), {}
    query = sa.select(runs_table.c.run_id, runs_table.c.status, runs_table.c.updated_at)
    deadline = time.monotonic() + 600
    while pending:
        time.sleep(0.2)  # one query per poll: the client must not eat the workers' CPU
        with client.backend.runs.engine.connect() as conn:
            for row in conn.execute(query.where(runs_table.c.run_id.in_(sorted(pending)))):
                if row.status in FINAL:
                    if row.status != "success":
                        raise RuntimeError(f"throughput run {row.run_id} ended {row.status}")
                    ended[row.run_id] = row.updated_at
                    pending.discard(row.run_id)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {count} throughput runs unfinished after 600 s")
    elapsed = max(ended.values()) - t0
    gaps = []
    for tid in ids:
        stamps = sorted(
            datetime.fromisoformat(t.checkpoint["ts"]).timestamp()
            for t in client.backend.saver.list({"configurable": {"thread_id": tid, "checkpoint_ns": ""}})
        )
        gaps += [b - a for a, b in zip(stamps, stamps[1:])]
    gaps.sort()
    return {
        "threads_per_second": count / elapsed,
        "p50": gaps[len(gaps) // 2],
        "p99": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))],
    }


def cleanup_postgres(client: Any, threads: Threads) -> None:
    """Delete this run's checkpoints and reference rows (run rows stay)."""
    import psycopg

    for tid in threads.ids:
        client.backend.saver.delete_thread(tid)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {REFERENCE_TABLE} WHERE run_id LIKE %s", (f"{threads.session}-%",))


# -- the workloads ----------------------------------------------------------------
@contextmanager
def phase(name: str) -> Iterator[None]:
    """Report each phase's duration on stderr (the table goes to stdout)."""
    t0 = time.perf_counter()
    yield
    print(f"[bench.distributed] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def run(quick: bool) -> list[dict]:
    import redis

    from bench._workers import WorkerPool, celery_command, lgdist_command

    session = uuid.uuid4().hex[:8]
    queue = f"lgdist-bench-{session}"
    ref_queue = f"{queue}-reference"
    chain = "bench-chain-20" if quick else "bench-chain-200"
    chain_reps, fan_reps = (2, 3) if quick else (5, 15)
    scale_counts, scale_nodes = ([1, 2], 8) if quick else ([1, 2, 4, 8], 64)
    concurrent = 40 if quick else 200
    log_dir = Path(tempfile.mkdtemp(prefix="lgdist-bench-workers-"))

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"[bench.distributed] load average before: {load} ({os.cpu_count()} cores); worker logs in {log_dir}",
          file=sys.stderr, flush=True)
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    setup_reference_table()
    client = make_client(queue)
    client.backend.runs.setup()  # create the tables before workers race for them
    threads = Threads(session)
    lgdist_cmd = [*lgdist_command(), "worker", *WORKER_FLAGS]
    ref_app = make_reference_app(REDIS_URL, ref_queue, POSTGRES_URL)
    ref_env = worker_env(queue, {
        "LGDIST_BENCH_REDIS_URL": REDIS_URL, "LGDIST_BENCH_QUEUE": ref_queue, "LGDIST_BENCH_DATABASE_URL": POSTGRES_URL,
    })
    ref_cmd = [*celery_command("bench.distributed:reference_app"), "worker", "-Q", ref_queue, *WORKER_FLAGS]
    try:
        with WorkerPool(lgdist_cmd, worker_env(queue), client.app, log_dir, prefix="lgdist") as pool, \
                WorkerPool(ref_cmd, ref_env, ref_app, log_dir, prefix="reference") as ref_pool:
            with phase("start 2 lgdist and 2 reference workers"):
                pool.scale_to(2)
                ref_pool.scale_to(2)
            # lgdist and the reference alternate run by run (the other's
            # workers wait on their own queue, idle), so that both see the
            # same machine: on a 2-core machine its load drifts within a
            # phase, and a row measured in one go would carry the drift.
            ours, ref, widths = {}, {}, {}
            for key, graph, inp, reps in (
                ("chain", chain, {"n": 0}, chain_reps),
                ("fan8", "bench-fanout-8", {"hits": []}, fan_reps),
                ("fan", "bench-fanout-32", {"hits": []}, fan_reps),
            ):  # fmt: skip
                with phase(f"{graph}: lgdist and the reference, alternating"):
                    ours[key], ref[key], widths[key] = side_by_side(
                        client, ref_app, threads, session, graph, inp, reps
                    )
            with phase(f"lgdist throughput, {concurrent} threads"):
                tp = throughput(client, threads, concurrent)
            with phase(f"lgdist scaling on {scale_counts} workers"):
                scale_s = scaling(client, pool, threads, scale_counts, scale_nodes, 1 if quick else 2)
        chain_s, fan8_s, fan_s = ours["chain"], ours["fan8"], ours["fan"]
        chain_widths, fan8_widths, fan_widths = widths["chain"], widths["fan8"], widths["fan"]
    finally:
        try:
            cleanup_postgres(client, threads)
        finally:
            r.flushdb()

    flags = f"2 workers -P {POOL}"
    rows = [
        {
            "workload": f"distributed {chain} ({len(chain_widths)} supersteps) vs the raw chord-per-superstep floor "
                        f"(stretch <= 0.5x), {flags}",
            "lgdist": chain_s * 1e3, "reference": ref["chain"] * 1e3, "unit": "ms/superstep", "target": 0.75,
        },
        {
            "workload": f"distributed fan-out 8 ({len(fan8_widths)} supersteps, widths {fan8_widths}), {flags}",
            "lgdist": fan8_s * 1e3, "reference": ref["fan8"] * 1e3, "unit": "ms/superstep", "target": 1.2,
        },
        {
            "workload": f"distributed fan-out 32 ({len(fan_widths)} supersteps, widths {fan_widths}), {flags}",
            "lgdist": fan_s * 1e3, "reference": ref["fan"] * 1e3, "unit": "ms/superstep", "target": 1.2,
        },
    ]  # fmt: skip
    for n in sorted(scale_counts)[1:]:
        rows.append({
            "workload": f"scaling {scale_nodes} x {SLEEP_SECONDS * 1e3:.0f} ms nodes (Send) on {n} workers "
                        f"({scale_s[n]:.2f} s vs {scale_s[1]:.2f} s on 1): speedup; reference = ideal {n}x",
            "lgdist": scale_s[1] / scale_s[n], "reference": float(n), "unit": "x",
            "target": 0.8, "higher_is_better": True,
        })
    workload = f"throughput {concurrent} threads x 5 node steps, {flags}"
    rows.append({"workload": f"{workload}: threads completed (reference = the goal, {THROUGHPUT_GOAL:g}/s at 200 threads)",
                 "lgdist": tp["threads_per_second"], "reference": THROUGHPUT_GOAL, "unit": "threads/s",
                 "target": 1.0, "higher_is_better": True})  # fmt: skip
    for q in ("p50", "p99"):
        rows.append({"workload": f"{workload}: {q} superstep latency (queueing included)", "lgdist": tp[q] * 1e3,
                     "reference": NAN, "unit": "ms", "target": None})
    return rows
