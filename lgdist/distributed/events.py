"""Where a run's stream chunks go between workers and the client.

Redis Streams when Redis is configured (one stream per run, read with a
blocking XREAD); a table in the run database for the embedded default. Both
carry tagged JSON. The last event of a run has mode ``__end__``.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Optional

from lgdist import serde

END_MODE = "__end__"
STREAM_TTL_SECONDS = 24 * 3600


class EventBus:
    def publish(self, run_id: str, events: list[tuple[str, Any]]) -> None:
        raise NotImplementedError

    def read(self, run_id: str, *, timeout: Optional[float] = None) -> Iterator[tuple[str, Any]]:
        """Yield ``(mode, chunk)`` until the run's end event (included)."""
        raise NotImplementedError

    def end(self, run_id: str, status: str, error: Optional[str] = None) -> None:
        self.publish(run_id, [(END_MODE, {"status": status, "error": error})])


class RedisEventBus(EventBus):
    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)

    def _key(self, run_id: str) -> str:
        return f"lgdist:events:{run_id}"

    def publish(self, run_id: str, events: list[tuple[str, Any]]) -> None:
        if not events:
            return
        key = self._key(run_id)
        pipe = self.redis.pipeline(transaction=False)
        for mode, chunk in events:
            pipe.xadd(key, {"e": serde.dumps([mode, chunk])}, maxlen=100_000, approximate=True)
        pipe.expire(key, STREAM_TTL_SECONDS)
        pipe.execute()

    def read(self, run_id: str, *, timeout: Optional[float] = None) -> Iterator[tuple[str, Any]]:
        key = self._key(run_id)
        last = "0-0"
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            block_ms = 1000
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"run {run_id} produced no end event within {timeout}s")
                block_ms = max(1, min(block_ms, int(remaining * 1000)))
            reply = self.redis.xread({key: last}, block=block_ms, count=500)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    mode, chunk = serde.loads(fields[b"e"])
                    yield mode, chunk
                    if mode == END_MODE:
                        return


class SQLEventBus(EventBus):
    """Polls the run database; fine for the embedded single-machine demo."""

    def __init__(self, runs: Any, poll_interval: float = 0.05) -> None:
        self.runs = runs
        self.poll_interval = poll_interval

    def publish(self, run_id: str, events: list[tuple[str, Any]]) -> None:
        self.runs.append_events(run_id, [serde.dumps([m, c]) for m, c in events])

    def read(self, run_id: str, *, timeout: Optional[float] = None) -> Iterator[tuple[str, Any]]:
        after = 0
        deadline = time.monotonic() + timeout if timeout else None
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
            if not rows:
                time.sleep(self.poll_interval)
