"""The fault suite's clusters, fault injection helpers and results table.

Two clusters of real ``lgdist worker -P prefork -c 1`` processes, built with
the cluster machinery the distributed suite uses too
(``tests/cluster_machinery.py``: the locked Redis database, the per-session
Postgres schema, per-session queue names, process spawning and ping):

* ``faults`` (session): three workers plus ``lgdist beat`` (the sweeper) on
  the machine's Redis and Postgres, with a node time limit, a short stall
  time and the test-only crash hook armed through a file.
* ``restart_cluster`` (module, in ``test_service_restarts.py``): two
  workers plus beat on a Redis server and a Postgres cluster of their own,
  started here, so that restarting them disturbs no other test session.
* ``chaos_cluster`` (module, in ``test_chaos.py``): three workers plus beat
  configured like ``faults``, on private Redis and Postgres servers too, so
  that the seeded schedule can restart them.

Every test compares each thread it faulted with a fault-free run of the same
graph and input on the local runtime, asserts ``check_thread`` finds no
problem, and records a row of ``RESULTS.md`` (written only when the whole
suite ran).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import kombu.exceptions
import pytest
import redis

from cluster_machinery import GRAPHS, spawn, wait_until_pinged
from faultlib import (
    _ROWS,
    FAULT_GRAPHS,
    FAULT_NAMES,
    FAULTS,
    HERE,
    RESTART_STALL_SECONDS,
    STALL_SECONDS,
    STEPS,
    TASK_TIME_LIMIT,
    TICK_SECONDS,
    FaultCluster,
    FaultRow,
    Inline,
    PrivatePostgres,
    PrivateRedis,
    RestartCluster,
    process_env,
    reference_env,
    dist,
    start_beat,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(name): the RESULTS.md row a fault test measures")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("fault")
    if marker is None or HERE not in Path(str(item.path)).parents:
        return
    row = _ROWS.setdefault(marker.args[0], FaultRow())
    if report.failed:
        row.outcome = "FAILED"
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for proc in _PROCS:
            report.sections.append((f"{proc.name} log ({report.when})", proc.log_since(offsets.get(id(proc), 0))))
    elif report.when == "call" and report.skipped:
        row.outcome = "skipped"


_LOG_OFFSETS = pytest.StashKey[dict]()
_PROCS: list = []  # every worker / beat process of both clusters, for failure reports


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_OFFSETS] = {id(p): p.log_size() for p in _PROCS}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("LGDIST_WRITE_FAULT_RESULTS"):
        return  # a test run, not a measurement: leave the committed file alone
    if set(FAULT_NAMES) - set(_ROWS):
        return  # not the whole suite: leave RESULTS.md as it is
    lines = [
        "# Fault-injection results",
        "",
        "Written by `make fault-results` (`pytest tests/faults` with LGDIST_WRITE_FAULT_RESULTS=1)",
        "when the whole suite runs (other runs leave this file alone); rows in a fixed order.",
        "",
        "Every faulted thread was compared with a fault-free run of the same graph and input on the",
        "local runtime: *steps lost* / *steps duplicated* count checkpoints missing from / extra in",
        "its history, and it passed `lgdist check` (`check_thread`). *Time to recover* runs from the",
        "moment the fault was injected until the thread made progress again (a killed node running",
        "again, or the next checkpoint stored), or for a failing node until its run ended in its",
        "error state, or for a bad message until its rejection came back; *no stall* means the",
        "fault never held a run up. Two values are the range over the row's measurements.",
        "",
        f"Cluster: 3 workers `-P prefork -c 1` plus `lgdist beat` on the machine's Redis and Postgres,"
        f" sweeper every {STALL_SECONDS / 2:g} s for threads stalled {STALL_SECONDS:g} s,"
        f" LGDIST_TASK_TIME_LIMIT={TASK_TIME_LIMIT:g} s (hard limit +5 s); the restarts ran on 2 workers"
        f" with a private Redis and Postgres, sweeper every {RESTART_STALL_SECONDS / 2:g} s for"
        f" {RESTART_STALL_SECONDS:g} s stalls; the chaos schedule on 3 workers configured as above,"
        f" with a private Redis and Postgres it restarts.",
        "",
        "| fault | runs | steps lost | steps duplicated | time to recover (s) | recovered by | result |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, title in FAULTS:
        row = _ROWS[name]
        if row.recover:
            low, high = (f"{v:.1f}" if v >= 0.1 else "<0.1" for v in (min(row.recover), max(row.recover)))
            recover = low if low == high else f"{low}-{high}"
        else:
            recover = "no stall"
        lines.append(
            f"| {title} | {row.runs} | {row.lost} | {row.duplicated} | {recover} | {row.recovered_by or '-'} | {row.outcome} |"
        )
    # The "## Chaos" section records `make chaos` runs by hand: kept as it is.
    previous = (HERE / "RESULTS.md").read_text() if (HERE / "RESULTS.md").exists() else ""
    chaos = previous[previous.index("\n## Chaos"):] if "\n## Chaos" in previous else ""
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n" + chaos)


@pytest.fixture(scope="session")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    redis_url = dist.prepare_services()
    tmp = tmp_path_factory.mktemp("lgdist-faults")
    lgdist_env = dist.session_env(tmp, redis_url)
    lgdist_env.update(
        LGDIST_GRAPHS=lgdist_env["LGDIST_GRAPHS"] + "," + ",".join(f"{k}={v}" for k, v in FAULT_GRAPHS.items()),
        LGDIST_TASK_TIME_LIMIT=str(TASK_TIME_LIMIT),
        LGDIST_STALL_SECONDS=str(STALL_SECONDS),
        LGDIST_TEST_CRASH_FILE=str(tmp / "crash-point"),
        LGDIST_FAULT_PAUSE_FILE=str(tmp / "pausing-node.pid"),
        LGDIST_FAULT_EXECUTIONS=str(tmp / "chaos-executions.log"),
        LGDIST_FAULT_TICK_SECONDS=str(TICK_SECONDS),
        LGDIST_EXAMPLE_STEPS=str(STEPS),
    )
    env = process_env(lgdist_env)
    mp = pytest.MonkeyPatch()
    client = None
    procs: list = []
    from lgdist.settings import get_settings

    try:
        for key in [k for k in os.environ if k.startswith("LGDIST_")]:
            mp.delenv(key)
        for key, value in lgdist_env.items():
            mp.setenv(key, value)
        reference_env(mp)
        mp.delenv("LGDIST_TEST_CRASH_FILE")  # only workers may crash
        get_settings.cache_clear()
        from lgdist.client import Client

        client = Client(get_settings())
        client.backend.runs.setup()
        workers = [dist.start_worker(name, env, tmp) for name in ("f1", "f2", "f3")]
        dist.workers.extend(workers)
        procs.extend(workers)
        beat = start_beat("beat", env, tmp)
        procs.append(beat)
        _PROCS.extend(procs)
        wait_until_pinged(client.app, workers)
        cluster = FaultCluster(env=lgdist_env, process_env=env, tmp=tmp, workers=workers, client=client, machinery=dist)
        cluster.beat = beat
        yield cluster
    finally:
        for proc in procs:
            proc.stop()
            if proc in _PROCS:
                _PROCS.remove(proc)
        dist.tear_down(client, mp, redis_url)


@contextlib.contextmanager
def _inline_workers(faults: FaultCluster, suffix: str, names: tuple[str, ...], extra_env: dict[str, str]) -> Iterator[Inline]:
    from lgdist.client import Client

    queue = f"{faults.env['LGDIST_DEFAULT_QUEUE']}-{suffix}"
    env = {k: v for k, v in faults.process_env.items() if k != "LGDIST_TASK_TIME_LIMIT"}
    env.update(extra_env, LGDIST_DEFAULT_QUEUE=queue)
    settings = faults.client.backend.settings.model_copy(update={"default_queue": queue, "task_time_limit": None})
    client = Client(settings)
    workers = [dist.start_worker(name, env, faults.tmp) for name in names]
    _PROCS.extend(workers)
    try:
        wait_until_pinged(client.app, workers)
        yield Inline(faults, client, workers)
    finally:
        for worker in workers:
            worker.stop()
            _PROCS.remove(worker)
        client.backend.saver.engine.dispose()


@pytest.fixture(scope="module")
def inline(faults: FaultCluster) -> Iterator[Inline]:
    """Workers that run one-task steps inline, with the default slice budget."""
    with _inline_workers(faults, "inline", ("i1", "i2"), {}) as workers:
        yield workers


@pytest.fixture(scope="module")
def long_slices(faults: FaultCluster) -> Iterator[Inline]:
    """Workers whose slices end only at ``LGDIST_INLINE_STEPS`` (8 steps)
    or at the run's end: their node time budget is far above the ticker's."""
    with _inline_workers(faults, "slices", ("s1", "s2"), {"LGDIST_INLINE_MS": "60000"}) as workers:
        yield workers


@pytest.fixture
def celery_app(faults: FaultCluster) -> Any:
    """A plain Celery app configured like any producer would be (overrides
    pytest-celery's fixture of the same name)."""
    return faults.app


@pytest.fixture
def replace_worker(faults: FaultCluster) -> Callable[[Any], Any]:
    """Start a fresh worker in place of a killed one, keeping the failure
    report's process list current."""

    def replace(dead: Any) -> Any:
        new = faults.replace_worker(dead)
        _PROCS[_PROCS.index(dead)] = new
        return new

    return replace


@contextlib.contextmanager
def _private_cluster(tmp: Path, names: tuple[str, ...], queue: str, stall_seconds: float, extra_env: dict[str, str]) -> Iterator[RestartCluster]:
    """Workers ``names`` plus beat on a Redis server and a Postgres cluster
    of their own (started here, destroyed after), which a test may restart."""
    from lgdist.client import Client
    from lgdist.settings import Settings

    redis_server = PrivateRedis(tmp)
    postgres = PrivatePostgres()
    procs: list = []
    client = None
    cluster = None
    try:
        redis_server.start()
        postgres.init()
        postgres.start()
        graphs = {**GRAPHS, **FAULT_GRAPHS}
        lgdist_env = {
            "LGDIST_HOME": str(tmp / "home"),
            "LGDIST_BROKER_URL": redis_server.url,
            "LGDIST_DATABASE_URL": postgres.url,
            "LGDIST_GRAPHS": ",".join(f"{k}={v}" for k, v in graphs.items()),
            "LGDIST_DEFAULT_QUEUE": f"{queue}-{dist.session}",
            "LGDIST_STALL_SECONDS": str(stall_seconds),
            "LGDIST_EXAMPLE_PID_FILE": str(tmp / "slow-node.pid"),
            "LGDIST_TEST_CRASH_FILE": str(tmp / "crash-point"),
            **extra_env,
        }
        env = process_env(lgdist_env)
        settings = Settings(
            home=tmp / "home", broker_url=redis_server.url, database_url=postgres.url,
            graphs=lgdist_env["LGDIST_GRAPHS"], default_queue=lgdist_env["LGDIST_DEFAULT_QUEUE"],
            stall_seconds=stall_seconds,
        )  # fmt: skip
        client = Client(settings)
        client.backend.runs.setup()
        workers = [spawn(n, ["worker", "-P", "prefork", "-c", "1", "-n", f"{n}-{dist.session}@%h", "--loglevel=INFO"], env, tmp,
                         f"{n}-{dist.session}@{socket.gethostname()}") for n in names]  # fmt: skip
        procs.extend(workers)
        procs.append(start_beat(f"{queue}-beat", env, tmp))
        _PROCS.extend(procs)
        wait_until_pinged(client.app, workers)
        cluster = FaultCluster(env=lgdist_env, process_env=env, tmp=tmp, workers=workers, client=client, machinery=dist)
        cluster.stall_seconds = stall_seconds
        cluster.beat = procs[-1]
        yield RestartCluster(redis_server, postgres, cluster)
    finally:
        for proc in [*procs, *(cluster.workers if cluster is not None else [])]:
            proc.stop()
            if proc in _PROCS:
                _PROCS.remove(proc)
        if client is not None:
            client.backend.saver.engine.dispose()
        redis_server.stop()
        postgres.destroy()


@pytest.fixture(scope="module")
def restart_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartCluster]:
    tmp = tmp_path_factory.mktemp("lgdist-restarts")
    with _private_cluster(tmp, ("r1", "r2"), "lgdist-restarts", RESTART_STALL_SECONDS, {"LGDIST_FAULT_TICK_SECONDS": "0.1"}) as rc:
        yield rc


@pytest.fixture(scope="module")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartCluster]:
    """The chaos schedule's cluster: three workers plus beat, configured like
    ``faults``, on private Redis and Postgres servers the schedule restarts."""
    tmp = tmp_path_factory.mktemp("lgdist-chaos")
    extra = {
        "LGDIST_TASK_TIME_LIMIT": str(TASK_TIME_LIMIT),
        "LGDIST_FAULT_EXECUTIONS": str(tmp / "chaos-executions.log"),
        "LGDIST_FAULT_TICK_SECONDS": str(TICK_SECONDS),
        "LGDIST_EXAMPLE_STEPS": str(STEPS),
    }
    mp = pytest.MonkeyPatch()
    try:
        reference_env(mp)  # this process computes fault-free references
        with _private_cluster(tmp, ("c1", "c2", "c3"), "lgdist-chaos", STALL_SECONDS, extra) as rc:
            yield rc
    finally:
        mp.undo()


@pytest.fixture
def replace_chaos_worker(chaos_cluster: RestartCluster) -> Callable[[Any], Any]:
    """Start a fresh worker in place of a killed one of the chaos cluster."""
    cluster = chaos_cluster.cluster

    def replace(dead: Any) -> Any:
        dead.stop()
        new = dist.start_worker(f"{dead.name}r", cluster.process_env, cluster.tmp)
        cluster.workers[cluster.workers.index(dead)] = new
        _PROCS[_PROCS.index(dead)] = new
        deadline = time.monotonic() + 60
        while True:
            try:
                wait_until_pinged(cluster.app, [new])
                return new
            except (redis.exceptions.ConnectionError, kombu.exceptions.OperationalError):
                # A pooled broker connection from before a Redis restart.
                if time.monotonic() > deadline:
                    raise

    return replace
