"""The shared memory store in the embedded default (no server: kombu's
filesystem broker, SQLite for results, checkpoints and the store), on two
real ``lgdist worker`` processes: their nodes share one store in the
checkpoint database file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from cluster_machinery import with_root_on_path
from lgdist.client import Client, RemoteGraph
from lgdist.settings import Settings

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(240)]

FACTS = ["ada likes green tea", "ada plays the cello", "ada reads about rust"]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[Client, list[subprocess.Popen]]]:
    queue = f"lgdist-embedded-{uuid.uuid4().hex[:8]}"
    lgdist_env = {
        "LGDIST_HOME": str(tmp_path / "home"),
        "LGDIST_GRAPHS": "memories=workers.memories:graph",
        "LGDIST_STORE_INDEX": "workers.memories:STORE_INDEX",
        "LGDIST_DEFAULT_QUEUE": queue,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGDIST_")}
    env.update(lgdist_env, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = with_root_on_path(env.get("PYTHONPATH"))  # workers/ is not installed
    settings = Settings(
        home=tmp_path / "home", graphs=lgdist_env["LGDIST_GRAPHS"], store_index=lgdist_env["LGDIST_STORE_INDEX"],
        default_queue=queue, broker_url=None, result_backend=None, database_url=None, store_url=None,
    )  # fmt: skip
    assert settings.embedded
    client = Client(settings)
    client.backend.runs.setup()
    procs = []
    for i in (1, 2):
        log = open(tmp_path / f"worker{i}.log", "wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "lgdist.cli", "worker", "-P", "solo", "-n", f"embedded{i}-{queue}@%h", "--loglevel=INFO"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        ))  # fmt: skip
    try:
        yield client, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        client.backend.saver.engine.dispose()


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(tmp_path.glob("worker*.log")))


def test_embedded_workers_share_the_store_in_the_sqlite_database(embedded: Any, tmp_path: Path) -> None:
    client, _ = embedded
    remote = RemoteGraph("memories", client=client)
    config = {"configurable": {"thread_id": f"emb-{uuid.uuid4().hex[:8]}"}}
    try:
        out = remote.invoke({"user": "ada", "facts": FACTS, "question": "cello"}, config)
    except Exception as exc:  # noqa: BLE001 - the workers' logs say why
        raise AssertionError(f"{exc}\n{_logs(tmp_path)}") from exc
    assert out["recalled"][0] == "ada plays the cello"
    assert client.backend.store.engine is client.backend.saver.engine
    assert str(client.backend.saver.engine.url).endswith("lgdist.db")
    stored = client.backend.store.search(("memories", "ada"))
    assert sorted(i.value["text"] for i in stored) == sorted(FACTS)
    again = remote.invoke({"user": "ada", "question": "rust"}, {"configurable": {"thread_id": f"emb-{uuid.uuid4().hex[:8]}"}})
    assert again["recalled"][0] == "ada reads about rust"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not client.runs(limit=2):
        time.sleep(0.05)
    assert [r["status"] for r in client.runs(limit=2)] == ["success", "success"]
