"""A wide step's task writes, kept in the broker's Redis until the step ends.

A task of a wide step does not store its writes in Postgres: it keeps them
in a Redis hash of its run's step (one script, one round trip, together
with its stream events), and the step's chord callback reads them all at once
(``HGETALL``) and stores them with the next checkpoint, in the one
transaction that stores it. So a width-w step costs one write transaction,
not w + 1.

Writes reach Postgres on their own only where they must outlive the step:

* the step does not complete — a task failed, was interrupted, or the run
  was cancelled: the callback (or, for a failed task, the failing task,
  which no callback follows) stores the kept writes as pending writes, so a
  resume does not run those tasks again and ``get_state`` shows them;
* the step stalled or a task's outcome is missing: the sweeper (or the
  callback) stores the kept writes before it sends the step again, so only
  tasks without writes run again.

A failing task cannot wait for its siblings, so it *ends* the step's hash
(:meth:`RedisStepWrites.end`: mark it and read it, atomically) and stores what
it read; a sibling that finishes later sees the mark in the same ``MULTI``
script that keeps its writes (:meth:`RedisStepWrites.keep`) and stores its writes
itself. Redis orders the two scripts, so every write is stored by
exactly one of them — none is lost. Duplicates are harmless: stored
writes are insert-once per ``(checkpoint, task, idx)``.

If Redis loses the hash (a restart without persistence), the tasks whose
writes it held run again: at-least-once nodes, exactly-once state, as
for any message Redis loses. Without Redis (the embedded broker) tasks
store their writes in the checkpoint store as before.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from lgdist import serde
from lgdist.errors import SerializationError

# Kept past any step that can still complete; the callback deletes a
# step's hash once it stored the writes with the checkpoint.
_TTL_SECONDS = 24 * 3600

Writes = list[tuple[str, Any]]

# Keep a task's writes and append its stream events, then say whether the
# step was ended (see ``RedisStepWrites.end``). One script: the check and
# the keep are atomic, as ``end``'s mark-and-read is, and a task costs one
# command on the wire, not a ``MULTI`` of seven.
#   KEYS: the step's hash, its end mark, the run's stream
#   ARGV: task id, encoded writes, hash TTL, stream TTL, stream MAXLEN, events...
_KEEP = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if #ARGV > 5 then
  for i = 6, #ARGV do
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'e', ARGV[i])
  end
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
return redis.call('EXISTS', KEYS[2])
"""


def _encode(writes: Sequence[tuple[str, Any]]) -> bytes:
    try:
        return serde.dumps([[c, v] for c, v in writes])
    except SerializationError:
        for channel, value in writes:
            serde.dumps_key(channel, value)  # raises the error that names the state key
        raise


def _decode(raw: dict) -> dict[str, Writes]:
    return {
        (k.decode() if isinstance(k, bytes) else k): [(c, v) for c, v in serde.loads(blob)] for k, blob in raw.items()
    }


class RedisStepWrites:
    """Task writes of wide steps, per ``(run, checkpoint)``, in Redis."""

    def __init__(self, url: str) -> None:
        import redis

        # One connection, no pool: a backend (and so this client) belongs to
        # one thread (see ``backend.get_backend``), and a pool's checkout
        # and release cost about as much CPU as the command itself.
        self.redis = redis.Redis.from_url(url, single_connection_client=True)
        self._keep_sha = self.redis.script_load(_KEEP)

    @staticmethod
    def _keys(run_id: str, checkpoint_id: str) -> tuple[str, str]:
        base = f"lgdist:step-writes:{run_id}:{checkpoint_id}"
        return base, f"{base}:ended"

    def keep(
        self,
        run_id: str,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
        events: Sequence[tuple[str, Any]] = (),
        stream: str = "",
    ) -> bool:
        """Keep a task's writes for the step's callback and append
        ``events`` (wire events) to ``stream`` (the run's Redis stream), in
        one round trip. True when the step was ended meanwhile: the caller
        then stores the writes itself (no callback will)."""
        from lgdist.distributed.events import STREAM_MAXLEN, STREAM_TTL_SECONDS

        key, ended = self._keys(run_id, checkpoint_id)
        payloads = [serde.dumps([mode, chunk]) for mode, chunk in events] if stream else []
        args = [task_id, _encode(writes), _TTL_SECONDS, STREAM_TTL_SECONDS, STREAM_MAXLEN, *payloads]
        return bool(self._evalsha_keep([key, ended, stream], args))

    def _evalsha_keep(self, keys: list, args: list) -> Any:
        """``EVALSHA`` of the keep script on the client's connection, below
        redis-py's command layer (its retry and observability wrappers cost
        more CPU than the round trip: this runs once per task). A failed
        connection is dropped and the error raised: the task is retried
        (a connection error is an outage, see ``transient``)."""
        import redis

        conn = self.redis.connection
        try:
            try:
                conn.send_command("EVALSHA", self._keep_sha, len(keys), *keys, *args)
                return conn.read_response()
            except redis.exceptions.NoScriptError:  # Redis restarted since: load it again
                conn.send_command("EVAL", _KEEP, len(keys), *keys, *args)
                return conn.read_response()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            conn.disconnect()
            raise

    def read(self, run_id: str, checkpoint_id: str) -> dict[str, Writes]:
        """The writes kept for the step, by task id."""
        return _decode(self.redis.hgetall(self._keys(run_id, checkpoint_id)[0]))

    def has(self, run_id: str, checkpoint_id: str, task_id: str) -> bool:
        return bool(self.redis.hexists(self._keys(run_id, checkpoint_id)[0], task_id))

    def end(self, run_id: str, checkpoint_id: str) -> dict[str, Writes]:
        """Mark the step as one no callback will finish and read the writes
        kept so far, atomically: tasks that finish later store their own."""
        key, ended = self._keys(run_id, checkpoint_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(ended, 1, ex=_TTL_SECONDS)
        pipe.hgetall(key)
        return _decode(pipe.execute()[1])

    def drop(self, run_id: str, checkpoint_id: str) -> None:
        """The step's writes are stored with its checkpoint: forget them."""
        self.redis.delete(self._keys(run_id, checkpoint_id)[0])


def take_kept_writes(backend: Any, run: Any, loop: Any) -> list[str]:
    """Add the writes the tasks of ``loop``'s step kept in Redis to its
    pending writes, as if read from the store, for tasks the store has no
    completed outcome for; the ids of those tasks (their writes are still
    to be stored: with the next checkpoint, or by :func:`store_kept_writes`)."""
    from lgdist.engine.outcomes import completed_tasks

    if backend.step_writes is None:
        return []
    kept = backend.step_writes.read(run.run_id, loop.checkpoint["id"])
    done = completed_tasks(loop.pending_writes)
    added = []
    for task_id, writes in kept.items():
        if task_id not in done and writes:
            loop.pending_writes.extend((task_id, c, v) for c, v in writes)
            added.append(task_id)
    return added


def store_kept_writes(backend: Any, run: Any, checkpoint_id: str, kept: Optional[dict[str, Writes]] = None) -> int:
    """Store the writes kept for a step that will not complete as it is
    (failed, interrupted, cancelled, stalled) as pending writes of its
    checkpoint, so they outlive it: a resume or a rescheduled step does not
    run those tasks again. Idempotent. Returns how many tasks' writes."""
    if kept is None:
        if backend.step_writes is None:
            return 0
        kept = backend.step_writes.read(run.run_id, checkpoint_id)
    config = {"configurable": {"thread_id": run.thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
    for task_id, writes in kept.items():
        backend.saver.put_writes(config, writes, task_id)
    return len(kept)
