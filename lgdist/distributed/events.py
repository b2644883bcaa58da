"""Where a run's stream chunks go between workers and the client.

Redis Streams when Redis is configured (one stream per run, read with a
blocking XREAD); a table in the run database for the embedded default. Both
carry tagged JSON. The last event of a run has mode ``__end__``.

The stream is a view of the run, the run database is its record: a reader
whose stream went silent (Redis restarted and lost it, or the worker died
between ending the run and publishing its end) asks the database, through
``final_status``, whether the run is over, and ends there instead of waiting
forever.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, Optional, Sequence

from lgdist import serde
from lgdist.distributed.transient import TRANSIENT_ERRORS

END_MODE = "__end__"
# A subgraph's chunk: {"ns": [...], "mode": ..., "chunk": ...}.
SUBGRAPH_MODE = "lgdist:subgraph"
STREAM_TTL_SECONDS = 24 * 3600
# A run's stream keeps about this many events (``XADD MAXLEN ~``).
STREAM_MAXLEN = 100_000
# How long a reader waits for a run's end event once the database says the
# run is over (its publisher is normally a few milliseconds behind).
END_GRACE_SECONDS = 2.0
# Set in an end event a reader made from the run record (the stream lost
# its end, and maybe other events): the run's outcome is in its stored state.
FROM_RECORD = "from_record"

# ``final_status()`` returns ``(status, error)`` once the run has ended, else None.
FinalStatus = Callable[[], Optional[tuple[str, Optional[str]]]]

log = logging.getLogger("lgdist.events")

# Publish a batch unless its once-key was published already: a step finished
# again after a crash streams its events once. One script, so the check and
# the appends cannot be separated by a crash. Further keys are marked as
# published with the batch (a slice's batch carries several steps, each of
# which a recovery may stream on its own, under its own key).
_PUBLISH_ONCE = """
if KEYS[2] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 0 end
end
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def wire_events(events: list) -> list[tuple[str, Any]]:
    """A loop's outbox entries as stream events: a subgraph's
    ``(mode, chunk, namespace)`` becomes one ``SUBGRAPH_MODE`` event."""
    return [
        (item[0], item[1]) if len(item) == 2
        else (SUBGRAPH_MODE, {"ns": list(item[2]), "mode": item[0], "chunk": item[1]})
        for item in events
    ]  # fmt: skip


class EventBus:
    # Whether ``publish`` honours ``once`` (and ``marks``).
    publishes_once = False

    def publish(
        self, run_id: str, events: list[tuple[str, Any]], *, once: Optional[str] = None, marks: Sequence[str] = ()
    ) -> None:
        """Append ``events`` to the run's stream. With ``once``, a second
        publish under the same key is dropped (where the bus supports it);
        ``marks``: keys a later publish under them is dropped too."""
        raise NotImplementedError

    def read(
        self,
        run_id: str,
        *,
        timeout: Optional[float] = None,
        final_status: Optional[FinalStatus] = None,
        live: bool = True,
    ) -> Iterator[tuple[str, Any]]:
        """Yield ``(mode, chunk)`` until the run's end event (included).
        ``live=False``: the caller wants the events only once the run is
        over (``invoke``): the bus may wait for the end and hand them over
        at once rather than as they come."""
        raise NotImplementedError


class _EndWatch:
    """Decides when a silent stream of a finished run should end by itself."""

    def __init__(self, final_status: Optional[FinalStatus]) -> None:
        self.final_status = final_status
        self.seen_final_at: Optional[float] = None

    def heard(self) -> None:
        self.seen_final_at = None

    def silent(self) -> Optional[tuple[str, Any]]:
        """Called after a read that returned nothing: the end event to
        synthesize from the run record, once the grace period is over."""
        if self.final_status is None:
            return None
        try:
            final = self.final_status()
        except TRANSIENT_ERRORS:
            return None
        if final is None:
            self.seen_final_at = None
            return None
        now = time.monotonic()
        if self.seen_final_at is None:
            self.seen_final_at = now
            return None
        if now - self.seen_final_at < END_GRACE_SECONDS:
            return None
        status, error = final
        return END_MODE, {"status": status, "error": error, FROM_RECORD: True}


class RedisEventBus(EventBus):
    publishes_once = True

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)
        self._publish_once = self.redis.register_script(_PUBLISH_ONCE)

    def _key(self, run_id: str) -> str:
        return f"lgdist:events:{run_id}"

    def _ended_key(self, run_id: str) -> str:
        # A list that gets an element with the run's end event: a reader
        # that wants the events only at the end waits on it (BLMOVE onto
        # itself: any number of readers, none takes the element away).
        return f"lgdist:events:{run_id}:ended"

    def stream_key(self, run_id: str) -> str:
        """The run's stream, for a script of the same Redis that appends to
        it (a wide step's task keeps its writes and streams its events in
        one round trip, see ``step_writes``)."""
        return self._key(run_id)

    def publish(
        self, run_id: str, events: list[tuple[str, Any]], *, once: Optional[str] = None, marks: Sequence[str] = ()
    ) -> None:
        if not events:
            return
        key = self._key(run_id)
        if once is not None:
            payloads = [serde.dumps([mode, chunk]) for mode, chunk in events]
            keys = [key, f"{key}:once:{once}", *(f"{key}:once:{mark}" for mark in marks)]
            published = self._publish_once(keys=keys, args=[STREAM_TTL_SECONDS, 100_000, *payloads])
            if published and any(mode == END_MODE for mode, _ in events):
                self._mark_ended(self.redis, run_id)
            return
        pipe = self.redis.pipeline(transaction=False)
        self.add_to(pipe, run_id, events)
        pipe.execute()

    def add_to(self, pipe: Any, run_id: str, events: list[tuple[str, Any]]) -> None:
        """Queue ``events`` on a pipeline of the same Redis (a caller's
        round trip publishes them too)."""
        key = self._key(run_id)
        for mode, chunk in events:
            pipe.xadd(key, {"e": serde.dumps([mode, chunk])}, maxlen=STREAM_MAXLEN, approximate=True)
        pipe.expire(key, STREAM_TTL_SECONDS)
        if any(mode == END_MODE for mode, _ in events):
            self._mark_ended(pipe, run_id)

    def _mark_ended(self, client: Any, run_id: str) -> None:
        ended = self._ended_key(run_id)
        client.rpush(ended, 1)
        client.expire(ended, STREAM_TTL_SECONDS)

    def _wait_for_end(self, run_id: str, deadline: Optional[float], watch: "_EndWatch") -> None:
        """Block until the run's end event is published, or until the run
        record says the run is over (a worker that died before publishing
        the end, a Redis that lost it): then the events are all there."""
        ended = self._ended_key(run_id)
        while True:
            wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                return  # the live read below reports the timeout
            try:
                if self.redis.blmove(ended, ended, wait, "RIGHT", "LEFT") is not None:
                    return
            except TRANSIENT_ERRORS as exc:
                log.warning("waiting for the end of run %s: %s; retrying", run_id, exc)
                time.sleep(min(0.5, wait))
            if watch.final_status is not None:
                try:
                    if watch.final_status() is not None:
                        return
                except TRANSIENT_ERRORS:
                    pass

    def read(
        self,
        run_id: str,
        *,
        timeout: Optional[float] = None,
        final_status: Optional[FinalStatus] = None,
        live: bool = True,
    ) -> Iterator[tuple[str, Any]]:
        key = self._key(run_id)
        last = "0-0"
        deadline = time.monotonic() + timeout if timeout else None
        watch = _EndWatch(final_status)
        if not live:
            # One wait, then the whole stream in one read: the caller is not
            # woken by every event of a wide step.
            self._wait_for_end(run_id, deadline, watch)
        while True:
            block_ms = 1000
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"run {run_id} produced no end event within {timeout}s")
                block_ms = max(1, min(block_ms, int(remaining * 1000)))
            try:
                reply = self.redis.xread({key: last}, block=block_ms, count=500)
            except TRANSIENT_ERRORS as exc:
                # Redis is restarting: keep reading until the deadline; the
                # run record says when to stop waiting.
                log.warning("reading the events of run %s: %s; retrying", run_id, exc)
                reply = None
                time.sleep(min(0.5, block_ms / 1000))
            heard = False
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    heard = True
                    last = entry_id
                    mode, chunk = serde.loads(fields[b"e"])
                    yield mode, chunk
                    if mode == END_MODE:
                        return
            if heard:
                watch.heard()
                continue
            end = watch.silent()
            if end is not None:
                yield end
                return


class SQLEventBus(EventBus):
    """Polls the run database; fine for the embedded single-machine demo.
    ``once`` is not supported here (a recovered step may stream twice)."""

    def __init__(self, runs: Any, poll_interval: float = 0.05) -> None:
        self.runs = runs
        self.poll_interval = poll_interval

    def publish(
        self, run_id: str, events: list[tuple[str, Any]], *, once: Optional[str] = None, marks: Sequence[str] = ()
    ) -> None:
        self.runs.append_events(run_id, [serde.dumps([m, c]) for m, c in events])

    def read(
        self,
        run_id: str,
        *,
        timeout: Optional[float] = None,
        final_status: Optional[FinalStatus] = None,
        live: bool = True,
    ) -> Iterator[tuple[str, Any]]:
        after = 0
        deadline = time.monotonic() + timeout if timeout else None
        watch = _EndWatch(final_status)
        silent_since = time.monotonic()
        while True:
            rows = self.runs.read_events(run_id, after)
            for seq, payload in rows:
                after = seq
                mode, chunk = serde.loads(payload)
                yield mode, chunk
                if mode == END_MODE:
                    return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} produced no end event within {timeout}s")
            if rows:
                watch.heard()
                silent_since = time.monotonic()
                continue
            time.sleep(self.poll_interval)
            if time.monotonic() - silent_since >= 1.0:
                silent_since = time.monotonic()
                end = watch.silent()
                if end is not None:
                    yield end
                    return
