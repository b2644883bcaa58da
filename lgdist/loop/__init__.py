"""The step loop both runtimes share: one thread's supersteps against a
checkpoint store (restore, plan, run one task, record its outcome, collect a
step, store the next checkpoint, stream events). The in-process drivers in
:mod:`lgdist.local` and the Celery workers in :mod:`lgdist.distributed` run
its tasks; it imports neither."""

from lgdist.loop.checkpoint_writer import StepAlreadyFinished
from lgdist.loop.thread_loop import DEFAULT_RECURSION_LIMIT, ThreadLoop

__all__ = ["ThreadLoop", "StepAlreadyFinished", "DEFAULT_RECURSION_LIMIT"]
