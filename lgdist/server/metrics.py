"""``/metrics`` in Prometheus' text format, computed at scrape time from the
shared stores and the broker — never from one server's memory — so every
``lgdist serve`` replica reports the same numbers:

- ``lgdist_runs{status}`` and ``lgdist_threads{status}`` (``busy`` = active
  threads): counts in the run store;
- ``lgdist_queue_depth{queue}``: messages waiting in each broker queue;
- ``lgdist_sweeper_reschedules_total``: stalled steps the sweeper resent
  (a counter row in the run store);
- ``lgdist_node_seconds{graph,node}``: node run times, from the workers'
  events of the most recent finished runs;
- ``lgdist_superstep_seconds{graph}``: time between consecutive checkpoints
  of the same recent runs' threads.

The histograms cover a window of recent runs (``WINDOW_RUNS``), recomputed
at most every ``CACHE_SECONDS``.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any, Iterable, Optional

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from lgdist import serde
from lgdist.distributed.coordinator import WORKER_MODE
from lgdist.distributed.events import RedisEventBus
from lgdist.distributed.lifecycle import FINAL
from lgdist.distributed.runs import deliveries_table, runs_table, threads_table
from lgdist.distributed.sweeper import RESCHEDULES_KEY

WINDOW_RUNS = 200
WINDOW_THREADS = 50
CACHE_SECONDS = 5.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
RUN_STATUSES = ("pending", "running", "interrupted", "success", "error", "cancelled")
THREAD_STATUSES = ("idle", "busy", "interrupted", "error")


def recorded_events(backend: Any, run_id: str) -> list[tuple[str, Any]]:
    """The events a run's stream holds now (no waiting)."""
    bus = backend.bus
    if isinstance(bus, RedisEventBus):
        entries = bus.redis.xrange(bus._key(run_id))
        return [tuple(serde.loads(fields[b"e"])) for _, fields in entries]  # type: ignore[misc]
    return [tuple(serde.loads(payload)) for _, payload in backend.runs.read_events(run_id, 0)]  # type: ignore[misc]


def node_timings(backend: Any, run_ids: Iterable[tuple[str, str]]) -> list[dict]:
    """``{"graph", "node", "worker", "seconds", "started_at"}`` of every node
    task the workers reported for these ``(run_id, graph)`` pairs."""
    out = []
    for run_id, graph in run_ids:
        for mode, chunk in recorded_events(backend, run_id):
            if mode == WORKER_MODE and isinstance(chunk, dict) and "seconds" in chunk:
                out.append({**chunk, "graph": graph, "run_id": run_id})
    return out


def _ts(value: Any) -> Optional[float]:
    try:
        return datetime.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def superstep_seconds(backend: Any, thread_id: str, limit: int = 200) -> list[float]:
    """Seconds from each loop checkpoint's parent to it, for one thread."""
    saved = list(backend.saver.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, limit=limit))
    when = {t.config["configurable"]["checkpoint_id"]: _ts(t.checkpoint.get("ts")) for t in saved}
    out = []
    for t in saved:
        parent = (t.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        start, end = when.get(parent), when.get(t.config["configurable"]["checkpoint_id"])
        if (t.metadata or {}).get("source") == "loop" and start is not None and end is not None and end >= start:
            out.append(end - start)
    return out


def _histogram(name: str, doc: str, labels: list[str], samples: dict[tuple, list[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, values in sorted(samples.items()):
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in BUCKETS]
        buckets.append(("+Inf", len(values)))
        family.add_metric(list(key), buckets, sum(values))
    return family


class ClusterCollector:
    """A prometheus-client collector over the cluster's stores and broker."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._cached: Optional[tuple[float, list]] = None

    def collect(self) -> Iterable[Any]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > CACHE_SECONDS:
                self._cached = (time.monotonic(), self._families())
            return list(self._cached[1])

    def _families(self) -> list:
        backend = self.service.backend
        engine = backend.saver.engine
        with engine.connect() as conn:
            run_counts = dict(conn.execute(sa.select(runs_table.c.status, sa.func.count()).group_by(runs_table.c.status)).all())
            thread_counts = dict(
                conn.execute(sa.select(threads_table.c.status, sa.func.count()).group_by(threads_table.c.status)).all()
            )
            reschedules = conn.execute(
                sa.select(deliveries_table.c.count).where(deliveries_table.c.key == RESCHEDULES_KEY)
            ).scalar()
            recent = conn.execute(
                sa.select(runs_table.c.run_id, runs_table.c.graph, runs_table.c.thread_id)
                .where(runs_table.c.status.in_([str(s) for s in FINAL]))
                .order_by(runs_table.c.updated_at.desc())
                .limit(WINDOW_RUNS)
            ).all()
        runs = GaugeMetricFamily("lgdist_runs", "Runs in the run store, by status", labels=["status"])
        for status in sorted(set(RUN_STATUSES) | set(run_counts)):
            runs.add_metric([status], run_counts.get(status, 0))
        threads = GaugeMetricFamily("lgdist_threads", "Threads by status (busy = active)", labels=["status"])
        for status in sorted(set(THREAD_STATUSES) | set(thread_counts)):
            threads.add_metric([status], thread_counts.get(status, 0))
        active = GaugeMetricFamily("lgdist_active_threads", "Threads with an active run")
        active.add_metric([], thread_counts.get("busy", 0))
        sweeps = CounterMetricFamily("lgdist_sweeper_reschedules", "Stalled steps the sweeper rescheduled")
        sweeps.add_metric([], reschedules or 0)
        queues = GaugeMetricFamily("lgdist_queue_depth", "Messages waiting in each broker queue", labels=["queue"])
        for queue, depth in self.queue_depths().items():
            queues.add_metric([queue], depth)
        nodes: dict[tuple, list[float]] = {}
        for t in node_timings(backend, [(r.run_id, r.graph) for r in recent]):
            nodes.setdefault((t["graph"], t["node"]), []).append(float(t["seconds"]))
        steps: dict[tuple, list[float]] = {}
        seen: set = set()
        for r in recent:
            if r.thread_id in seen or len(seen) >= WINDOW_THREADS:
                continue
            seen.add(r.thread_id)
            steps.setdefault((r.graph,), []).extend(superstep_seconds(backend, r.thread_id))
        return [
            runs, threads, active, sweeps, queues,
            _histogram("lgdist_node_seconds", "Node run time (recent runs)", ["graph", "node"], nodes),
            _histogram("lgdist_superstep_seconds", "Superstep latency, checkpoint to checkpoint (recent runs)", ["graph"], steps),
        ]  # fmt: skip

    def queue_depths(self) -> dict[str, int]:
        settings = self.service.settings
        names = {settings.default_queue} | {
            item.partition("=")[2].strip() for item in settings.node_queues.split(",") if "=" in item
        }
        depths: dict[str, int] = {}
        app = self.service.client.app
        try:
            with app.connection_for_read() as conn:
                channel = conn.default_channel
                for name in sorted(n for n in names if n):
                    try:
                        depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                    except Exception:  # noqa: BLE001 - a queue nobody declared yet is empty
                        depths[name] = 0
        except Exception:  # noqa: BLE001 - the broker is down: report what we have
            pass
        return depths


def render(collector: ClusterCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry)
