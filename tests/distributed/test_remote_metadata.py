"""Config metadata and scalar ``configurable`` values land in the metadata
of checkpoints stored by workers, as in the local runtime's."""

from __future__ import annotations

import uuid

import pytest

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.client import RemoteGraph
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]


def _config(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "user": "ada", "n_max": 3}, "metadata": {"origin": "test", "obj": [1]}}


def test_remote_checkpoint_metadata_carries_config_metadata_like_local(client):
    remote = RemoteGraph("counter", client=client)
    local = examples.build_counter().compile(checkpointer=InMemorySaver())
    remote_thread, local_thread = (f"meta-{uuid.uuid4().hex[:12]}" for _ in range(2))
    remote.invoke({"n": 0}, _config(remote_thread))
    local.invoke({"n": 0}, _config(local_thread))
    remote_history = [s.metadata for s in remote.get_state_history({"configurable": {"thread_id": remote_thread}})]
    local_history = [s.metadata for s in local.get_state_history({"configurable": {"thread_id": local_thread}})]
    assert remote_history == local_history
    assert remote_history[0]["origin"] == "test" and remote_history[0]["user"] == "ada"
    assert "obj" not in remote_history[0]
