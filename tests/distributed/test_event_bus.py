"""The Redis event bus on the real Redis: a reader that wants a run's
events only once it is over (``live=False``) gets all of them, in order,
when the end is published; and the end from the run record when the
stream never gets one (a worker died between ending the run and
publishing its end). Once-keys: a batch published under a key is not
published again under it, and the keys a batch marks count as published
too (a slice's batch carries several steps; a recovery streams each step
on its own, under its own key: ``lgdist.distributed.restream``)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from lgdist.distributed.events import END_MODE, FROM_RECORD, RedisEventBus
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def bus():
    bus = RedisEventBus(REDIS_URL)
    yield bus
    bus.redis.close()


def test_a_reader_at_the_end_gets_every_event_once_the_end_is_published(bus):
    run_id = f"bus-{uuid.uuid4().hex[:8]}"
    bus.publish(run_id, [("values", {"n": 1})])
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(bus.read(run_id, timeout=30, live=False)))
    reader.start()
    bus.publish(run_id, [("updates", {"a": {"n": 2}})], once="step:1")
    time.sleep(0.2)
    assert got == [] and reader.is_alive(), "nothing before the end"
    bus.publish(run_id, [("values", {"n": 2}), (END_MODE, {"status": "success", "error": None})])
    reader.join(10)
    assert got == [("values", {"n": 1}), ("updates", {"a": {"n": 2}}), ("values", {"n": 2}),
                   (END_MODE, {"status": "success", "error": None})]  # fmt: skip
    # Another reader after the end gets the same at once (the mark stays).
    assert list(bus.read(run_id, timeout=5, live=False)) == got


def test_a_reader_at_the_end_ends_from_the_run_record_when_the_stream_gets_no_end(bus):
    run_id = f"bus-{uuid.uuid4().hex[:8]}"
    bus.publish(run_id, [("values", {"n": 1})])
    started = time.monotonic()
    events = list(bus.read(run_id, timeout=30, live=False, final_status=lambda: ("success", None)))
    assert events == [("values", {"n": 1}), (END_MODE, {"status": "success", "error": None, FROM_RECORD: True})]
    assert time.monotonic() - started < 15


def test_a_batch_marks_the_keys_of_the_steps_it_carries(bus):
    run_id = f"bus-{uuid.uuid4().hex[:8]}"
    bus.publish(run_id, [("values", 1), ("values", 2)], once="step:a", marks=["step:b"])
    bus.publish(run_id, [("values", 2)], once="step:b")  # carried by the batch above
    bus.publish(run_id, [("values", 1)], once="step:a")  # published already
    end = (END_MODE, {"status": "success", "error": None})
    bus.publish(run_id, [("values", 2), end], once="step:b")  # dropped: the end is not marked either
    assert bus.redis.llen(bus._ended_key(run_id)) == 0
    bus.publish(run_id, [("values", 3), end], once="step:c")
    assert [chunk for _, chunk in bus.read(run_id, timeout=5, live=False)] == [1, 2, 3, end[1]]
