"""The API's operations over lgdist's stores and broker.

Like ``Client``, the server reads the checkpoint and run stores and
publishes ``lgdist.start`` messages: runs execute on the workers. Graph code
is loaded (from the registry) only to read and update state with the
graph's channels and reducers, never to run a node.
"""

from __future__ import annotations

import time
import uuid
from functools import lru_cache
from typing import Any, Optional

from lgdist.client import Client
from lgdist.client.remote_events import TREE_MODES
from lgdist.distributed import lifecycle, run_end
from lgdist.distributed.lifecycle import ACTIVE, FINAL, ThreadStatus
from lgdist.distributed.runs import Run
from lgdist.errors import ApiError, GraphNotRegisteredError
from lgdist.server.errors import not_found
from lgdist.server.schemas import CommandBody, RunCreate
from lgdist.server.serialize import iso, jsonable, thread_state
from lgdist.server.store import ApiStore, ThreadRecord
from lgdist.settings import Settings
from lgdist.types import Command, Send

# The namespace LangGraph's server derives assistant ids from (uuid5 of the
# graph id), so an assistant has the same id on both servers.
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")

# API stream modes -> the modes the workers publish (``events`` is the run
# tree rebuilt from these, see streaming.RunTreeEvents).
WORKER_MODES = {"messages-tuple": ("messages",), "messages": ("messages",), "events": TREE_MODES}

# lgdist run status -> the API's run status.
RUN_STATUS = {"cancelled": "interrupted"}

DEFAULT_STRATEGY = "enqueue"
# How long a run submitted with "interrupt" or "rollback" waits for the
# active run to stop after its current step.
INTERRUPT_WAIT_SECONDS = 120.0


def assistant_id(graph: str) -> str:
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph))


class ApiService:
    def __init__(self, settings: Settings, client: Optional[Client] = None) -> None:
        self.settings = settings
        self.client = client or Client(settings)
        self.backend = self.client.backend
        self.runs = self.backend.runs
        self.store = ApiStore(self.backend.saver.engine)
        self.store.setup()

    def async_redis(self) -> Any:
        """An asyncio Redis client on the broker (stream readers share it)."""
        if getattr(self, "_async_redis", None) is None:
            import redis.asyncio

            self._async_redis = redis.asyncio.Redis.from_url(self.settings.resolved_broker_url())
        return self._async_redis

    # -- assistants ----------------------------------------------------------------
    def graph_names(self) -> list[str]:
        return self.backend.registry.names()

    def resolve_graph(self, assistant: str) -> str:
        """The registered graph an assistant id (or graph name) names."""
        names = self.graph_names()
        if assistant in names:
            return assistant
        for name in names:
            if assistant_id(name) == assistant:
                return name
        raise not_found(f"Assistant {assistant!r} not found; registered graphs: {', '.join(names)}")

    def assistant(self, graph: str) -> dict:
        now = iso(self._started)
        return {
            "assistant_id": assistant_id(graph),
            "graph_id": graph,
            "config": {},
            "context": {},
            "metadata": {"created_by": "system"},
            "name": graph,
            "description": None,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }

    _started = time.time()

    def compiled(self, graph: str) -> Any:
        """The graph, bound to the cluster's checkpoint store."""
        return _compiled(self.client, graph)

    # -- threads ---------------------------------------------------------------------
    def thread_record(self, thread_id: str) -> ThreadRecord:
        rec = self.store.get(thread_id)
        if rec is None:
            raise not_found(f"Thread with ID {thread_id} not found")
        return rec

    def thread_graph(self, rec: ThreadRecord) -> Optional[str]:
        graph = rec.get("graph") or rec["metadata"].get("graph_id")
        return graph if graph in self.graph_names() else None

    def thread_json(self, rec: ThreadRecord, *, with_values: bool = True) -> dict:
        out = {
            "thread_id": rec["thread_id"],
            "created_at": iso(rec["created_at"]),
            "updated_at": iso(rec["updated_at"]),
            "state_updated_at": iso(rec["updated_at"]),
            "metadata": rec["metadata"],
            "status": rec["status"],
            "config": {},
            "values": None,
            "interrupts": {},
            "error": None,
        }
        graph = self.thread_graph(rec)
        if with_values and graph is not None:
            snap = self.compiled(graph).get_state({"configurable": {"thread_id": rec["thread_id"]}})
            if snap.metadata is not None:
                out["values"] = jsonable(snap.values)
                out["interrupts"] = {t.id: jsonable(list(t.interrupts)) for t in snap.tasks if t.interrupts}
        return out

    def state(self, thread_id: str, checkpoint_id: Optional[str] = None, *, subgraphs: bool = False) -> dict:
        rec = self.thread_record(thread_id)
        graph = self.thread_graph(rec)
        config: dict = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        if graph is None:
            return {
                "values": {}, "next": [], "tasks": [], "metadata": {}, "created_at": None,
                "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None},
                "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None,
            }  # fmt: skip
        compiled = self.compiled(graph)
        if checkpoint_id and self.backend.saver.get_tuple(config) is None:
            raise not_found(f"Checkpoint {checkpoint_id} of thread {thread_id} not found")
        return thread_state(compiled.get_state(config, subgraphs=subgraphs))

    def history(
        self, thread_id: str, *, limit: int, before: Optional[str], metadata: Optional[dict], checkpoint_id: Optional[str]
    ) -> list[dict]:
        rec = self.thread_record(thread_id)
        graph = self.thread_graph(rec)
        if graph is None:
            return []
        config: dict = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        before_config = {"configurable": {"thread_id": thread_id, "checkpoint_id": before}} if before else None
        snaps = self.compiled(graph).get_state_history(config, filter=metadata or None, before=before_config, limit=limit)
        return [thread_state(s) for s in snaps]

    def update_state(
        self, thread_id: str, values: Any, as_node: Optional[str], checkpoint_id: Optional[str]
    ) -> dict:
        rec = self.thread_record(thread_id)
        graph = self.thread_graph(rec)
        if graph is None:
            raise ApiError(409, f"Thread {thread_id} has no graph yet: run it once (or create it with graph_id)")
        if rec["status"] == "busy":
            raise ApiError(409, f"Thread {thread_id} is busy with run {rec['active_run_id']}; wait for it or cancel it")
        config: dict = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        compiled = self.compiled(graph)
        if as_node is not None and as_node not in compiled.spec.nodes:
            raise ApiError(422, f"Node {as_node!r} not found in graph {graph!r}")
        saved = compiled.update_state(config, values, as_node)
        self.store.merge_metadata(thread_id, {})
        configurable = saved["configurable"]
        return {
            "checkpoint": {
                "thread_id": configurable.get("thread_id", thread_id),
                "checkpoint_ns": configurable.get("checkpoint_ns", ""),
                "checkpoint_id": configurable.get("checkpoint_id"),
                "checkpoint_map": configurable.get("checkpoint_map") or {},
            }
        }

    def delete_thread(self, thread_id: str) -> None:
        rec = self.thread_record(thread_id)
        if rec["active_run_id"]:
            self.cancel(rec["active_run_id"])
        self.backend.saver.delete_thread(thread_id)
        self.store.delete(thread_id)

    def copy_thread(self, thread_id: str) -> dict:
        """A new thread with the same metadata and every checkpoint (and its
        pending writes) of this one."""
        rec = self.thread_record(thread_id)
        new_id = str(uuid.uuid4())
        metadata = dict(rec["metadata"])
        graph = self.thread_graph(rec)
        if graph:
            metadata.setdefault("graph_id", graph)
        self.store.create(new_id, metadata)
        saver = self.backend.saver
        saved = list(saver.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}))
        for tup in reversed(saved):
            parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            config: dict = {"configurable": {"thread_id": new_id, "checkpoint_ns": ""}}
            if parent:
                config["configurable"]["checkpoint_id"] = parent
            versions = dict(tup.checkpoint.get("channel_versions") or {})
            stored = saver.put(config, tup.checkpoint, dict(tup.metadata or {}), versions)
            by_task: dict[str, list] = {}
            for task_id, channel, value in tup.pending_writes or []:
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                saver.put_writes(stored, writes, task_id)
        return self.thread_json(self.thread_record(new_id))

    # -- runs --------------------------------------------------------------------------
    def run_json(self, run: Run) -> dict:
        api = run.options.get("api") or {}
        return {
            "run_id": run.run_id,
            "thread_id": run.thread_id,
            "assistant_id": api.get("assistant_id") or assistant_id(run.graph),
            "created_at": iso(run.created_at),
            "updated_at": iso(run.updated_at),
            "status": RUN_STATUS.get(run.status, run.status),
            "metadata": api.get("metadata") or {},
            "multitask_strategy": run.options.get("multitask_strategy") or DEFAULT_STRATEGY,
            "kwargs": api.get("kwargs") or {},
        }

    def get_run(self, thread_id: str, run_id: str) -> Run:
        run = self.runs.get_run(run_id)
        if run is None or run.thread_id != thread_id:
            raise not_found(f"Run {run_id} not found on thread {thread_id}")
        return run

    def latest_checkpoint_id(self, thread_id: str) -> Optional[str]:
        tup = self.backend.saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        return tup.config["configurable"]["checkpoint_id"] if tup else None

    def create_run(self, thread_id: Optional[str], body: RunCreate, *, answered: bool = True) -> Run:
        """Create the run and start it (or queue it behind the thread's
        active run, per ``multitask_strategy``).

        Round trips: a stateless run costs one transaction (the run, with
        its new thread) and one broker message; a run on a thread adds the
        thread's read and its latest checkpoint id (and a metadata write the
        first time the thread meets a graph). ``answered``: the caller
        streams or waits for the run (else it runs in the background, and
        a stateless run's thread stays for a later join)."""
        graph = self.resolve_graph(body.assistant_id)
        labels = {"graph_id": graph, "assistant_id": assistant_id(graph)}
        temporary = thread_id is None
        rec: Optional[ThreadRecord] = None
        if temporary:
            # A new thread: no row to read, no checkpoint to roll back to.
            thread_id = str(uuid.uuid4())
            if body.on_completion == "keep":
                self.store.create(thread_id, labels, fresh=True)
        else:
            rec = self.store.get(thread_id)
            if rec is None and body.if_not_exists != "create":
                raise not_found(f"Thread with ID {thread_id} not found")
            if rec is None or any(rec["metadata"].get(k) != v for k, v in labels.items()):
                self.store.merge_metadata(thread_id, labels)
        run_input = _command(body.command) if body.command is not None else body.input
        strategy = body.multitask_strategy or DEFAULT_STRATEGY
        requested = body.modes()
        config = body.config or {}
        configurable = {
            k: v for k, v in {**(config.get("configurable") or {}), **(body.context or {})}.items()
            if k not in ("thread_id", "checkpoint_ns", "checkpoint_map") and isinstance(v, (str, int, float, bool, type(None)))
        }  # fmt: skip
        fork_from = body.checkpoint_id or (body.checkpoint.checkpoint_id if body.checkpoint else None)
        if fork_from:
            configurable["checkpoint_id"] = fork_from
        rollback_clears = False
        if strategy == "rollback" and rec and rec["status"] == "busy" and rec["active_run_id"] and not fork_from:
            active = self.runs.get_run(rec["active_run_id"])
            target = ((active.options.get("api") or {}).get("rollback_to")) if active else None
            if target:
                configurable["checkpoint_id"] = target
            else:
                rollback_clears = True
        options = {
            "stream_modes": _worker_modes(requested),
            "interrupt_before": body.interrupt_before,
            "interrupt_after": body.interrupt_after,
            "recursion_limit": config.get("recursion_limit"),
            "configurable": configurable,
            "multitask_strategy": strategy,
            "subgraphs": body.stream_subgraphs,
            # LangGraph's default: the workers store a slice of steps together.
            "durability": body.durability or "async",
            # A stateless run's thread goes with the run's end, in the
            # worker's transaction that ends it (as LangGraph's server does).
            "on_completion": "delete" if temporary and answered and body.on_completion != "keep" else None,
            "api": {
                "assistant_id": assistant_id(graph),
                "metadata": body.metadata or {},
                "stream_modes": requested,
                "subgraphs": body.stream_subgraphs,
                "rollback_to": None if temporary else self.latest_checkpoint_id(thread_id),
                "temporary": temporary and body.on_completion != "keep",
                "kwargs": jsonable(
                    {
                        "input": body.input,
                        "command": body.command.model_dump() if body.command else None,
                        "config": config,
                        "stream_mode": requested,
                        "interrupt_before": body.interrupt_before,
                        "interrupt_after": body.interrupt_after,
                        "subgraphs": body.stream_subgraphs,
                    }
                ),
            },
        }
        busy = f"thread {thread_id!r} is busy with run" if strategy == "reject" else None
        run, claimed = lifecycle.submit(
            self.runs, thread_id=thread_id, graph=graph, kind="start", input=run_input, options=options, busy_error=busy,
            new_thread=temporary, thread_known=rec is not None or (temporary and body.on_completion == "keep"),
        )
        if claimed:
            run_end.send_start(self.backend, run.run_id)
            return run
        if strategy == "reject":
            active_id = (self.runs.get_thread(thread_id) or {}).get("active_run_id")
            raise ApiError(
                409,
                f"Thread {thread_id} is already running a task (run {active_id}). Wait for it to finish "
                "or choose a different multitask strategy.",
            )
        if strategy in ("interrupt", "rollback"):
            self._stop_active(thread_id, run.run_id, clear=rollback_clears)
        run_end.start_next_enqueued(self.backend, thread_id)
        return run

    def _stop_active(self, thread_id: str, new_run_id: str, *, clear: bool) -> None:
        """Cancel the thread's active run and wait (bounded) until it has let
        go of the thread; with ``clear`` (a rollback of a run that started the
        thread), the transaction that frees it drops the thread's checkpoints."""
        deadline = time.monotonic() + INTERRUPT_WAIT_SECONDS
        while time.monotonic() < deadline:
            thread = self.runs.get_thread(thread_id) or {}
            active = thread.get("active_run_id")
            if thread.get("status") != "busy" or active in (None, new_run_id):
                break
            try:
                self.client.cancel(active, roll_back={"after": None} if clear else None)
            except Exception:  # noqa: BLE001 - it ended meanwhile
                pass
            time.sleep(0.05)

    def cancel(self, run_id: str, action: str = "interrupt", *, missing_ok: bool = False) -> bool:
        """Cancel an active run; False if it has ended. ``missing_ok``: a
        run that is gone ended too (a stateless run's record goes with its
        thread when the run ends)."""
        run = self.runs.get_run(run_id)
        if run is None:
            if missing_ok:
                return False
            raise not_found(f"Run {run_id} not found")
        if run.status not in ACTIVE:
            return False
        if action != "rollback":
            return self.client.cancel(run_id)
        # What LangGraph's server does for action="rollback": the thread as
        # it was before the run, and no record of the run. The checkpoints
        # the run stored go in the transaction that frees the thread (a run
        # enqueued behind it starts only after), see lifecycle.release_ended.
        cancelled = self.client.cancel(run_id, roll_back={"after": (run.options.get("api") or {}).get("rollback_to")})
        self._wait_released(run)
        self._forget(run)
        return cancelled

    def _forget(self, run: Run) -> None:
        """A rolled-back run: its thread's status as its checkpoint now
        says (unless another run holds it already), and no record of it."""
        rest = run_end.resting_status(self.backend, run.thread_id, run.graph, ThreadStatus.IDLE)
        lifecycle.rest(self.runs, run.thread_id, rest)
        self.store.delete_run(run.run_id)

    def _wait_released(self, run: Run, timeout: float = INTERRUPT_WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            thread = self.runs.get_thread(run.thread_id) or {}
            if thread.get("active_run_id") != run.run_id:
                return
            time.sleep(0.05)

    def finish_temporary(self, run: Run) -> None:
        """A stateless run's thread is deleted once the run ends (one
        transaction)."""
        if (run.options.get("api") or {}).get("temporary"):
            self.store.delete(run.thread_id, with_checkpoints=True)

    def final_status(self, run_id: str) -> Optional[tuple[str, Optional[str]]]:
        """The run's end from its record (None while it runs). A record
        that is gone went with its thread: a stateless run's thread is
        deleted as the run ends, and its stream says how (a reader asks
        here only when the stream is silent, and waits for its end event a
        grace period longer)."""
        run = self.runs.get_run(run_id)
        if run is None:
            return "error", f"run {run_id} and its thread were deleted; its end event was lost"
        return (run.status, run.error) if run.status in FINAL else None


@lru_cache(maxsize=256)
def _compiled(client: Client, graph: str) -> Any:
    try:
        return client._graph(graph)
    except GraphNotRegisteredError as exc:
        raise not_found(str(exc)) from exc


def _worker_modes(requested: list[str]) -> list[str]:
    """What the workers must publish: the requested modes (renamed), plus
    ``values`` (the run's output, and the interrupts it stopped at)."""
    modes = ["values"]
    for requested_mode in requested:
        for mode in WORKER_MODES.get(requested_mode, (requested_mode,)):
            if mode not in modes:
                modes.append(mode)
    return modes


def _send(packet: Any) -> Any:
    """A ``goto`` entry: a node name, or ``{"node": ..., "input": ...}`` (a Send)."""
    if isinstance(packet, str):
        return packet
    if isinstance(packet, dict) and isinstance(packet.get("node"), str):
        return Send(packet["node"], packet.get("input", packet.get("arg")))
    raise ApiError(422, f"command.goto entries are node names or {{'node': ..., 'input': ...}}, not {packet!r}")


def _command(body: CommandBody) -> Command:
    goto: Any = body.goto or ()
    if isinstance(goto, list):
        goto = [_send(g) for g in goto]
    elif goto:
        goto = _send(goto)
    update = body.update
    if isinstance(update, list):
        if not all(isinstance(u, (list, tuple)) and len(u) == 2 and isinstance(u[0], str) for u in update):
            raise ApiError(422, "command.update is an object or a list of [key, value] pairs")
        update = [tuple(u) for u in update]
    elif update is not None and not isinstance(update, dict):
        raise ApiError(422, "command.update is an object or a list of [key, value] pairs")
    return Command(resume=body.resume, update=update, goto=goto)
