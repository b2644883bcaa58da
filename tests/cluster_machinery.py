"""The cluster machinery of the suites that run real ``lgdist worker``
processes (distributed, faults, server): a plain module their conftests
import. Each suite makes its own :class:`Machinery` - its own session id,
queue names and Postgres schema, and a Redis database of its own (the
configured one or one of the next two, claimed with a lock key) - so a
worker of one suite never takes another's tasks.

Isolation: the broker is a dedicated Redis database (``redis://…/11`` unless
``LGDIST_TEST_DIST_REDIS_URL`` says otherwise) emptied when the suite claims
it; when another session is running on 11 at the same time it takes 12 or
13 instead, since emptying a database under a running session would drop its
chord counters. The queue names carry the session id, so a stray worker left
over from somewhere else can never take this session's tasks. The checkpoint
and run tables live in a per-session Postgres schema, created fresh and
dropped at the end.

Redis or Postgres down is a failure, never a skip. When a test fails, the
part of each worker's log written during that test is attached to the
report (:meth:`Machinery.record_log_offsets`, :meth:`Machinery.attach_worker_logs`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import httpx
import pytest

REDIS_URL = os.environ.get("LGDIST_TEST_DIST_REDIS_URL", "redis://127.0.0.1:6379/11")
POSTGRES_URL = os.environ.get("LGDIST_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
GRAPHS = {
    "support-agent": "lgdist.examples.support_agent:graph",
    "fanout": "workers.examples:fanout",
    "mixed-fanout": "workers.examples:mixed_fanout",
    "approval": "workers.examples:approval",
    "counter": "workers.examples:counter",
    "slow": "workers.examples:slow",
    "failing": "workers.examples:failing",
    "schemas": "workers.examples:schemas",
    "writer": "workers.examples:writer",
    "poison": "workers.examples:poison",
    "poison-later": "workers.examples:poison_later",
    "deferred": "workers.examples:deferred",
    "cached": "workers.examples:cached",
    "memories": "workers.memories:graph",
    "nested": "workers.nested:graph",
    "greeter": "workers.greeter:graph",
    "chat-events": "workers.chat_events:graph",
    # Graphs of the differential scenarios, for the remote parity suite.
    **{
        f"parity-{name.replace('_', '-')}": f"workers.parity:{name}"
        for name in ("join", "map_reduce", "command_goto", "dataclass_state", "pydantic_state",
                     "messages", "subgraph_interrupt", "two_interrupts", "breakpoint_after")
    },  # fmt: skip
}
# Seconds the fan-out's "work" node and the slow graph's slow step sleep.
WORK_SECONDS = 0.3
SLOW_SECONDS = 2.0
SLOW_AT = 2
WORKER_NAMES = ("w1", "w2")
LGDIST_BIN = Path(sys.executable).with_name("lgdist")
# The repository root, where the (not installed) graphs of workers/ live.
ROOT = Path(__file__).resolve().parents[1]

_LOCK_KEY = "lgdist-test-session"
_LOCK_SECONDS = 900  # outlives any session; a crashed one frees its database later


def with_root_on_path(pythonpath: Optional[str]) -> str:
    """``PYTHONPATH`` with the repository root first: a process this suite
    starts (``lgdist worker``, ``lgdist sweep``, ...) imports the graphs of
    ``workers/``, which are not installed."""
    return os.pathsep.join(filter(None, [str(ROOT), pythonpath]))


def admin_sql(statement: str) -> None:
    import sqlalchemy as sa

    url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@dataclass
class ServiceProcess:
    """One ``lgdist`` subprocess (a worker, Flower) and its log file."""

    name: str
    nodename: str
    proc: subprocess.Popen
    log_path: Path

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int = 0, max_chars: int = 20_000) -> str:
        if not self.log_path.exists():
            return "(no log)"
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
        return text if len(text) <= max_chars else "…\n" + text[-max_chars:]

    def stop(self) -> None:
        """TERM, then KILL, the process's own group (it and its pool
        children), which ``spawn`` created with ``start_new_session``."""
        try:
            if self.proc.poll() is not None:
                # The main process is gone; pool children it left behind are not.
                os.killpg(self.proc.pid, signal.SIGKILL)
                return
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, nodename: str = "") -> ServiceProcess:
    """Run ``lgdist <args>`` in its own process group, logging to a file;
    the repository root is on its path (for the graphs of ``workers/``)."""
    log_path = log_dir / f"{name}.log"
    env = {**env, "PYTHONPATH": with_root_on_path(env.get("PYTHONPATH"))}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(LGDIST_BIN), *args],
            env=env,
            cwd=str(log_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServiceProcess(name, nodename or name, proc, log_path)


def wait_until_pinged(app: Any, workers: list[ServiceProcess], timeout: float = 60.0) -> None:
    """Block until every worker answers ``app.control.ping``."""
    deadline = time.monotonic() + timeout
    waiting = {w.nodename for w in workers}
    while waiting:
        for w in workers:
            if w.proc.poll() is not None:
                pytest.fail(
                    f"worker {w.name} exited with {w.proc.returncode} before answering ping:\n{w.log_since()}",
                    pytrace=False,
                )
        replies = app.control.ping(destination=sorted(waiting), timeout=1.0) or []
        for reply in replies:
            waiting -= set(reply)
        if waiting and time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name} ---\n{w.log_since()}" for w in workers)
            pytest.fail(f"workers {sorted(waiting)} did not answer ping within {timeout}s:\n{logs}", pytrace=False)


@dataclass
class Cluster:
    """The session's workers plus a client configured for them."""

    env: dict[str, str]  # the LGDIST_* settings
    process_env: dict[str, str]  # the whole environment of child processes
    tmp: Path
    workers: list[ServiceProcess]
    client: Any
    machinery: "Machinery"
    pid_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pid_file = Path(self.env["LGDIST_EXAMPLE_PID_FILE"])

    @property
    def app(self) -> Any:
        return self.client.app

    def spawn(self, name: str, args: list[str]) -> ServiceProcess:
        """Another ``lgdist`` process (e.g. Flower) with the workers' settings;
        the caller stops it."""
        return spawn(name, args, self.process_env, self.tmp)

    def replace_worker(self, dead: ServiceProcess) -> ServiceProcess:
        """Start a fresh worker in place of one a test killed."""
        dead.stop()
        new = self.machinery.start_worker(f"{dead.name}r", self.process_env, self.tmp)
        self.workers[self.workers.index(dead)] = new
        if dead in self.machinery.workers:
            self.machinery.workers[self.machinery.workers.index(dead)] = new
        wait_until_pinged(self.app, [new])
        return new

    def thread_id(self, prefix: str = "t") -> str:
        return f"{prefix}-{self.machinery.session}-{uuid.uuid4().hex[:10]}"

    def worker_pids(self) -> set[int]:
        return {w.proc.pid for w in self.workers}

    def wait_run(self, run_id: str, timeout: float = 30.0) -> dict:
        return self.client.wait(run_id, timeout=timeout, poll=0.05)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        return wait_for(predicate, timeout, what)

    def thread_status(self, thread_id: str) -> Optional[str]:
        row = self.client.backend.runs.get_thread(thread_id)
        return row["status"] if row else None

    def history(self, graph: str, thread_id: str) -> list:
        """The thread's checkpoints, oldest first."""
        return list(reversed(self.client.get_state_history(graph, thread_id)))

    def assert_thread_sound(self, thread_id: str) -> None:
        """``lgdist check``'s invariants: one chain, no step stored twice,
        every task of a finished step has one outcome, status agrees."""
        from lgdist.distributed.check import check_thread

        assert check_thread(self.client.backend, thread_id) == []

    def assert_linear_history(self, history: list) -> None:
        """One parent chain with strictly consecutive steps, starting at -1:
        no lost, duplicated or forked step."""
        steps = [s.metadata["step"] for s in history]
        assert steps == list(range(-1, len(history) - 1)), f"steps not contiguous: {steps}"
        ids = [s.config["configurable"]["checkpoint_id"] for s in history]
        assert len(set(ids)) == len(ids), f"duplicate checkpoint ids: {ids}"
        assert history[0].parent_config is None
        for parent, child in zip(history, history[1:]):
            assert child.parent_config is not None
            assert child.parent_config["configurable"]["checkpoint_id"] == parent.config["configurable"]["checkpoint_id"]



def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (and return
    that); TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)

class Machinery:
    """One suite's share of the machine: a session id, the queue names and
    Postgres schema named after it, the Redis database it claims, and the
    worker processes it started (for failure reports)."""

    def __init__(self) -> None:
        self.session = uuid.uuid4().hex[:8]
        self.schema = f"lgdist_dist_{self.session}"
        self.database_url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{self.schema}"
        self.queue = f"lgdist-test-{self.session}"
        self.io_queue = f"lgdist-test-{self.session}-io"
        self.workers: list[ServiceProcess] = []
        self._log_offsets = pytest.StashKey[dict]()

    # -- services ------------------------------------------------------------------------
    def claim_redis_db(self, wait_seconds: float = 300.0) -> str:
        """The URL of a Redis database no other session is using, emptied: the
        configured one or one of the next two (bench/ uses /14), waiting for one
        to come free when all three are busy."""
        import redis

        base, _, first = REDIS_URL.rpartition("/")
        candidates = [f"{base}/{db}" for db in range(int(first or 0), int(first or 0) + 3)]
        deadline = time.monotonic() + wait_seconds
        while True:
            for url in candidates:
                try:
                    conn = redis.Redis.from_url(url, socket_connect_timeout=3)
                    claimed = conn.set(_LOCK_KEY, self.session, nx=True, ex=_LOCK_SECONDS)
                except Exception as exc:  # noqa: BLE001 - reported as the failure
                    pytest.fail(f"Redis at {url} is unreachable ({exc}); the distributed suite needs it", pytrace=False)
                if claimed:
                    # Not FLUSHDB: the lock key must stay, or a concurrent session
                    # could claim the database in between.
                    for key in conn.scan_iter(count=1000):
                        if key != _LOCK_KEY.encode():
                            conn.delete(key)
                    return url
            if time.monotonic() > deadline:
                pytest.fail(f"Redis databases {candidates} stayed claimed by other test sessions", pytrace=False)
            time.sleep(2)

    def release_redis_db(self, url: str) -> None:
        import redis

        conn = redis.Redis.from_url(url)
        if conn.get(_LOCK_KEY) == self.session.encode():
            conn.delete(_LOCK_KEY)

    def prepare_services(self) -> str:
        """Fail (not skip) the session when Redis or Postgres is unreachable;
        claim a broker database and create the session's schema. Returns the
        broker URL."""
        redis_url = self.claim_redis_db()
        try:
            admin_sql(f"CREATE SCHEMA {self.schema}")
        except Exception as exc:  # noqa: BLE001
            self.release_redis_db(redis_url)
            pytest.fail(f"Postgres at {POSTGRES_URL} is unreachable ({exc}); the distributed suite needs it", pytrace=False)
        return redis_url

    def drop_schema(self) -> None:
        if not os.environ.get("LGDIST_TEST_KEEP_SCHEMA"):
            admin_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def session_env(self, tmp: Path, redis_url: str) -> dict[str, str]:
        """The ``LGDIST_*`` environment shared by the workers and this process."""
        return {
            "LGDIST_HOME": str(tmp / "home"),
            "LGDIST_BROKER_URL": redis_url,
            "LGDIST_DATABASE_URL": self.database_url,
            "LGDIST_GRAPHS": ",".join(f"{k}={v}" for k, v in GRAPHS.items()),
            "LGDIST_DEFAULT_QUEUE": self.queue,
            # The support agent's tool node runs on its own queue: per-node routing.
            "LGDIST_NODE_QUEUES": f"action={self.io_queue}",
            # The memory store's semantic search, for the "memories" graph.
            "LGDIST_STORE_INDEX": "workers.memories:STORE_INDEX",
            "LGDIST_EXAMPLE_WORK_SECONDS": str(WORK_SECONDS),
            "LGDIST_EXAMPLE_SLOW_SECONDS": str(SLOW_SECONDS),
            "LGDIST_EXAMPLE_SLOW_AT": str(SLOW_AT),
            "LGDIST_EXAMPLE_STEPS": "5",
            "LGDIST_EXAMPLE_PID_FILE": str(tmp / "slow-node.pid"),
        }

    def start_worker(self, name: str, env: dict[str, str], log_dir: Path) -> ServiceProcess:
        nodename = f"{name}-{self.session}@{socket.gethostname()}"
        args = ["worker", "-P", "prefork", "-c", "1", "-n", nodename, "--loglevel=INFO"]
        return spawn(name, args, env, log_dir, nodename)

    # -- the cluster fixture -------------------------------------------------------------
    def cluster(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        """The body of a session fixture: two prefork workers (``-c 1`` each,
        separate processes) serving this session's queues, with this process's
        ``LGDIST_*`` settings pointing at them; terminated when the session ends."""
        redis_url = self.prepare_services()
        tmp = tmp_path_factory.mktemp("lgdist-cluster")
        lgdist_env = self.session_env(tmp, redis_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LGDIST_")}
        # Only worker processes may run the "poison" graph's self-killing node.
        env.update(lgdist_env, PYTHONUNBUFFERED="1", LGDIST_EXAMPLE_ALLOW_CRASH="1")
        env["PYTHONPATH"] = with_root_on_path(env.get("PYTHONPATH"))
        mp = pytest.MonkeyPatch()
        client = None
        from lgdist.settings import get_settings

        try:
            for key in [k for k in os.environ if k.startswith("LGDIST_")]:
                mp.delenv(key)
            for key, value in lgdist_env.items():
                mp.setenv(key, value)
            get_settings.cache_clear()
            from lgdist.client import Client

            client = Client(get_settings())
            client.backend.runs.setup()  # create the tables before workers race for them
            self.workers.extend(self.start_worker(name, env, tmp) for name in WORKER_NAMES)
            workers = list(self.workers)
            wait_until_pinged(client.app, workers)
            yield Cluster(env=lgdist_env, process_env=env, tmp=tmp, workers=workers, client=client, machinery=self)
        finally:
            self.tear_down(client, mp, redis_url)

    def tear_down(self, client: Any, mp: pytest.MonkeyPatch, redis_url: str) -> None:
        """End a cluster fixture: stop the workers, close the client's pool,
        restore the settings, drop the schema and free the Redis database."""
        from lgdist.settings import get_settings

        for w in self.workers:
            w.stop()
        self.workers.clear()
        if client is not None:
            client.backend.saver.engine.dispose()
        mp.undo()
        get_settings.cache_clear()
        self.drop_schema()
        self.release_redis_db(redis_url)

    # -- worker logs in failure reports --------------------------------------------------
    def record_log_offsets(self, item: pytest.Item) -> None:
        """Call from ``pytest_runtest_setup``: where each worker's log stands."""
        item.stash[self._log_offsets] = {w.name: w.log_size() for w in self.workers}

    def attach_worker_logs(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Call from ``pytest_runtest_makereport``: a failed test's report gets
        the part of each worker's log written since its setup."""
        if not report.failed:
            return
        offsets = item.stash.get(self._log_offsets, {})
        for w in self.workers:
            report.sections.append((f"worker {w.nodename} log ({report.when})", w.log_since(offsets.get(w.name, 0))))


# -- lgdist serve -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: Any  # the ServiceProcess running `lgdist serve`
    cluster: Any

    def thread_id(self, prefix: str = "api") -> str:
        return self.cluster.thread_id(prefix)


def wait_until_ok(url: str, process: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.proc.poll() is not None:
            pytest.fail(f"lgdist serve exited with {process.proc.returncode}:\n{process.log_since()}", pytrace=False)
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"lgdist serve did not answer /ok within {timeout}s:\n{process.log_since()}", pytrace=False)
        time.sleep(0.1)


def start_server(cluster: Any, name: str = "serve", extra_env: dict | None = None, host: str = "127.0.0.1") -> Server:
    port = free_port()
    env = {**cluster.process_env, **(extra_env or {})}
    process = spawn(name, ["serve", "--host", host, "--port", str(port)], env, cluster.tmp)
    url = f"http://127.0.0.1:{port}"
    wait_until_ok(url, process)
    return Server(url=url, process=process, cluster=cluster)
