"""Shared pieces of the fault suite: the distributed suite's cluster
machinery, the fault-free references, the results table, the private
Redis and Postgres servers the restart tests restart. Fixtures and hooks
that use them live in ``conftest.py``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

HERE = Path(__file__).resolve().parent
for _folder in (HERE, HERE.parent):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from cluster_machinery import GRAPHS, SLOW_AT, Cluster, Machinery, spawn, with_root_on_path  # noqa: E402 (needs the path above)

# The fault suite's own session id, queues, schema and Redis database.
dist = Machinery()

# The sweeper (beat) runs every STALL_SECONDS / 2 and repairs threads with
# no progress for STALL_SECONDS. A running node's heartbeat keeps its thread
# fresh, so only a step whose messages were lost ever looks stalled.
STALL_SECONDS = 6.0
TASK_TIME_LIMIT = 3.0
TICK_SECONDS = 0.05
FAULT_GRAPHS = {
    "ticker": "fault_graphs:ticker",
    "hang": "fault_graphs:hang",
    "stubborn-hang": "fault_graphs:stubborn_hang",
    "retried-hang": "fault_graphs:retried_hang",
    "flaky": "fault_graphs:flaky",
    "pausing": "fault_graphs:pausing",
    "chaos": "fault_graphs:chaos",
    "slow-ask": "fault_graphs:slow_ask",
    "wide": "fault_graphs:wide",
}
STEPS = 5  # LGDIST_EXAMPLE_STEPS


# -- results table -------------------------------------------------------------------------

# One row per fault, in this order; RESULTS.md is written when every row ran.
FAULTS = [
    ("pool-child-sigkill", "worker pool process SIGKILLed mid-node"),
    ("worker-sigkill", "whole worker (main + pool) SIGKILLed mid-node"),
    ("finish-step-crash", "worker dies in finish_step after storing the checkpoint"),
    ("start-crash", "worker dies in lgdist.start after storing the input"),
    ("slice-crash", "worker dies mid-slice under durability=\"async\", before storing the slice"),
    ("slice-stored-crash", "worker dies (or meets an outage) under durability=\"async\" after storing its slice, before streaming it"),
    ("run-node-twice", "the same run_node delivered twice, concurrently"),
    ("finish-step-twice", "finish_step executed twice, concurrently"),
    ("racing-resumes", "two resumes racing on one interrupted thread"),
    ("redis-restart", "Redis restarted mid-run (all queues, results, streams lost)"),
    ("postgres-restart", "Postgres restarted mid-run (down ~2 s)"),
    ("stream-vanished", "a run's Redis stream deleted before its reader got the end"),
    ("stream-publisher-stalled", "a worker frozen 15 s after storing a run's end, before streaming it; the caller waits with RemoteGraph.invoke or the server's runs.wait"),
    ("node-raises", "a node raises"),
    ("node-hangs", "a node hangs past LGDIST_TASK_TIME_LIMIT"),
    ("node-retried", "a node fails twice, RetryPolicy retries it, it succeeds"),
    ("malformed-messages", "malformed / oversized / wrong-version messages to every task"),
    ("unregistered-graph", "a start or resume naming an unregistered graph"),
    ("resume-not-interrupted", "a resume for a thread that is not interrupted"),
    ("pickle-message", "a pickle-serialized lgdist.resume"),
    ("fifty-threads", "50 threads on 3 workers, one worker SIGKILLed and restarted"),
    ("submit-broker-down", "a submit while the broker is down"),
    ("chaos", "seeded chaos: SIGKILLed workers and pool children, a frozen worker, Redis and Postgres restarts, duplicate resumes, cancels"),
    ("worker-frozen", "a worker frozen (SIGSTOP) mid-node past the stall time and the time limit, then thawed"),
]
FAULT_NAMES = [f for f, _ in FAULTS]


@dataclass
class FaultRow:
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    recover: list = field(default_factory=list)
    recovered_by: str = ""
    outcome: str = "passed"


_ROWS: dict[str, FaultRow] = {}


def record(fault: str, *, runs: int, lost: int = 0, duplicated: int = 0, recover: Optional[float] = None, by: str = "") -> None:
    """Add a measurement to the fault's row of RESULTS.md. ``recover`` is
    None for a fault that never stopped a run (shown as "no stall")."""
    assert fault in FAULT_NAMES, fault
    row = _ROWS.setdefault(fault, FaultRow())
    row.runs += runs
    row.lost += lost
    row.duplicated += duplicated
    if recover is not None:
        row.recover.append(recover)
    if by and by not in row.recovered_by:
        row.recovered_by = f"{row.recovered_by}; {by}" if row.recovered_by else by


# -- history accounting ------------------------------------------------------------------------


def snapshot_key(snap: Any) -> tuple:
    """What must match between a faulted thread and the fault-free run."""
    return (snap.metadata["step"], snap.metadata["source"], snap.values, snap.next)


def fault_free_history(graph: str, inputs: list[Any]) -> list[tuple]:
    """The history (oldest first) of ``graph`` run on the local runtime with
    ``inputs`` one after another (a ``Command`` resumes); a node's error
    ends that input, as it ends a remote run."""
    from lgdist.checkpoint.memory import InMemorySaver
    from lgdist.distributed.registry import GraphRegistry
    from lgdist.graph.compiled import CompiledStateGraph

    spec = {**GRAPHS, **FAULT_GRAPHS}[graph]
    compiled = GraphRegistry({graph: spec}).get(graph)
    local = CompiledStateGraph(builder=compiled.builder, spec=compiled.spec, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": f"reference-{uuid.uuid4().hex}"}}
    for value in inputs:
        try:
            local.invoke(value, config)
        except Exception:  # noqa: BLE001 - a failing node is part of some references
            pass
    return [snapshot_key(s) for s in reversed(list(local.get_state_history(config)))]


def _fault_free_graph(graph: str) -> Any:
    """``graph`` compiled for a fault-free local run."""
    from lgdist.distributed.registry import GraphRegistry

    return GraphRegistry({graph: {**GRAPHS, **FAULT_GRAPHS}[graph]}).get(graph)


def fault_free_values(graph: str, value: Any) -> list:
    """The "values" chunks a fault-free local run of ``graph`` streams."""
    return list(_fault_free_graph(graph).stream(value, stream_mode="values"))


def fault_free_output(graph: str, value: Any) -> Any:
    """What ``invoke`` of a fault-free local run of ``graph`` returns."""
    return _fault_free_graph(graph).invoke(value)


def step_accounting(actual: list[tuple], expected: list[tuple]) -> tuple[int, int]:
    """(steps lost, steps duplicated) of a history against the reference."""
    have = Counter(k[0] for k in actual)
    want = Counter(k[0] for k in expected)
    return sum((want - have).values()), sum((have - want).values())


# -- the fault cluster ------------------------------------------------------------------------


class FaultCluster(Cluster):
    """The distributed suite's cluster, plus the sweeper and fault helpers."""

    beat: Any = None
    stall_seconds: float = STALL_SECONDS

    @property
    def crash_file(self) -> Path:
        return Path(self.env["LGDIST_TEST_CRASH_FILE"])

    def arm_crash(
        self, point: str, thread_id: str, step: int, *, outage: bool = False, stall: Optional[float] = None
    ) -> None:
        """Make the first worker that reaches ``point`` for this thread and
        step exit on the spot, or with ``outage`` raise a transient error
        there, or with ``stall`` sleep that many seconds there and go on
        (see lgdist/distributed/crashpoints.py)."""
        tmp = self.crash_file.with_suffix(".tmp")
        how = " outage" if outage else f" stall {stall}" if stall is not None else ""
        tmp.write_text(f"{point} {thread_id} {step}{how}")
        os.replace(tmp, self.crash_file)

    def history_keys(self, graph: str, thread_id: str) -> list[tuple]:
        return [snapshot_key(s) for s in self.history(graph, thread_id)]

    def checkpoint_count(self, thread_id: str) -> int:
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        return sum(1 for _ in self.client.backend.saver.list(config))

    def wait_checkpoints(self, thread_id: str, count: int, timeout: float = 60.0) -> float:
        """Block until the thread has ``count`` checkpoints; returns when."""
        self.wait_for(lambda: self.checkpoint_count(thread_id) >= count, timeout=timeout, what=f"{count} checkpoints")
        return time.monotonic()

    def assert_fault_free(self, graph: str, thread_id: str, inputs: list[Any]) -> tuple[int, int]:
        """The thread's history equals the fault-free run's and passes the
        checker. Returns (steps lost, steps duplicated) for the table."""
        from lgdist.distributed.check import check_thread

        actual = self.history_keys(graph, thread_id)
        expected = fault_free_history(graph, inputs)
        accounting = step_accounting(actual, expected)
        assert check_thread(self.client.backend, thread_id) == []
        assert actual == expected
        return accounting

    def stream_ended(self, run_id: str) -> bool:
        """Whether the run's stream holds its end event (not one a reader
        makes up from the run record when the stream lost it)."""
        from lgdist import serde

        bus = self.client.backend.bus
        return any(serde.loads(e[b"e"])[0] == "__end__" for _, e in bus.redis.xrange(bus._key(run_id)))

    def worker_of(self, pid: int) -> Any:
        (owner,) = [w for w in self.workers if w.proc.pid == parent_pid(pid)]
        return owner

    def all_logs(self) -> str:
        return "".join(w.log_since() for w in self.workers)

    def swept(self, run_id: str) -> bool:
        """Whether the sweeper had to repair the run (any worker's log)."""
        return any("sweep:" in line and run_id in line for line in self.all_logs().splitlines())


class Inline:
    """Two more workers beside the fault cluster, on a queue of their own
    without a node time limit (which turns inline steps off), so that a
    worker runs one-task steps inline, a slice; with their own client."""

    def __init__(self, faults: Any, client: Any, workers: list) -> None:
        self.faults, self.client, self.workers = faults, client, workers

    def logs(self) -> str:
        return "".join(w.log_since() for w in self.workers)

    def swept(self, run_id: str) -> bool:
        return self.faults.swept(run_id) or any("sweep:" in line and run_id in line for line in self.logs().splitlines())


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_env(lgdist_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGDIST_")}
    env.update(lgdist_env, PYTHONUNBUFFERED="1", LGDIST_EXAMPLE_ALLOW_CRASH="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), with_root_on_path(env.get("PYTHONPATH"))])
    return env


def reference_env(mp: pytest.MonkeyPatch) -> None:
    """This process runs the fault-free references: no sleeping, and no
    writing the slow node's pid file the tests watch."""
    mp.setenv("LGDIST_EXAMPLE_SLOW_SECONDS", "0")
    mp.setenv("LGDIST_EXAMPLE_WORK_SECONDS", "0")
    mp.setenv("LGDIST_FAULT_TICK_SECONDS", "0")
    mp.setenv("LGDIST_FAULT_HANG_SECONDS", "0")
    mp.setenv("LGDIST_EXAMPLE_STEPS", str(STEPS))
    mp.setenv("LGDIST_EXAMPLE_SLOW_AT", str(SLOW_AT))
    mp.delenv("LGDIST_EXAMPLE_PID_FILE", raising=False)
    mp.delenv("LGDIST_FAULT_PAUSE_FILE", raising=False)
    mp.delenv("LGDIST_FAULT_EXECUTIONS", raising=False)


def start_beat(name: str, env: dict[str, str], tmp: Path) -> Any:
    return spawn(name, ["beat", "-s", str(tmp / f"{name}-schedule"), "--loglevel=INFO", "--max-interval", "1"], env, tmp)


# -- private services for the restart tests -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)
        time.sleep(0.05)


class PrivateRedis:
    """A throwaway ``redis-server`` (no persistence, like the real one):
    restarting it loses every queue, chord counter, result and stream."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; the restart tests need it", pytrace=False)
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Optional[subprocess.Popen] = None

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.exceptions.RedisError:
            return False

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            start_new_session=True,
        )  # fmt: skip
        _wait(self._ping, 10, "the private Redis to start")

    def stop(self) -> None:
        """``SHUTDOWN NOSAVE``, as the brief's restart command does."""
        if self.proc is None:
            return
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True, timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


class PrivatePostgres:
    """A throwaway Postgres cluster (initdb in a temporary directory, trust
    auth), run as the ``postgres`` user when we are root."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
        if initdb is None:
            pytest.fail("Postgres server binaries (initdb) are not installed; the restart tests need them", pytrace=False)
        self.bindir = Path(initdb).resolve().parent
        self.dir = Path(tempfile.mkdtemp(prefix="lgdist-faults-pg-"))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}", pytrace=False)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "postgres.log"), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except BaseException:  # noqa: BLE001 - already stopped
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class RestartCluster:
    """Two workers and beat on private Redis and Postgres."""

    redis: PrivateRedis
    postgres: PrivatePostgres
    cluster: FaultCluster


RESTART_STALL_SECONDS = 4.0


