"""What waits in lgdist's queues: the sweeper's evidence that a quiet run is
queued behind other work rather than stalled.

A step whose tasks wait in a queue makes no progress and touches nothing,
exactly like a step whose messages were lost; only the broker can tell them
apart. On Redis the queues are lists of JSON messages, read here without
consuming them, and a message a worker has taken sits in the ``unacked``
hash with its delivery time. Other brokers only say how many messages wait, so there any
backlog counts as "maybe queued".
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Iterable, Optional

log = logging.getLogger("lgdist.queues")

# kombu's Redis transport keeps a list per queue and priority step.
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)
_UNACKED = "unacked"
_UNACKED_INDEX = "unacked_index"


class Backlog:
    """The runs with a message waiting in one of ``queues`` (Redis), or just
    whether any message waits (other brokers)."""

    def __init__(self, run_ids: Optional[set[str]], any_waiting: bool) -> None:
        self.run_ids = run_ids
        self.any_waiting = any_waiting

    def holds(self, run_id: str) -> bool:
        """Whether a message of ``run_id`` may be waiting in a queue."""
        if self.run_ids is None:
            return self.any_waiting
        return run_id in self.run_ids


def read_backlog(app: Any, queues: Iterable[str], fresh_seconds: float = 0.0) -> Backlog:
    """What waits in ``queues``; on Redis also the messages a worker took
    less than ``fresh_seconds`` ago and has not acknowledged (it runs them:
    a node shorter than a heartbeat period leaves no other trace)."""
    url = app.conf.broker_url or ""
    names = sorted(set(queues))
    if url.startswith(("redis://", "rediss://")):
        return Backlog(_redis_run_ids(url, names, fresh_seconds), False)
    return Backlog(None, _any_waiting(app, names))


def _redis_run_ids(url: str, queues: list[str], fresh_seconds: float) -> set[str]:
    import time

    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.lrange(queue, 0, -1)
                for step in _REDIS_PRIORITY_STEPS:
                    pipe.lrange(f"{queue}{_REDIS_PRIORITY_SEP}{step}", 0, -1)
            lists = pipe.execute()
        taken: list = []
        if fresh_seconds > 0:
            # kombu's Redis transport: unacked_index scores each message
            # held by a worker with the time it was delivered.
            tags = client.zrangebyscore(_UNACKED_INDEX, time.time() - fresh_seconds, "+inf")
            if tags:
                taken = [_unwrap_unacked(raw) for raw in client.hmget(_UNACKED, tags) if raw]
    finally:
        client.close()
    run_ids: set[str] = set()
    for raw in [*(m for messages in lists for m in messages), *taken]:
        run_id = _run_id_of(raw)
        if run_id:
            run_ids.add(run_id)
    return run_ids


def _unwrap_unacked(raw: bytes) -> Any:
    try:
        return json.loads(raw)[0]
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _run_id_of(raw: Any) -> Optional[str]:
    try:
        message = raw if isinstance(raw, dict) else json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)
        kwargs = payload[1] if isinstance(payload, list) and len(payload) > 1 else {}
    except (ValueError, KeyError, TypeError):
        return None
    run_id = kwargs.get("run_id") if isinstance(kwargs, dict) else None
    return run_id if isinstance(run_id, str) else None


def _any_waiting(app: Any, queues: list[str]) -> bool:
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            for queue in queues:
                try:
                    if channel.queue_declare(queue=queue, passive=True).message_count:
                        return True
                except Exception:  # noqa: BLE001 - a queue that does not exist holds nothing
                    continue
    except Exception as exc:  # noqa: BLE001 - unknown: assume queued, never re-run blindly
        log.warning("could not read the queues' backlog: %s", exc)
        return True
    return False
