"""``context=...`` reaches nodes and routers on workers as it does locally:
coerced to the graph's ``context_schema`` (``runtime.context.user``)."""

from __future__ import annotations

import uuid

import pytest

from lgdist.client import RemoteGraph
from workers import greeter

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]


def _thread() -> dict:
    return {"configurable": {"thread_id": f"context-{uuid.uuid4().hex[:12]}"}}


@pytest.mark.parametrize("context", [{"user": "ada"}, {"user": "bob", "lang": "fr"}, greeter.Caller(user="cy", lang="de")])
def test_remote_nodes_and_routers_see_the_context_as_local_ones_do(client, context):
    remote = RemoteGraph("greeter", client=client)
    local = greeter.build().compile()
    expected = local.invoke({"log": []}, context=context)
    assert remote.invoke({"log": []}, _thread(), context=context) == expected
    assert expected["log"][0].endswith("(Caller)")


def test_a_remote_run_without_context_gives_nodes_none(client):
    remote = RemoteGraph("greeter", client=client)
    with pytest.raises(Exception, match="'NoneType' object has no attribute 'user'"):
        remote.invoke({"log": []}, _thread())
