"""The storing side of :class:`~lgdist.loop.thread_loop.ThreadLoop`: how a
step's checkpoint and its tasks' writes reach the checkpoint store under
each durability mode — before the loop goes on ("sync"), encoded now and
stored on a background thread ("async", see ``write_behind``), or kept in
memory until the run stops ("exit", see :meth:`CheckpointWriter.flush`) —
and how a loop without a checkpointer moves its checkpoint on instead."""

from __future__ import annotations

from typing import Any, Optional

from lgdist.checkpoint.base import Precondition
from lgdist.engine import create_checkpoint, plan_next_step
from lgdist.engine.checkpoint import checkpoint_metadata
from lgdist.engine.ids import new_checkpoint_id


class StepAlreadyFinished(Exception):
    """Internal: the checkpoint for this step exists already (a duplicate
    delivery); the caller stops without side effects."""


class CheckpointWriter:
    """Mixin of ThreadLoop: storing checkpoints and writes."""

    def _save_writes(self, task_id: str, writes: Any) -> None:
        """A task's writes against the current checkpoint: stored now, or
        with durability "exit" when the checkpoint is (see :meth:`flush`)."""
        if self.durability == "exit" and self.unstored:
            self.deferred_writes.append((task_id, list(writes)))
        elif self.write_behind is not None:
            self.write_behind.submit(self.saver.prepare_put_writes(self.checkpoint_config, writes, task_id))  # type: ignore[union-attr]
        else:
            self.saver.put_writes(self.checkpoint_config, writes, task_id)  # type: ignore[union-attr]

    def flush(self) -> None:
        """Store what durability "exit" kept in memory: the latest
        checkpoint and its tasks' writes. Drivers call it when the run stops
        (done, interrupted, failed); with "sync"/"async" there is nothing."""
        if not self.unstored or self.saver is None:
            return
        self.unstored = False
        base = {"thread_id": self._thread_id(), "checkpoint_ns": self.checkpoint_ns}
        parent = self.stored_config or {"configurable": base}
        new_versions = {
            c: v for c, v in self.checkpoint["channel_versions"].items() if self.saved_versions.get(c) != v
        }
        config = self.saver.put(parent, self.checkpoint, self.unstored_metadata, new_versions)
        if config is None:
            return
        self.checkpoint_config = config
        self.parent_config = self.stored_config
        self.saved_versions = dict(self.checkpoint["channel_versions"])
        self.saved_versions_of = self.checkpoint["id"]
        deferred, self.deferred_writes = self.deferred_writes, []
        for task_id, writes in deferred:
            self.saver.put_writes(config, writes, task_id)

    def _put_checkpoint(
        self,
        source: str,
        updated: Optional[set[str]],
        *,
        idempotency_key: Optional[str] = None,
        precondition: Optional[Precondition] = None,
        changed: Optional[set[str]] = None,
    ) -> None:
        """Move on to the step's next checkpoint (``source`` "loop", or
        "input" for the input's): store it as the durability mode says —
        under ``idempotency_key`` and after ``precondition`` when given —
        then stream it. ``updated``: the channels the step wrote;
        ``changed``: those whose version it bumped, when known."""
        if self.saver is None:
            self._advance_unsaved(source, updated)
            return
        new = create_checkpoint(self.checkpoint, self.channels, updated_channels=updated, changed=changed)
        metadata = {"source": source, "step": self.step, "parents": dict(self.parents)}
        parent_config = self.checkpoint_config if "checkpoint_id" in self.checkpoint_config.get(
            "configurable", {}
        ) else None
        stored = self.saver is not None and self._thread_id() is not None
        if stored and self.durability == "exit":
            # Kept in memory; flush() stores the last one, with the parent
            # the thread's last stored checkpoint, as LangGraph does.
            if not self.unstored:
                self.stored_config = parent_config
                self.unstored = True
            self.deferred_writes = []
            self.unstored_metadata = checkpoint_metadata(self.config, metadata)
            stored = False
        if stored:
            # The round-trip budget of a step: this put is its one write
            # transaction (one statement on local Postgres) — the checkpoint,
            # blobs of changed channels only, and the writes of tasks
            # recorded with save=False. Only channels whose version changed
            # since the last stored checkpoint need a new blob. With a
            # write_behind the put is encoded now and stored while the next
            # step runs.
            versions = new["channel_versions"]
            if changed is not None and self.saved_versions_of == self.checkpoint["id"]:
                # The parent is the last stored checkpoint and the step says
                # which versions it bumped: no need to compare every channel.
                new_versions = {c: versions[c] for c in changed}
            else:
                new_versions = {c: v for c, v in versions.items() if self.saved_versions.get(c) != v}
            parent_writes = [(t.id, t.writes) for t in self.unsaved]
            if self.write_behind is not None and idempotency_key is None and precondition is None:
                put = self.saver.prepare_put(  # type: ignore[union-attr]
                    self.checkpoint_config, new, checkpoint_metadata(self.config, metadata), new_versions,
                    previous=self.checkpoint, **({"parent_writes": parent_writes} if parent_writes else {}),
                )
                self.write_behind.submit(put, checkpoint=True)
                config = self._config_of(new)
            else:
                config = self._put_now(new, metadata, new_versions, parent_writes, idempotency_key, precondition)
        else:
            config = self._config_of(new)
        self.parent_config = parent_config
        self.checkpoint = new
        self.checkpoint_config = config
        self.metadata = metadata
        if stored:
            self.saved_versions = dict(new["channel_versions"])
            self.saved_versions_of = new["id"]
        self.unsaved = []
        next_tasks = plan_next_step(
            self.spec, self.checkpoint, self.channels, self.step + 1, checkpoint_ns=self.checkpoint_ns,
            read_inputs=False,
        ) if {"checkpoints", "debug"} & self.modes and self.saver is not None else {}
        self._emit_checkpoint(next_tasks.values())

    def _advance_unsaved(self, source: str, updated: Optional[set[str]]) -> None:
        """The next checkpoint of a loop without a checkpointer: no one
        stores, streams or keeps it, so the loop's own is moved on in place -
        a new id (task ids derive from it) and the channels the next plan
        looks at - with no copy of the versions, no values and no timestamp."""
        checkpoint = self.checkpoint
        checkpoint["id"] = new_checkpoint_id()
        checkpoint["updated_channels"] = sorted(updated) if updated is not None else None
        self.parent_config = self.checkpoint_config if "checkpoint_id" in self.checkpoint_config.get(
            "configurable", {}
        ) else None
        self.checkpoint_config = self._config_of(checkpoint)
        self.metadata = {"source": source, "step": self.step, "parents": self.parents}
        self.unsaved = []

    def _config_of(self, checkpoint: dict) -> dict:
        return {
            "configurable": {
                "thread_id": self._thread_id(),
                "checkpoint_ns": self.checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def _put_now(
        self,
        new: dict,
        metadata: dict,
        new_versions: dict,
        parent_writes: list,
        idempotency_key: Optional[str],
        precondition: Optional[Precondition],
    ) -> dict:
        """Store the step's checkpoint before going on."""
        config = self.saver.put(  # type: ignore[union-attr]
            self.checkpoint_config,
            new,
            # Stored with the run's config metadata; the checkpoints
            # stream shows the loop's own, as LangGraph's does.
            checkpoint_metadata(self.config, metadata),
            new_versions,
            idempotency_key=idempotency_key,
            previous=self.checkpoint,
            **({"precondition": precondition} if precondition is not None else {}),
            **({"parent_writes": parent_writes} if parent_writes else {}),
        )
        if config is None:
            # Another delivery of this step already stored its checkpoint.
            raise StepAlreadyFinished(self.checkpoint["id"])
        return config
