"""Streaming the stored steps a dead worker did not stream.

A worker stores a step — under durability "async" a slice of steps, and
with the last one maybe the run's end, in one transaction — and then
streams it. One that dies between the two leaves stored steps no reader
saw. The message it ran comes back (a redelivery, or a Celery retry after
an outage) and finds its step stored: :func:`restream` then streams the
``values`` of each step of the run stored after the message's checkpoint,
each under its own once-key. A batch that did reach the stream marked the
keys of every step it carried (``SliceStore.settle``), so no step streams
twice. When that transaction also ended the run, the run's end goes with
the last step, and the thread's next queued run starts (idempotent: the
thread is claimed once).

Only ``values`` are rebuilt (from the stored checkpoints); the other
modes' chunks of those steps (``updates``, ``debug``, ...) are lost, as a
stream is best effort. A bus without once-keys (the embedded SQL bus)
gets the latest step's values only, as a step stored per transaction
would.
"""

from __future__ import annotations

from typing import Optional

from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import latest_loop, make_loop
from lgdist.distributed.events import END_MODE
from lgdist.distributed.lifecycle import RunStatus
from lgdist.distributed.run_end import publish_events, start_next_enqueued
from lgdist.distributed.runs import Run
from lgdist.loop import ThreadLoop
from lgdist.loop import events as ev
from lgdist.loop.outbox import _as_set

# A run that ended this way streams its end after its steps. A cancelled
# run is settled elsewhere (its end comes with the thread's release).
_ENDED = (RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.INTERRUPTED)


def restream(backend: Backend, run: Run, since: Optional[str]) -> None:
    """Stream the values of the run's steps stored after checkpoint
    ``since`` (None: since the run began) that no publish carried, then,
    if the run has ended, its end."""
    steps = stored_steps(backend, run, since)
    if not backend.bus.publishes_once:
        steps = steps[-1:]
    ended = run.status in _ENDED
    for i, (loop, key) in enumerate(steps):
        events = _values(loop)
        if ended and i == len(steps) - 1:
            events.append((END_MODE, {"status": str(run.status), "error": run.error}))
        publish_events(backend, run.run_id, events, once=key)
    if ended:
        start_next_enqueued(backend, run.thread_id)


def stored_steps(backend: Backend, run: Run, since: Optional[str]) -> list[tuple[ThreadLoop, str]]:
    """The run's stored checkpoints after ``since``, oldest first, each
    restored in a loop and paired with the key it was stored (and
    streamed) under: ``input:<run>`` for the run's input, the step key
    after its parent for a step."""
    if run.start_step is None:
        return []
    out: list[tuple[ThreadLoop, str]] = []
    loop = latest_loop(backend, run)
    while loop is not None and loop.checkpoint["id"] != since:
        parent = (loop.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        step, source = loop.metadata.get("step", -2), loop.metadata.get("source")
        if source == "loop" and parent is not None and step >= run.start_step:
            out.append((loop, run.step_key(parent)))
        elif source == "input" and step == run.start_step - 1:
            out.append((loop, f"input:{run.run_id}"))
            break
        else:
            break  # a checkpoint of an earlier run
        loop = make_loop(backend, run, checkpoint_id=parent)
        if loop.restore() is None:
            break
    return out[::-1]


def _values(loop: ThreadLoop) -> list:
    """The step's ``values`` chunk, as the loop streamed it: when the
    caller asked for values and the step updated an output channel."""
    updated = set(loop.checkpoint.get("updated_channels") or ())
    if "values" not in loop.modes or not updated & _as_set(loop.output_keys):
        return []
    return [("values", ev.read_values(loop.channels, loop.output_keys))]
