"""Build checkpoints from channels and channels from checkpoints."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

from lgdist.engine.channels import MISSING, BaseChannel
from lgdist.engine.ids import new_checkpoint_id

CHECKPOINT_VERSION = 1


# Config keys that never become checkpoint metadata: the checkpoint's own
# address and the per-task metadata LangGraph adds for nodes.
_NOT_METADATA = frozenset(
    {
        "thread_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
    }
)


def checkpoint_metadata(config: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict:
    """``metadata`` plus what LangGraph copies from the run's config into
    every checkpoint's metadata: the scalar values (str, int, float, bool) of
    ``config["metadata"]`` and then ``config["configurable"]``, minus private
    (``__``) keys and the checkpoint's address; NUL characters are dropped
    from strings (Postgres cannot store them)."""
    merged = {k: v.replace("\u0000", "") if isinstance(v, str) else v for k, v in metadata.items()}
    for source in (config.get("metadata"), config.get("configurable")):
        for key, value in (source or {}).items():
            if key in merged or key in _NOT_METADATA or key.startswith("__"):
                continue
            if isinstance(value, str):
                merged[key] = value.replace("\u0000", "")
            elif isinstance(value, (int, float, bool)):
                merged[key] = value
    return merged


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def next_version(current: Optional[str], channel: Any = None) -> str:
    """The channel version after ``current`` when no checkpointer picks it
    (the checkpointers add a random suffix; see BaseCheckpointSaver)."""
    n = int(str(current).split(".")[0]) if current is not None else 0
    return f"{n + 1:032}.0"


def empty_checkpoint() -> dict:
    return {
        "v": CHECKPOINT_VERSION,
        "id": new_checkpoint_id(),
        "ts": now_iso(),
        "channel_values": {},
        "channel_versions": {},
        "versions_seen": {},
        "updated_channels": None,
    }


def copy_checkpoint(checkpoint: Mapping[str, Any]) -> dict:
    return {
        **checkpoint,
        "channel_values": dict(checkpoint["channel_values"]),
        "channel_versions": dict(checkpoint["channel_versions"]),
        "versions_seen": {k: dict(v) for k, v in checkpoint["versions_seen"].items()},
    }


def create_checkpoint(
    previous: Mapping[str, Any],
    channels: Optional[Mapping[str, BaseChannel]],
    *,
    updated_channels: Optional[set[str]] = None,
    changed: Optional[Iterable[str]] = None,
) -> dict:
    """A new checkpoint (fresh id and timestamp) holding the channels' values
    and the previous checkpoint's versions bookkeeping.

    ``changed``, for a caller that knows ``previous``'s values were the
    channels' before this step, names the channels whose version the step
    bumped: only their values are read again (O(channels touched))."""
    if channels is None:
        values = dict(previous["channel_values"])
    elif changed is not None:
        values = dict(previous["channel_values"])
        for name in changed:
            value = channels[name].checkpoint() if name in channels else MISSING
            if value is MISSING:
                values.pop(name, None)
            else:
                values[name] = value
    else:
        values = {}
        for name, chan in channels.items():
            if name not in previous["channel_versions"]:
                continue
            value = chan.checkpoint()
            if value is not MISSING:
                values[name] = value
    return {
        "v": CHECKPOINT_VERSION,
        "id": new_checkpoint_id(),
        "ts": now_iso(),
        "channel_values": values,
        "channel_versions": dict(previous["channel_versions"]),
        # Outer copy only: the per-node dicts are replaced, never mutated,
        # by apply_writes and mark_resumed (see there), so sharing them is
        # safe and keeps a step O(changed nodes) instead of O(all nodes).
        "versions_seen": dict(previous["versions_seen"]),
        "updated_channels": sorted(updated_channels) if updated_channels is not None else None,
    }


def channels_from_checkpoint(
    prototypes: Mapping[str, BaseChannel], checkpoint: Mapping[str, Any]
) -> dict[str, BaseChannel]:
    values = checkpoint["channel_values"]
    return {
        name: proto.from_checkpoint(values.get(name, MISSING)) for name, proto in prototypes.items()
    }
