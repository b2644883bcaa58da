"""``/ui``: a thread inspector for people, served by the app (one page of
HTML and plain JavaScript over the same API; no front-end build).

Threads and their status; a run's timeline of supersteps with the worker
that ran each node and how long it took; the state at each checkpoint;
pending interrupts with a form to resume (a value for ``interrupt()``, or a
state update); a button to fork a new run from any checkpoint.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from lgdist.server.metrics import node_timings
from lgdist.server.ui_page import PAGE

router = APIRouter(tags=["ui"])


@router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


def run_timeline(service: Any, thread_id: str, run_id: str) -> list[dict]:
    """The run's node tasks, each with its superstep (from the thread's
    checkpoints), worker, start time and duration, in start order."""
    run = service.get_run(thread_id, run_id)
    step_of: dict[str, int] = {}
    for entry in service.history(thread_id, limit=1000, before=None, metadata=None, checkpoint_id=None):
        for task in entry["tasks"]:
            step_of.setdefault(task["id"], entry["metadata"].get("step", -1) + 1)
    out = []
    for t in node_timings(service.backend, [(run.run_id, run.graph)]):
        out.append(
            {
                "step": step_of.get(t["task_id"]),
                "node": t["node"],
                "task_id": t["task_id"],
                "worker": t["worker"],
                "status": t["status"],
                "started_at": t["started_at"],
                "seconds": t["seconds"],
            }
        )
    return sorted(out, key=lambda t: (t["step"] if t["step"] is not None else 1 << 30, t["started_at"]))


@router.get("/ui/api/threads/{thread_id}/runs/{run_id}/timeline", tags=["ui"])
async def timeline(thread_id: str, run_id: str, request: Request) -> list[dict]:
    return await run_in_threadpool(run_timeline, request.app.state.service, thread_id, run_id)
