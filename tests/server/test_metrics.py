"""``/metrics``: Prometheus text computed from the shared stores, the event
stream and the broker, so two server replicas report the same numbers."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster_machinery import start_server
from serverlib import dist

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _samples(url: str) -> dict:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_from_the_cluster(sdk, server, cluster):
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "counter", input={"n": 0})
    other = sdk.threads.create()["thread_id"]
    sdk.runs.wait(other, "approval", input={"request": "m"})

    m = _samples(server.url)
    assert m[("lgdist_runs", (("status", "success"),))] >= 1
    assert m[("lgdist_runs", (("status", "interrupted"),))] >= 1
    assert m[("lgdist_threads", (("status", "interrupted"),))] >= 1
    assert ("lgdist_active_threads", ()) in m
    assert ("lgdist_sweeper_reschedules_total", ()) in m
    assert m[("lgdist_queue_depth", (("queue", dist.queue),))] >= 0
    assert ("lgdist_queue_depth", (("queue", dist.io_queue),)) in m
    # Five counting steps ran in the counter run: node and superstep latencies.
    assert m[("lgdist_node_seconds_count", (("graph", "counter"), ("node", "step")))] >= 5
    assert m[("lgdist_node_seconds_sum", (("graph", "counter"), ("node", "step")))] > 0
    assert m[("lgdist_superstep_seconds_count", (("graph", "counter"),))] >= 5
    assert m[("lgdist_node_seconds_count", (("graph", "approval"), ("node", "ask")))] >= 1

    replica = start_server(cluster, "serve-replica")
    try:
        again, other_replica = _samples(server.url), _samples(replica.url)
    finally:
        replica.process.stop()
    runs = {k: v for k, v in again.items() if k[0] in ("lgdist_runs", "lgdist_threads", "lgdist_node_seconds_count")}
    assert runs == {k: v for k, v in other_replica.items() if k in runs}
