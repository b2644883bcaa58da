"""Which failures are an outage, not a bug.

A database restart, a broker restart or a dropped connection raises one of
these. lgdist's tasks are idempotent, so a task that hits one is simply run
again later (Celery ``autoretry_for``), and code that turns exceptions into
run errors lets these through: a run must not end as "error" because
Postgres was restarting.
"""

from __future__ import annotations

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,  # connection refused / terminated, server restarting
    sqlalchemy.exc.InterfaceError,  # a connection that died under the driver
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,  # the broker refused a publish
    ConnectionError,  # the builtin one: refused / reset sockets
)

# Celery retry options for every lgdist task: exponential backoff with full
# jitter, capped at 2 s (so a task notices within 2 s that a service is
# back), for about two minutes of outage. After
# that the task fails; the sweeper picks the stalled step up once services
# are back.
RETRY_OPTIONS: dict = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 2,
    "retry_jitter": True,
    "max_retries": 120,
}

