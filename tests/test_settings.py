"""Settings parsed from their ``LGDIST_*`` strings."""

from lgdist.settings import Settings


def test_node_queues_route_named_nodes_and_leave_others_on_the_default_queue():
    settings = Settings(node_queues=" action = io, tools=io ,bad, =x, y=,", default_queue="main")
    assert settings.node_routes() == {"action": "io", "tools": "io"}
    assert settings.queue_for("tools") == "io"
    assert settings.queue_for("agent") == "main"
    assert settings.queue_names() == ["io", "main"]
    assert settings.worker_queues() == ["celery", "io", "main"]


def test_node_routes_is_a_fresh_dict_each_call():
    settings = Settings(node_queues="a=q")
    settings.node_routes()["a"] = "changed"
    assert settings.queue_for("a") == "q"


def test_a_copy_with_other_node_queues_routes_by_its_own():
    settings = Settings(node_queues="a=q")
    assert settings.queue_for("a") == "q"
    other = settings.model_copy(update={"node_queues": "a=r"})
    assert other.queue_for("a") == "r"
    assert settings.queue_for("a") == "q"
