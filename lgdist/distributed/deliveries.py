"""Counting deliveries of a task message: one pipelined Redis round trip.

A message that keeps killing its worker is redelivered forever
(``task_reject_on_worker_lost``), so a node task counts its deliveries (on
Redis only the redelivered or retried ones: Redis marks the messages it
gives back, so a first delivery needs no count, see ``nodes``) and
parks itself as a poison task past ``max_deliveries``; the count also tells a
task that finds its step already stored whether it is a redelivery (whose
first delivery may have died before sending the next step). Counts live in
the broker's Redis (``INCR`` + ``EXPIRE`` in one pipeline) — or, on the
embedded broker, in the run store — keyed by the message's id.

The same place keeps insert-once claims: "the step at checkpoint C of run R
was sent" (``claim``, a ``SET NX``), so that of two callers that may send a
step, one does.
"""

from __future__ import annotations

from typing import Any

_TTL_SECONDS = 7 * 24 * 3600


class RedisDeliveries:
    """Delivery counters in Redis."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)

    def count(self, key: str) -> int:
        """Count one more delivery of ``key``; the new count."""
        name = f"lgdist:deliveries:{key}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, _TTL_SECONDS)
        count, _ = pipe.execute()
        return int(count)

    def claim(self, key: str) -> bool:
        """Whether this caller is the first to claim ``key`` (``SET NX``)."""
        return bool(self.redis.set(f"lgdist:claims:{key}", 1, nx=True, ex=_TTL_SECONDS))


class StoreDeliveries:
    """Delivery counters in the run store (brokers without Redis)."""

    def __init__(self, runs: Any) -> None:
        self.runs = runs

    def count(self, key: str) -> int:
        return self.runs.count_delivery(key)

    def claim(self, key: str) -> bool:
        return self.runs.count_delivery(f"claim:{key}") == 1
