"""The seed program, end to end: ``python -m lgdist.demo`` (``make demo``).

Default: the distributed backend on one machine with no servers — two real
``lgdist worker`` processes over kombu's filesystem transport, SQLite for
checkpoints and results. The thread is submitted through the client, pauses
before the tool runs, is resumed by a ``lgdist.resume`` queue message, and
the output shows which worker ran each node. With ``LGDIST_BROKER_URL`` and
``LGDIST_DATABASE_URL`` set it runs the same on Redis and Postgres.
``--local`` runs the same program in-process instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

QUESTION = "what is the weather in sf currently"


def run_local() -> None:
    """The LangGraph README example with `langgraph` replaced by `lgdist`."""
    from lgdist.checkpoint.sqlite import SqliteSaver
    from lgdist.examples.support_agent import build

    workflow = build()
    memory = SqliteSaver.from_conn_string(":memory:")
    app = workflow.compile(checkpointer=memory, interrupt_before=["action"])
    thread = {"configurable": {"thread_id": "4"}}
    for event in app.stream(QUESTION, thread, stream_mode="values"):
        event[-1].pretty_print()
    print(f"\n>>> paused before {app.get_state(thread).next}; resuming with stream(None, thread)\n")
    for event in app.stream(None, thread, stream_mode="values"):
        event[-1].pretty_print()


def _start_workers(env: dict, n: int, log_dir: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(1, n + 1):
        log = open(log_dir / f"worker{i}.log", "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "lgdist.cli", "worker", "-P", "solo", "-n", f"worker{i}@%h", "--loglevel=WARNING"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        )
    return procs


def _wait_for_workers(client, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = client.app.control.ping(timeout=1.0) or []
        if len(replies) >= n:
            return
    raise RuntimeError(f"only {len(replies)} of {n} workers answered within {timeout}s")


def _show_logs(log_dir: Path, lines: int = 30) -> None:
    for log in sorted(log_dir.glob("worker*.log")):
        print(f"--- last {lines} lines of {log} ---", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]), file=sys.stderr)


def run_distributed(workers: int = 2) -> None:
    env = dict(os.environ)
    home = None
    if not env.get("LGDIST_BROKER_URL"):
        home = Path(tempfile.mkdtemp(prefix="lgdist-demo-"))
        env["LGDIST_HOME"] = str(home)
        os.environ["LGDIST_HOME"] = str(home)
    env.setdefault("LGDIST_GRAPHS", "support-agent=lgdist.examples.support_agent:graph")
    os.environ.setdefault("LGDIST_GRAPHS", env["LGDIST_GRAPHS"])

    from lgdist.client import Client, RemoteGraph
    from lgdist.distributed.filesystem_broker import stall_report
    from lgdist.settings import Settings

    settings = Settings()
    log_dir = Path(home or tempfile.mkdtemp(prefix="lgdist-demo-logs-"))
    print(f"broker: {settings.safe_dict()['broker_url'] or 'filesystem:// (embedded)'}   "
          f"checkpoints: {settings.safe_dict()['database_url'] or 'SQLite (embedded)'}")
    procs = _start_workers(env, workers, log_dir)
    try:
        client = Client(settings)
        _wait_for_workers(client, workers)
        print(f"{workers} worker processes are up: {[p.pid for p in procs]}\n")
        app = RemoteGraph("support-agent", client=client)
        thread = {"configurable": {"thread_id": f"demo-{uuid.uuid4().hex[:8]}"}}
        for event in app.stream(QUESTION, thread, stream_mode="values"):
            event[-1].pretty_print()
        state = app.get_state(thread)
        print(f"\n>>> paused before {state.next} (step {state.metadata['step']}); "
              "resuming with a lgdist.resume queue message\n")
        run_id = client.app.send_task(
            "lgdist.resume",
            kwargs={"v": 1, "thread_id": thread["configurable"]["thread_id"], "run_id": uuid.uuid4().hex},
            queue=settings.default_queue,
        ).id
        del run_id
        runs = client.runs(thread["configurable"]["thread_id"])
        deadline = time.monotonic() + 180
        while not any(r["kind"] == "resume" for r in runs) and time.monotonic() < deadline:
            time.sleep(0.05)
            runs = client.runs(thread["configurable"]["thread_id"])
        resume_run = next((r for r in runs if r["kind"] == "resume"), None)
        if resume_run is None:
            _show_logs(log_dir)
            raise RuntimeError(
                "no worker picked up the lgdist.resume message within 180 s (worker logs above); "
                + stall_report(settings.broker_folder())
            )
        for event in client.stream_run(resume_run["run_id"], stream_mode="values", timeout=120):
            event[-1].pretty_print()
        print("\nwhich worker ran each node:")
        for run in reversed(client.runs(thread["configurable"]["thread_id"])):
            for item in client.workers_of(run["run_id"]):
                print(f"  {item['node']:<8} -> {item['worker']}")
        history = app.get_state_history(thread)
        print(f"\nhistory: {len(list(history))} checkpoints; final run status: {client.get_run(resume_run['run_id'])['status']}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if home is not None and not os.environ.get("LGDIST_DEMO_KEEP"):
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local", action="store_true", help="run in-process instead of on workers")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.local:
        run_local()
    else:
        run_distributed(args.workers)


if __name__ == "__main__":
    main()
