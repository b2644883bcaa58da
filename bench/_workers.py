"""Start and stop Celery worker processes for the distributed benchmarks.

Each worker is its own process group (``start_new_session``), stopped with
TERM then KILL of the whole group, so its pool children go with it. A pool is
a context manager: leaving the ``with`` block — normally, on an exception,
on Ctrl-C or on SIGTERM — stops every worker it started. As a last resort
(the benchmark process killed with SIGKILL) each worker gets SIGTERM from
the kernel when its parent dies (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def lgdist_command() -> list[str]:
    """The ``lgdist`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("lgdist")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lgdist.cli import main; sys.exit(main())"]


def celery_command(app: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", app]


@dataclass
class Worker:
    """One worker process and its log file."""

    nodename: str
    proc: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, max_chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return text[-max_chars:]

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


class WorkerPool:
    """Worker processes started from one command line, grown or shrunk with
    :meth:`scale_to`; ``app`` (a Celery app on the same broker) is used to
    ping them until they consume."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        app: Any,
        log_dir: Path,
        *,
        prefix: str = "w",
        ready_timeout: float = 60.0,
    ) -> None:
        self.command = list(command)
        self.env = env
        self.app = app
        self.log_dir = log_dir
        self.prefix = prefix
        self.ready_timeout = ready_timeout
        self.workers: list[Worker] = []
        self._previous_sigterm: Any = None

    # -- lifecycle --------------------------------------------------------------
    def __enter__(self) -> "WorkerPool":
        # SIGTERM's default action would skip our cleanup: make it an exception.
        if threading_is_main() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._previous_sigterm = signal.SIG_DFL
            signal.signal(signal.SIGTERM, _raise_system_exit)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.stop_all()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None

    def stop_all(self) -> None:
        workers, self.workers = self.workers, []
        for w in workers:  # TERM all first, so they shut down in parallel
            if w.alive():
                try:
                    os.killpg(w.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for w in workers:
            w.stop()

    # -- size ---------------------------------------------------------------------
    def scale_to(self, n: int) -> None:
        """Start or stop workers until ``n`` are running and answer a ping."""
        while len(self.workers) > n:
            self.workers.pop().stop()
        new = [self._start(i + 1) for i in range(len(self.workers), n)]
        self.workers.extend(new)
        if new:
            self._wait_ready(new)

    def _start(self, number: int) -> Worker:
        name = f"{self.prefix}{number}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        log_path = self.log_dir / f"{name.split('@')[0]}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [*self.command, "-n", name],
                env=self.env,
                cwd=str(self.log_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        return Worker(name, proc, log_path)

    def _wait_ready(self, workers: list[Worker]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting = {w.nodename: w for w in workers}
        while waiting:
            for w in waiting.values():
                if not w.alive():
                    raise RuntimeError(f"worker {w.nodename} exited with {w.proc.returncode}:\n{w.log_tail()}")
            for reply in self.app.control.ping(destination=sorted(waiting), timeout=0.5) or []:
                for name in reply:
                    waiting.pop(name, None)
            if waiting and time.monotonic() > deadline:
                logs = "\n".join(f"--- {w.nodename} ---\n{w.log_tail()}" for w in waiting.values())
                raise RuntimeError(f"workers {sorted(waiting)} not ready after {self.ready_timeout}s:\n{logs}")

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_system_exit(signum: int, frame: Optional[Any]) -> None:
    raise SystemExit(128 + signum)
