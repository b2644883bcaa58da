"""Test-only fault injection: kill the worker process at a named point.

The fault-tolerance suite (``tests/faults``) needs a worker to die at an
exact place that no timing can hit reliably, e.g. after ``finish_step``
stored a checkpoint and before it scheduled the next step. It arms a crash
point by writing ``"<point> <thread id> <step>"`` (the step of the
checkpoint just stored) to the file named by
``LGDIST_TEST_CRASH_FILE`` in the workers' environment; the first process
that reaches that point for that thread and step deletes the file and exits
at once (``os._exit``: no cleanup, no ack, like SIGKILL). Armed with a
fourth word, ``outage``, it raises a ``ConnectionError`` there instead: a
transient error, as a dropped connection raises, which Celery's autoretry
answers with a retry of the same message. Armed with ``stall <seconds>``,
it sleeps there and goes on: a worker frozen for a while (a paused VM, a
long GC) at that point.

With the variable unset (production), :func:`crash_point` is one
environment lookup and does nothing.
"""

from __future__ import annotations

import os
import time

ENV_VAR = "LGDIST_TEST_CRASH_FILE"
EXIT_CODE = 70


def crash_point(point: str, thread_id: str, step: int) -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    try:
        with open(path) as fh:
            armed = fh.read().split()
    except OSError:
        return
    if armed[:3] != [point, thread_id, str(step)]:
        return
    try:
        os.unlink(path)  # exactly one process wins the crash
    except OSError:
        return
    if armed[3:4] == ["stall"] and len(armed) == 5:
        time.sleep(float(armed[4]))
        return
    if armed[3:] == ["outage"]:
        raise ConnectionError(f"injected outage at {point} (thread {thread_id}, step {step})")
    os._exit(EXIT_CODE)
