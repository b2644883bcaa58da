"""The ``lgdist`` command's own checks, without any service: ``config``
prints valid JSON, and ``flower`` refuses to serve an open UI."""

from __future__ import annotations

import json

import pytest

from lgdist.cli import main
from lgdist.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("LGDIST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LGDIST_DATABASE_URL", "postgresql://user:secret@db.example/lgdist")
    monkeypatch.delenv("LGDIST_FLOWER_AUTH", raising=False)
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_config_prints_one_json_document_with_secrets_masked(capsys, tmp_path):
    assert main(["config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["home"] == str(tmp_path / "home")
    assert printed["database_url"] == "postgresql://user:***@db.example/lgdist"


def test_flower_without_credentials_refuses_to_start(capsys):
    assert main(["flower", "--port=1"]) == 2
    assert "refusing to serve Flower without authentication" in capsys.readouterr().err


def test_worker_with_a_graph_that_cannot_be_imported_fails_at_start(monkeypatch, capsys):
    monkeypatch.setenv("LGDIST_GRAPHS", "agent=workers.no_such_module:graph")
    get_settings.cache_clear()
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "LGDIST_GRAPHS entry agent=workers.no_such_module:graph cannot be loaded" in err
    assert "ModuleNotFoundError" in err


def test_worker_with_a_malformed_graph_list_fails_at_start(monkeypatch, capsys):
    monkeypatch.setenv("LGDIST_GRAPHS", "agent-without-target")
    get_settings.cache_clear()
    assert main(["worker"]) == 2
    assert "expected name=module:attribute" in capsys.readouterr().err


def test_worker_with_no_graphs_fails_at_start_and_says_how_to_name_one(monkeypatch, capsys):
    monkeypatch.delenv("LGDIST_GRAPHS", raising=False)
    get_settings.cache_clear()
    assert get_settings().graphs == ""  # a library serves no example graph unless told to
    assert main(["worker"]) == 2
    assert "no graphs to run: set LGDIST_GRAPHS=" in capsys.readouterr().err


def test_an_unknown_graph_is_a_clear_error_naming_the_registered_ones():
    from lgdist.distributed.registry import GraphRegistry
    from lgdist.errors import GraphNotRegisteredError

    registry = GraphRegistry.from_spec("support-agent=lgdist.examples.support_agent:graph")
    with pytest.raises(GraphNotRegisteredError, match="graph 'nope' is not registered on this worker; registered: support-agent"):
        registry.get("nope")
    with pytest.raises(GraphNotRegisteredError, match=r"registered: \(none\)"):
        GraphRegistry.from_spec("").get("nope")
