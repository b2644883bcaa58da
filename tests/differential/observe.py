"""Observation helpers shared by the differential scenarios: what of a
snapshot, a history or a stream is compared."""

from __future__ import annotations

from typing import Any, Iterable


def snapshot(graph: Any, config: dict) -> dict:
    """The parts of ``get_state`` that must match."""
    return state(graph.get_state(config))


def state(snap: Any) -> dict:
    return {
        "values": snap.values,
        "next": snap.next,
        "metadata": snap.metadata,
        "tasks": [
            {"name": t.name, "error": t.error, "interrupts": t.interrupts, "result": t.result}
            for t in snap.tasks
        ],
        "interrupts": snap.interrupts,
    }


def history(graph: Any, config: dict) -> list:
    """``get_state_history`` newest first: values, next and step/source."""
    return [
        {
            "values": s.values,
            "next": s.next,
            "source": (s.metadata or {}).get("source"),
            "step": (s.metadata or {}).get("step"),
            "tasks": [t.name for t in s.tasks],
        }
        for s in graph.get_state_history(config)
    ]


def stream(graph: Any, input: Any, config: Any = None, **kwargs: Any) -> list:
    return list(graph.stream(input, config, **kwargs))


def modes(chunks: Iterable[tuple], *keep: str) -> list:
    """Only the chunks of the given modes from a multi-mode stream."""
    return [c for c in chunks if c[0] in keep]
