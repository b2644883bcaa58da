"""Conditional edges: a routing function evaluated after its source node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generator, Optional, Sequence

from langchain_core.runnables.config import patch_config

from lgdist.constants import END, TASKS
from lgdist.engine.spec import Write
from lgdist.errors import InvalidUpdateError, UnknownBranchTargetError
from lgdist.graph.node import as_runnable, is_async_only
from lgdist.graph.schema import literal_values
from lgdist.types import Send


def router_config(config: dict, ctx: Any, index: int) -> dict:
    """The config the ``index``-th conditional edge of a node runs its router
    with: inside the node's run, a child run of it tagged as LangGraph tags it
    (the node's function is step 1 of its sequence, its writes step 2, each
    conditional edge the next step); its own name either way."""
    node_run = getattr(ctx, "node_run", None)
    if node_run is not None:
        return patch_config(config, callbacks=node_run.get_child(f"seq:step:{3 + index}"))
    return {k: v for k, v in config.items() if k != "run_name"}


def trigger_channel(node: str) -> str:
    """The channel whose write makes ``node`` run in the next step."""
    return f"branch:to:{node}"


@dataclass
class Branch:
    """``add_conditional_edges(source, path, path_map)``."""

    path: Any  # a Runnable
    ends: Optional[dict[Any, str]]

    @classmethod
    def create(cls, path: Callable | Any, path_map: Optional[dict | Sequence[str]]) -> "Branch":
        ends: Optional[dict[Any, str]] = None
        if isinstance(path_map, dict):
            ends = dict(path_map)
        elif path_map is not None:
            ends = {name: name for name in path_map}
        elif (values := literal_values(path)) is not None:
            # As in LangGraph, a router's Literal return hint is its path map.
            ends = {value: value for value in values}
        # A lambda router's run is "Unnamed", as in LangGraph.
        name = "Unnamed" if getattr(path, "__name__", None) == "<lambda>" else None
        return cls(as_runnable(path, name), ends)

    def destinations(self, result: Any) -> list[Any]:
        results = result if isinstance(result, (list, tuple)) else [result]
        if self.ends is not None:
            mapped = []
            for r in results:
                if isinstance(r, Send):
                    mapped.append(r)
                    continue
                try:
                    mapped.append(self.ends[r])
                except (KeyError, TypeError):
                    raise UnknownBranchTargetError(
                        f"Branch returned {r!r}, which is not in its path map: {sorted(map(str, self.ends))}"
                    ) from None
            return mapped
        return list(results)

    def route(self, state: Any, config: dict) -> list[Write]:
        result = self.path.invoke(state, config)
        return destinations_to_writes(self.destinations(result))

    async def aroute(self, state: Any, config: dict) -> list[Write]:
        """:meth:`route` in an async run: an async router is awaited, a
        sync one called in place."""
        if is_async_only(self.path):
            result = await self.path.ainvoke(state, config)
        else:
            result = self.path.invoke(state, config)
        return destinations_to_writes(self.destinations(result))


RouteRequests = Generator[tuple, list, list]


def route_sync(requests: RouteRequests) -> list[Write]:
    """Drive a node writer that yields ``(branch, state, config)`` for each
    conditional edge: route each with ``branch.route``; return its writes."""
    try:
        branch, state, config = next(requests)
        while True:
            branch, state, config = requests.send(branch.route(state, config))
    except StopIteration as done:
        return done.value


async def route_async(requests: RouteRequests) -> list[Write]:
    """Async twin of :func:`route_sync` (``await branch.aroute``)."""
    try:
        branch, state, config = next(requests)
        while True:
            branch, state, config = requests.send(await branch.aroute(state, config))
    except StopIteration as done:
        return done.value


def destinations_to_writes(destinations: Sequence[Any], known: Optional[set[str]] = None) -> list[Write]:
    writes: list[Write] = []
    for dest in destinations:
        if isinstance(dest, Send):
            if known is not None and dest.node not in known:
                raise InvalidUpdateError(f"Invalid node name {dest.node!r} in Send")
            writes.append((TASKS, dest))
        elif dest == END or dest is None:
            continue
        elif isinstance(dest, str):
            if known is not None and dest not in known:
                raise InvalidUpdateError(f"Unknown destination {dest!r}; nodes: {sorted(known)}")
            writes.append((trigger_channel(dest), None))
        else:
            raise InvalidUpdateError(f"Invalid routing destination {dest!r}")
    return writes
