"""A run's Redis stream vanishes (Redis restarted without persistence, a
stream evicted): a reader does not wait forever - it ends from the run
record - and a stream lost mid-run picks up the events published after.
A worker stalls between storing a run's end and streaming it: the callers
that want the run's outcome (``RemoteGraph.invoke``, the server's
``runs.wait``) read it from the stored state."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from cluster_machinery import start_server
from faultlib import fault_free_output, fault_free_values, record

from lgdist.client import RemoteGraph
from lgdist.client.client import RunFailedError
from lgdist.distributed.events import END_GRACE_SECONDS

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _drop_stream(faults, run_id: str) -> None:
    redis.Redis.from_url(faults.env["LGDIST_BROKER_URL"]).delete(f"lgdist:events:{run_id}")


@pytest.mark.fault("stream-vanished")
def test_a_reader_of_a_finished_run_whose_stream_vanished_ends_from_the_run_record(faults):
    client = faults.client
    ok_thread, failed_thread = faults.thread_id("gone-ok"), faults.thread_id("gone-err")
    ok = client.submit("ticker", {"until": 2}, ok_thread)
    failed = client.submit("failing", {"n": 0}, failed_thread)
    assert faults.wait_run(ok)["status"] == "success"
    assert faults.wait_run(failed)["status"] == "error"
    _drop_stream(faults, ok)
    _drop_stream(faults, failed)

    started = time.monotonic()
    # What the stream lost, a "values" reader gets from the store: the
    # run's final state, as its last chunk.
    assert list(client.stream_run(ok, timeout=30)) == [{"n": 2, "until": 2, "trail": [0, 1]}]
    ended = time.monotonic() - started
    assert ended < END_GRACE_SECONDS + 3
    with pytest.raises(RunFailedError, match="node 'boom' failed"):
        list(client.stream_run(failed, timeout=30))
    # The end a reader makes from the record says so: the run's outcome is
    # in its stored state (``Client.outcome``).
    assert list(client.events(ok, timeout=30)) == [("__end__", {"status": "success", "error": None, "from_record": True})]
    assert client.outcome(ok, timeout=30) == ({"n": 2, "until": 2, "trail": [0, 1]}, [])
    lost, duplicated = faults.assert_fault_free("ticker", ok_thread, [{"until": 2}])
    lost2, duplicated2 = faults.assert_fault_free("failing", failed_thread, [{"n": 0}])
    record("stream-vanished", runs=2, lost=lost + lost2, duplicated=duplicated + duplicated2, recover=ended,
           by="reader falls back to the run record")  # fmt: skip


@pytest.mark.fault("stream-vanished")
def test_a_stream_lost_mid_run_resumes_with_the_later_events(faults):
    client = faults.client
    thread_id = faults.thread_id("gone-mid")
    value = {"until": 30}
    run_id = client.submit("ticker", value, thread_id)
    chunks: list = []
    errors: list = []

    def read() -> None:
        try:
            chunks.extend(client.stream_run(run_id, timeout=60))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    faults.wait_checkpoints(thread_id, 6)
    _drop_stream(faults, run_id)
    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    reader.join(timeout=30)
    assert not reader.is_alive() and not errors, errors
    # The reader kept what it had and got what came after, in order, each
    # once; what was in the stream when it vanished is all it missed.
    expected = fault_free_values("ticker", value)
    assert chunks and chunks[-1] == expected[-1]
    positions = [expected.index(c) for c in chunks]
    assert positions == sorted(set(positions)), positions
    lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    record("stream-vanished", runs=1, lost=lost, duplicated=duplicated)


@pytest.mark.fault("stream-publisher-stalled")
def test_invoke_returns_the_stored_output_when_its_publisher_stalls_past_the_grace(long_slices):
    """A worker stores a run's only slice together with the run's end, then
    freezes (15 s, far past ``END_GRACE_SECONDS``) before streaming it. The
    reader ends from the run record with none of the run's chunks, and
    ``RemoteGraph.invoke`` still returns the run's output: the stored state
    is the run's record, the stream only its view."""
    faults, client = long_slices.faults, long_slices.client
    thread_id = faults.thread_id("stalled-publisher")
    value = {"until": 5}
    # ticker: -1 input, 0 __start__, 1..5 ticks; the run and its end are one
    # slice, stored at step 5.
    faults.arm_crash("slice.stored", thread_id, 5, stall=15)
    output = RemoteGraph("ticker", client=client).invoke(value, {"configurable": {"thread_id": thread_id}})
    (run,) = client.backend.runs.list_runs(thread_id)
    assert not faults.crash_file.exists(), "no worker reached the stall"
    assert not faults.stream_ended(run.run_id), "the stalled worker streamed before invoke returned"
    assert output == fault_free_output("ticker", value)
    # A "values" reader of the same run (the stream still holds nothing)
    # gets the run's final state as its last chunk, once.
    assert list(client.stream_run(run.run_id, stream_mode="values", timeout=30)) == [fault_free_values("ticker", value)[-1]]
    assert not faults.stream_ended(run.run_id), "the stalled worker streamed before the reader ended"

    # The worker wakes up and streams the slice once; the thread is intact.
    faults.wait_for(lambda: faults.stream_ended(run.run_id), timeout=60, what="the stalled worker's stream")
    values = [c for m, c in client.events(run.run_id, timeout=10) if m == "values"]
    assert values == fault_free_values("ticker", value)
    lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    record("stream-publisher-stalled", runs=1, lost=lost, duplicated=duplicated, recover=None,
           by="invoke and the server's wait read the run's output from the stored state")  # fmt: skip


@pytest.mark.fault("stream-publisher-stalled")
def test_the_servers_wait_returns_the_stored_output_when_its_publisher_stalls_past_the_grace(long_slices):
    """The same stall under ``lgdist serve``: ``runs.wait`` answers with the
    run's stored output, not with what the stream carried."""
    from langgraph_sdk import get_sync_client

    faults, client = long_slices.faults, long_slices.client
    queue = client.backend.settings.default_queue
    server = start_server(faults, name="serve-stalled", extra_env={"LGDIST_DEFAULT_QUEUE": queue})
    try:
        sdk = get_sync_client(url=server.url)
        thread_id = sdk.threads.create()["thread_id"]
        value = {"until": 5}
        faults.arm_crash("slice.stored", thread_id, 5, stall=15)
        output = sdk.runs.wait(thread_id, "ticker", input=value)
        (run,) = client.backend.runs.list_runs(thread_id)
        assert not faults.crash_file.exists(), "no worker reached the stall"
        assert not faults.stream_ended(run.run_id), "the stalled worker streamed before the server answered"
        assert output == fault_free_output("ticker", value)
        # A "values" stream of the same run (joined: the stream still holds
        # nothing) ends with the run's final state, once.
        parts = list(sdk.runs.join_stream(thread_id, run.run_id, stream_mode="values"))
        assert [p.data for p in parts if p.event == "values"] == [fault_free_output("ticker", value)]
        assert not faults.stream_ended(run.run_id), "the stalled worker streamed before the server's stream ended"

        faults.wait_for(lambda: faults.stream_ended(run.run_id), timeout=60, what="the stalled worker's stream")
        lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    finally:
        server.process.stop()
    record("stream-publisher-stalled", runs=1, lost=lost, duplicated=duplicated, recover=None,
           by="invoke and the server's wait read the run's output from the stored state")  # fmt: skip
