"""The long-term memory store on real workers: every worker's nodes see one
store (in the checkpoint database), with the semantic index the workers'
environment names, and the client reads the same store."""

from __future__ import annotations

import pytest

from lgdist.client import RemoteGraph

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

FACTS = [
    "ada likes green tea",
    "ada writes compilers in ocaml",
    "ada walks her dog at noon",
    "ada plays the cello",
    "ada hates rainy mondays",
    "ada reads about rust",
]


def test_nodes_on_every_worker_share_one_store(cluster, client):
    user = cluster.thread_id("user")
    remote = RemoteGraph("memories", client=client)
    thread = {"configurable": {"thread_id": cluster.thread_id("mem")}}
    out = remote.invoke({"user": user, "facts": FACTS, "question": "green tea"}, thread)

    # Each fact was put by a remember task; the tasks ran in more than one
    # worker process, and recall (one more task) saw every put.
    assert len(out["workers"]) == len(FACTS)
    assert len(set(out["workers"])) > 1, f"all remember tasks ran in one process: {out['workers']}"
    assert out["recalled"][0] == "ada likes green tea"
    assert out["namespaces"] == [["memories", user]] or ["memories", user] in out["namespaces"]

    stored = client.backend.store.search(("memories", user), limit=100)
    assert sorted(item.value["text"] for item in stored) == sorted(FACTS)
    assert {item.value["by"] for item in stored} == set(out["workers"])

    # Another thread (a new conversation) recalls what the first one stored.
    other = {"configurable": {"thread_id": cluster.thread_id("mem")}}
    again = remote.invoke({"user": user, "question": "compilers"}, other)
    assert again["recalled"][0] == "ada writes compilers in ocaml"
    assert again["workers"] == []


def test_client_writes_are_seen_by_worker_nodes(cluster, client):
    user = cluster.thread_id("user")
    client.backend.store.put(("memories", user), "from-client", {"text": "ada moved to lisbon"})
    remote = RemoteGraph("memories", client=client)
    out = remote.invoke({"user": user, "question": "lisbon"}, {"configurable": {"thread_id": cluster.thread_id("mem")}})
    assert out["recalled"] == ["ada moved to lisbon"]
