"""``/store`` over the SDK: the same long-term memory store the workers'
nodes use (items put by a run are found through the API, and the other way
round); thread-level streams."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def test_store_items_shared_with_the_workers(sdk, server):
    user = server.thread_id("user")
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "memories", input={"user": user, "facts": ["I like tea", "my cat is Tom"]})
    found = sdk.store.search_items(["memories", user], limit=10)["items"]
    assert sorted(i["value"]["text"] for i in found) == ["I like tea", "my cat is Tom"]
    item = sdk.store.get_item(["memories", user], "fact-0")
    assert item["value"]["text"] == "I like tea" and item["namespace"] == ["memories", user]

    sdk.store.put_item(["memories", user], "from-api", {"text": "I fly to Oslo on Friday"})
    result = sdk.runs.wait(sdk.threads.create()["thread_id"], "memories", input={"user": user, "question": "when do I fly to Oslo"})
    assert result["recalled"][0] == "I fly to Oslo on Friday"
    assert ["memories", user] in sdk.store.list_namespaces(prefix=["memories"])["namespaces"]
    assert sdk.store.search_items(["memories", user], filter={"text": "I like tea"})["items"][0]["key"] == "fact-0"

    sdk.store.delete_item(["memories", user], key="from-api")
    with pytest.raises(Exception) as info:
        sdk.store.get_item(["memories", user], "from-api")
    assert getattr(info.value, "status_code", None) == 404


def test_thread_stream_follows_the_threads_run(sdk):
    tid = sdk.threads.create()["thread_id"]
    run = sdk.runs.create(tid, "counter", input={"n": 3}, stream_mode=["values", "updates"])
    parts = list(sdk.threads.join_stream(tid, stream_mode=["values"]))
    values = [p.data for p in parts if p.event == "values"]
    assert values[-1] == {"n": 5, "trail": [3, 4]}
    assert sdk.runs.get(tid, run["run_id"])["status"] == "success"
