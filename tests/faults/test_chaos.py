"""A seeded chaos schedule: many threads of a graph with a Send fan-out, a
join and an ``interrupt()`` answered by a resume, on 3 workers plus beat,
while the schedule SIGKILLs worker main processes (restarting them as a
supervisor would), SIGKILLs pool children, freezes a worker past the stall
time and thaws it, restarts Redis (every queue, chord counter, result and
stream lost) and Postgres (every connection cut, refused while it is down),
and sends every resume twice and cancels running runs (their threads are
then continued by a resume).

The cluster runs on a Redis server and a Postgres cluster of its own
(``chaos_cluster`` in conftest.py), so restarting them disturbs no other
test session. Every schedule restarts each of them at least once.

Every thread must end as the fault-free run does and pass ``lgdist check``;
node executions beyond one per task (side-effect duplicates) are counted
separately from state anomalies, which must be zero. The schedule is
reproducible from its seed: ``make chaos SEED=7 DURATION=120`` runs a long
one; ``make test`` runs a short one (``LGDIST_CHAOS_SEED`` /
``LGDIST_CHAOS_DURATION``)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import sqlalchemy.exc
from faultlib import STALL_SECONDS, record
from kombu.exceptions import OperationalError as BrokerError

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.distributed.check import check_thread
from lgdist.types import Command

SEED = int(os.environ.get("LGDIST_CHAOS_SEED", "20261130"))
DURATION = float(os.environ.get("LGDIST_CHAOS_DURATION", "25"))
THREADS = int(os.environ.get("LGDIST_CHAOS_THREADS", "30"))  # per wave
WAVE_SECONDS = 30.0  # a new wave of threads this often while faults go on

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(int(DURATION) + 400)]

FAULTS = ("kill-worker", "kill-pool-child", "freeze-worker", "cancel", "restart-redis", "restart-postgres")
RESTARTS = ("restart-redis", "restart-postgres")  # each at least once in every schedule
REDIS_DOWN_SECONDS = 1.0
POSTGRES_DOWN_SECONDS = 2.0
# What this process's client meets while a server restarts: retried on the next round.
TRANSIENT = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, redis.exceptions.ConnectionError, BrokerError)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _expected(topic: str) -> dict:
    import fault_graphs

    graph = fault_graphs.build_chaos().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": topic}}
    graph.invoke({"topic": topic}, config)
    graph.invoke(Command(resume="yes"), config)
    return graph.get_state(config).values


class Driver:
    """Moves each thread along: resume it (twice, same run id) when it waits
    at the interrupt, continue it after a cancel, until it succeeds.

    A Redis restart loses resume messages still in the broker (the run is
    created by the worker that takes the message): a resume sent before a
    Redis restart whose run never appeared is sent again, with the same run
    id, as a producer that checks its work would."""

    def __init__(self, faults, celery_app, threads: list[str]) -> None:
        self.faults = faults
        self.client = faults.client
        self.app = celery_app
        self.pending = set(threads)
        self.handled: set[str] = set()
        self.sent: dict[str, tuple[dict, float]] = {}  # thread -> (last resume's kwargs, when sent)
        self.duplicate_resumes = 0
        self.resent_after_redis_restart = 0
        self.transient_errors = 0
        self.redis_restarted_at = float("-inf")

    def step(self) -> None:
        try:
            self._step()
        except TRANSIENT:
            self.transient_errors += 1  # a server is restarting: next round

    def _send(self, thread_id: str, kwargs: dict) -> None:
        # Every resume message twice: idempotent per run id.
        self.app.send_task("lgdist.resume", kwargs=kwargs)
        self.app.send_task("lgdist.resume", kwargs=kwargs)
        self.sent[thread_id] = (kwargs, time.monotonic())

    def _step(self) -> None:
        for thread_id in sorted(self.pending):
            runs = self.client.runs(thread_id)
            if not runs:
                continue
            last = runs[0]
            status = last["status"]
            if status == "success":
                self.pending.discard(thread_id)
            elif status == "cancelled" and self.faults.thread_status(thread_id) == "idle":
                # Cancelled after its last step was stored: nothing is left to
                # run (the final values are checked against the fault-free run).
                self.pending.discard(thread_id)
            elif status in ("interrupted", "cancelled") and last["run_id"] not in self.handled:
                if self.faults.thread_status(thread_id) == "busy":
                    continue  # not released yet: next round
                kwargs = {"v": 1, "thread_id": thread_id, "run_id": f"r{len(self.handled) + 1}-{last['run_id'][:12]}"}
                if status == "interrupted":
                    kwargs["resume"] = "yes"
                self._send(thread_id, kwargs)
                self.handled.add(last["run_id"])
                self.duplicate_resumes += 1
            elif status in ("interrupted", "cancelled") and thread_id in self.sent:
                kwargs, sent_at = self.sent[thread_id]
                if sent_at < self.redis_restarted_at and self.client.backend.runs.get_run(kwargs["run_id"]) is None:
                    self._send(thread_id, kwargs)
                    self.resent_after_redis_restart += 1


@pytest.mark.fault("chaos")
def test_seeded_chaos(chaos_cluster, replace_chaos_worker):
    faults = chaos_cluster.cluster
    celery_app = faults.app
    replace_worker = replace_chaos_worker
    rng = random.Random(SEED)
    executions = Path(faults.env["LGDIST_FAULT_EXECUTIONS"])
    executions.unlink(missing_ok=True)
    client = faults.client
    threads: list[str] = []
    driver = Driver(faults, celery_app, [])

    def submit_wave() -> None:
        wave = [faults.thread_id(f"chaos{len(threads) + i:03d}") for i in range(THREADS)]
        for thread_id in wave:
            client.submit("chaos", {"topic": thread_id}, thread_id)
        threads.extend(wave)
        driver.pending.update(wave)

    submit_wave()
    next_wave = WAVE_SECONDS

    # The schedule: (at seconds, fault), drawn from the seed.
    drawn = [rng.choice(FAULTS) for _ in range(max(4, int(DURATION / 5)))]
    drawn += [r for r in RESTARTS if r not in drawn]
    schedule = sorted((rng.uniform(0, DURATION), fault) for fault in drawn)
    print(f"chaos seed {SEED}: schedule {[(round(at, 1), fault) for at, fault in schedule]}")
    done: Counter = Counter()
    started = time.monotonic()
    frozen: list = []
    while schedule or frozen:
        driver.step()
        now = time.monotonic() - started
        if now >= next_wave and schedule:
            submit_wave()  # a long schedule keeps faulting a busy cluster
            next_wave += WAVE_SECONDS
        for worker, until in list(frozen):
            if now >= until:
                os.killpg(worker.proc.pid, signal.SIGCONT)
                frozen.remove((worker, until))
        if schedule and now >= schedule[0][0]:
            _, fault = schedule.pop(0)
            live = [w for w in faults.workers if w.proc.poll() is None and all(w is not f for f, _ in frozen)]
            if fault == "kill-worker" and len(live) > 1:
                victim = rng.choice(live)
                os.killpg(victim.proc.pid, signal.SIGKILL)
                victim.proc.wait(timeout=10)
                replace_worker(victim)
            elif fault == "kill-pool-child" and live:
                children = _children(rng.choice(live).proc.pid)
                if children:
                    os.kill(rng.choice(children), signal.SIGKILL)
            elif fault == "freeze-worker" and len(live) > 1 and not frozen:
                victim = rng.choice(live)
                os.killpg(victim.proc.pid, signal.SIGSTOP)
                frozen.append((victim, now + STALL_SECONDS + 3))
            elif fault == "cancel":
                active = [r for t in rng.sample(threads, min(5, len(threads))) for r in client.runs(t)[:1] if r["status"] == "running"]
                if active:
                    client.cancel(active[0]["run_id"])
            elif fault == "restart-redis":
                chaos_cluster.redis.restart(down_seconds=REDIS_DOWN_SECONDS)
                driver.redis_restarted_at = time.monotonic()
            elif fault == "restart-postgres":
                chaos_cluster.postgres.restart(down_seconds=POSTGRES_DOWN_SECONDS)
            else:
                continue
            done[fault] += 1
        time.sleep(0.1)

    deadline = time.monotonic() + 240
    while driver.pending and time.monotonic() < deadline:
        driver.step()
        time.sleep(0.2)
    assert not driver.pending, f"threads that did not finish: {sorted(driver.pending)} (seed {SEED}, faults {dict(done)})"

    anomalies = {}
    for thread_id in threads:
        problems = check_thread(client.backend, thread_id)
        values = client.get_state("chaos", thread_id).values
        if values != _expected(thread_id):
            problems.append(f"final values {values} differ from the fault-free run")
        if problems:
            anomalies[thread_id] = problems
    assert anomalies == {}, f"seed {SEED}: {anomalies}"

    lines = executions.read_text().splitlines() if executions.exists() else []
    duplicates = len(lines) - len(set(lines))
    print(f"chaos seed {SEED}, {DURATION:g} s, {len(threads)} threads: faults {dict(done)}, "
          f"{driver.duplicate_resumes} duplicated resumes ({driver.resent_after_redis_restart} sent again after a Redis restart), {len(lines)} work executions for {3 * len(threads)} tasks "
          f"({duplicates} side-effect duplicates), 0 state anomalies")  # fmt: skip
    record("chaos", runs=len(threads), recover=None,
           by=f"seed {SEED}: {sum(done.values())} faults ({done['restart-redis']} Redis, {done['restart-postgres']} Postgres restarts); "
              f"{duplicates} duplicate node executions, 0 state anomalies")  # fmt: skip
