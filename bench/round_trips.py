"""Postgres round trips per superstep, counted (a count, not a time).

The Celery driver runs in-process: the coordinator starts a run, and every
step message it would send is handed to ``nodes.run_node`` directly (the
function a worker's task calls), each under SQLAlchemy event counters.
Used by ``make bench`` (the row) and by ``tests/distributed/
test_round_trips.py`` (the budget, enforced).
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import sqlalchemy as sa

POSTGRES_URL = os.environ.get("LGDIST_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LGDIST_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
GRAPHS = "chain=workers.bench_graphs:chain_20,fanout=workers.bench_graphs:fanout_32,five=workers.bench_graphs:five_steps"
STATEMENTS_GOAL, TRANSACTIONS_GOAL = 6, 2


class Counter:
    """Statements (BEGIN/COMMIT not included), transactions and pool
    checkouts on an engine while the block runs, the Redis commands and
    round trips of the process, and ``durable``: the
    commits that wrote something (each waits for a WAL flush, the costly
    part of a transaction; a transaction that wrote no row commits at once).
    ``kind``: what ran —
    ``step`` (a one-task step's run_node), ``task`` (a task of a wide
    step) or ``finish`` (a wide step's finish_step)."""

    def __init__(self, engine: sa.Engine, kind: str = "step") -> None:
        self.engine = engine
        self.kind = kind
        self.statements: list[str] = []
        self.transactions = 0
        self.checkouts = 0
        self.durable = 0
        # Every Redis client of this process: the commands sent (by name)
        # and the round trips (a pipeline or a script is one).
        self.redis_commands: list[str] = []
        self.redis_round_trips = 0
        self._unpatch: list = []

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement.split()[0].upper())

    def _executed(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # In autocommit a statement that wrote a row is a commit of its own.
        if conn.connection.dbapi_connection.autocommit and not statement.lstrip().upper().startswith("SELECT"):
            self.durable += cursor.rowcount > 0

    def _begin(self, conn: Any) -> None:
        self.transactions += 1

    def _checkout(self, *args: Any) -> None:
        self.checkouts += 1

    def _commit(self, conn: Any) -> None:
        # On the DBAPI connection: a statement SQLAlchemy does not see (nor count).
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
            self.durable += bool(cursor.fetchone()[0])
        finally:
            cursor.close()

    def _patch_redis(self) -> None:
        from redis import connection

        def counting(owner: Any, name: str, note: Any) -> None:
            original = getattr(owner, name)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                note(args)
                return original(*args, **kwargs)

            setattr(owner, name, wrapper)
            self._unpatch.append(lambda: setattr(owner, name, original))

        def command(args: tuple) -> None:
            self.redis_commands.append(str(args[1].decode() if isinstance(args[1], bytes) else args[1]).upper())

        def round_trip(args: tuple) -> None:
            self.redis_round_trips += 1

        for packer in (connection.PythonRespSerializer, connection.HiredisRespSerializer):
            counting(packer, "pack", command)
        counting(connection.AbstractConnection, "send_packed_command", round_trip)

    def __enter__(self) -> "Counter":
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        sa.event.listen(self.engine, "after_cursor_execute", self._executed)
        sa.event.listen(self.engine, "begin", self._begin)
        sa.event.listen(self.engine, "commit", self._commit)
        sa.event.listen(self.engine.pool, "checkout", self._checkout)
        self._patch_redis()
        return self

    def __exit__(self, *exc: Any) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)
        sa.event.remove(self.engine, "after_cursor_execute", self._executed)
        sa.event.remove(self.engine, "begin", self._begin)
        sa.event.remove(self.engine, "commit", self._commit)
        sa.event.remove(self.engine.pool, "checkout", self._checkout)
        while self._unpatch:
            self._unpatch.pop()()


@contextmanager
def in_process_backend(
    postgres_url: str = POSTGRES_URL, redis_url: str = REDIS_URL, *, inline_steps: int = 0
) -> Iterator[Any]:
    """A worker's backend on a schema of its own (dropped afterwards), by
    default with inline steps off so that every step is one message."""
    from lgdist.distributed.app import create_app
    from lgdist.distributed.backend import Backend
    from lgdist.settings import Settings

    schema = f"lgdist_rt_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}options=-csearch_path%3D{schema}"
    settings = Settings(
        broker_url=redis_url, database_url=url, graphs=GRAPHS,
        default_queue=f"lgdist-rt-{schema}", node_queues="", inline_steps=inline_steps,
        # Node time only counts against a slice; a cold first node must not end it.
        inline_ms=60_000.0,
    )  # fmt: skip
    backend = Backend(settings, create_app(settings), pre_ping=False)
    backend.runs.setup()
    try:
        yield backend
    finally:
        backend.saver.engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def drive(
    backend: Any, graph: str, value: Any, *, cold: bool = False, options: Optional[dict] = None
) -> tuple[str, list[Counter]]:
    """Run a thread to its end, one step message at a time; the counters of
    each message (a wide step: each task's, then its finish_step's).
    ``cold``: each message in a process that has decoded none of the
    thread's values and read none of its steps (another worker ran the
    messages before). ``options``: the run's (``durability``, ...)."""
    from lgdist.checkpoint.blob_cache import CACHE
    from lgdist.distributed import coordinator, lifecycle, nodes, run_start, step_finish
    from lgdist.distributed.messages import FinishStepMessage, RunNodeMessage
    from lgdist.distributed.step_reads import forget_recent_steps

    sent: list[tuple[str, str, dict]] = []

    def capture(backend: Any, run: Any, checkpoint_id: str, task: Any, *, resumed: bool, suffix: str) -> None:
        message = RunNodeMessage(
            run_id=run.run_id, thread_id=run.thread_id, graph=run.graph, checkpoint_id=checkpoint_id,
            task_id=task.id, node=task.name, finish=True, resumed=resumed,
        )  # fmt: skip
        sent.append(("step", f"{checkpoint_id}.{task.id}{suffix}", message.model_dump()))

    def capture_wide(
        backend: Any, run: Any, checkpoint_id: str, tasks: list, finish: Any, *, suffix: str, step_has_writes: bool
    ) -> None:
        for task in tasks:
            message = RunNodeMessage(
                run_id=run.run_id, thread_id=run.thread_id, graph=run.graph, checkpoint_id=checkpoint_id,
                task_id=task.id, node=task.name, step_has_writes=step_has_writes,
            )  # fmt: skip
            sent.append(("task", f"{checkpoint_id}.{task.id}{suffix}", message.model_dump()))
        sent.append(("finish", f"{checkpoint_id}.finish{suffix}", finish.model_dump()))

    originals = coordinator.send_single_step, coordinator.send_wide_step
    coordinator.send_single_step, coordinator.send_wide_step = capture, capture_wide  # type: ignore[assignment]
    try:
        thread_id = f"rt-{uuid.uuid4().hex[:8]}"
        run, claimed = lifecycle.submit(
            backend.runs, thread_id=thread_id, graph=graph, kind="start", input=value, options=options or {}
        )
        if not claimed:
            raise RuntimeError(f"thread {thread_id} could not be claimed")
        run_start.start_run(backend, run.run_id)
        counters = []
        while sent:
            kind, message_id, kwargs = sent.pop(0)
            if cold:
                CACHE.clear()
                forget_recent_steps()
            with Counter(backend.saver.engine, kind) as counter:
                if kind == "finish":
                    result = step_finish.finish_step(backend, FinishStepMessage(**kwargs))
                else:
                    result = nodes.run_node(backend, RunNodeMessage(**kwargs), worker="bench", message_id=message_id)
            if result["status"] != "ok":
                raise RuntimeError(f"{kind} failed: {result}")
            counters.append(counter)
    finally:
        coordinator.send_single_step, coordinator.send_wide_step = originals  # type: ignore[assignment]
    return run.run_id, counters


def count_run(backend: Any, graph: str, value: Any, options: dict) -> tuple[str, Counter]:
    """Submit a run and run its ``lgdist.start`` in-process, counting the
    worker's statements and transactions for the whole run (a short run's
    steps all run inline in that one task)."""
    from lgdist.distributed import lifecycle, run_start

    thread_id = f"rt-{uuid.uuid4().hex[:8]}"
    run, claimed = lifecycle.submit(backend.runs, thread_id=thread_id, graph=graph, kind="start", input=value, options=options)
    if not claimed:
        raise RuntimeError(f"thread {thread_id} could not be claimed")
    with Counter(backend.saver.engine, "run") as counter:
        result = run_start.start_run(backend, run.run_id)
    if result["status"] != "started":
        raise RuntimeError(f"start failed: {result}")
    return run.run_id, counter


def run(quick: bool) -> list[dict]:
    rows = []
    with in_process_backend() as backend:
        for cold in (False, True):
            _, counters = drive(backend, "chain", {"n": 0}, cold=cold)
            steps = counters[3:-1]
            statements = max(len(c.statements) for c in steps)
            transactions = max(c.transactions for c in steps)
            where = "a worker new to the thread" if cold else "warm worker"
            rows.append({
                "workload": f"Postgres statements per chain superstep ({where}; {transactions} transactions, "
                            f"goal <= {TRANSACTIONS_GOAL}; reference = goal)",
                "lgdist": float(statements), "reference": float(STATEMENTS_GOAL), "unit": "statements", "target": 1.0,
            })  # fmt: skip
    return rows
