"""LangGraph's state API of a compiled graph (``get_state``,
``get_state_history``, ``update_state`` and their async forms): which graph
and checkpoint a config addresses; reading a snapshot is
:mod:`lgdist.graph.snapshot`, writing an update :mod:`lgdist.graph.update`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, Optional

from langchain_core.runnables import RunnableConfig

from lgdist.checkpoint.base import BaseCheckpointSaver
from lgdist.engine.namespace import recast_namespace, with_checkpoint_map
from lgdist.graph.snapshot import build_snapshot, empty_snapshot
from lgdist.graph.update import apply_update
from lgdist.types import StateSnapshot

if TYPE_CHECKING:
    from lgdist.graph.compiled import CompiledStateGraph

_USER_CONFIG_KEYS = ("thread_id", "checkpoint_ns", "checkpoint_id")


class StateMethods:
    """The state API, mixed into :class:`~lgdist.graph.compiled.CompiledStateGraph`
    (it reads ``self.spec`` and ``self.checkpointer``)."""

    def _require_saver(self) -> BaseCheckpointSaver:
        if self.checkpointer is None:
            raise ValueError("No checkpointer set")
        return self.checkpointer

    def _subgraph_at(self, checkpoint_ns: str) -> Optional["CompiledStateGraph"]:
        """The subgraph whose checkpoints a namespace names (``"sub:<id>"``,
        ``"outer:<id>|inner:<id>"``), found through the nodes that run it."""
        graph: Any = self
        for name in recast_namespace(checkpoint_ns).split("|"):
            node = graph.spec.nodes.get(name)
            graph = node.subgraph if node is not None else None
            if graph is None:
                return None
        return graph

    def _state_target(self, config: RunnableConfig) -> tuple["CompiledStateGraph", RunnableConfig]:
        """Which graph a state method's config addresses, and the config in
        that graph's terms (the root namespace when none is given)."""
        cfg = _user_config(config)
        cfg["configurable"].setdefault("checkpoint_ns", "")
        ns = cfg["configurable"]["checkpoint_ns"]
        target = self._subgraph_at(ns) if ns else None
        return (target or self), cfg

    def state_at(self, saver: BaseCheckpointSaver, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The state at ``config`` (its namespace, its ``checkpoint_id`` or
        the latest one) in ``saver``, read with this graph's channels."""
        saved = saver.get_tuple(config)
        if saved is None:
            return empty_snapshot(self, config)
        # Asking for a given checkpoint gets its record; asking for the thread
        # gets where it stands now.
        live = "checkpoint_id" not in config.get("configurable", {})
        return build_snapshot(self, saved, saver=saver, live=live, subgraphs=subgraphs)

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its latest checkpoint (or ``checkpoint_id``).
        A config whose ``checkpoint_ns`` names a subgraph task reads that
        subgraph's state; ``subgraphs=True`` fills in the state of the
        subgraphs the pending tasks run."""
        saver = self._require_saver()
        target, cfg = self._state_target(config)
        snap = target.state_at(saver, cfg, subgraphs=subgraphs)
        if snap.metadata is None and target is self:
            return empty_snapshot(self, config)  # names the thread as the caller did
        return snap

    def get_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: Optional[dict] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first (a subgraph's when the
        config's ``checkpoint_ns`` names one)."""
        saver = self._require_saver()
        target, cfg = self._state_target(config)
        for saved in saver.list(cfg, filter=filter, before=before, limit=limit):
            yield build_snapshot(target, saved, saver=saver)

    def update_state(
        self,
        config: RunnableConfig,
        values: Any,
        as_node: Optional[str] = None,
        task_id: Optional[str] = None,
    ) -> RunnableConfig:
        """Write ``values`` as if node ``as_node`` returned them; saves a new
        checkpoint (source ``update``) whose parent is ``config``'s."""
        saver = self._require_saver()
        target, cfg = self._state_target(config)
        ns = cfg["configurable"]["checkpoint_ns"]
        if ns and target is self:
            raise ValueError(f"Subgraph {recast_namespace(ns)} not found")
        parents = {
            k: v for k, v in ((config.get("configurable") or {}).get("checkpoint_map") or {}).items() if k != ns
        }
        saved = apply_update(target.spec, saver, cfg, values, as_node, parents=parents, caller_config=config)
        return with_checkpoint_map(saved, {"parents": parents})

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config, subgraphs=subgraphs)

    async def aget_state_history(self, config: RunnableConfig, **kwargs: Any) -> AsyncIterator[StateSnapshot]:
        items = await asyncio.to_thread(lambda: list(self.get_state_history(config, **kwargs)))
        for item in items:
            yield item

    async def aupdate_state(self, config: RunnableConfig, values: Any, as_node: Optional[str] = None, task_id: Optional[str] = None) -> RunnableConfig:
        return await asyncio.to_thread(self.update_state, config, values, as_node)


def _user_config(config: RunnableConfig) -> RunnableConfig:
    configurable = dict(config.get("configurable") or {})
    return {"configurable": {k: configurable[k] for k in _USER_CONFIG_KEYS if k in configurable}}
