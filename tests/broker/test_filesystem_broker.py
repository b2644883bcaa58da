"""The embedded broker under concurrency: one sender, two consuming
processes polling the same folder, every message delivered exactly once.

kombu's stock filesystem transport fails this (a reader claims a file the
sender has created but not yet written and drops it as unreadable: about one
message in thirty here), which is how an embedded run could wait forever for
a task no worker ever got."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from lgdist.distributed.app import celery_config
from lgdist.client import Client
from lgdist.distributed.filesystem_broker import CLAIMED_FOLDER, queued_messages, stall_report
from lgdist.settings import Settings

pytestmark = pytest.mark.timeout(300)

TRANSPORT = "lgdist.distributed.filesystem_broker:Transport"
MESSAGES = 1500


def _options(folder: Path) -> dict:
    return {
        "data_folder_in": str(folder), "data_folder_out": str(folder),
        "control_folder": str(folder / "control"), "store_processed": False,
    }  # fmt: skip


def _consume(folder: Path, results: Any, finished: Any) -> None:
    got: list[int] = []
    failures: list[str] = []
    with Connection("filesystem://", transport=TRANSPORT, transport_options=_options(folder)) as conn:
        channel = conn.default_channel
        while not finished.is_set():
            try:
                got.append(channel._get("q")["i"])
            except Empty:
                time.sleep(0.001)
            except Exception as exc:  # noqa: BLE001 - a lost message: count it, keep polling
                failures.append(repr(exc))
    results.put(("done", got, failures))


def test_two_consumers_get_every_message_exactly_once(tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    (folder / "control").mkdir(parents=True)
    ctx = mp.get_context("fork")
    results, finished = ctx.Queue(), ctx.Event()
    consumers = [ctx.Process(target=_consume, args=(folder, results, finished)) for _ in range(2)]
    for proc in consumers:
        proc.start()
    try:
        with Connection("filesystem://", transport=TRANSPORT, transport_options=_options(folder)) as conn:
            for i in range(MESSAGES):
                conn.default_channel._put("q", {"i": i})
        deadline = time.monotonic() + 120
        while queued_messages(folder, "q") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not queued_messages(folder, "q"), "consumers stopped taking messages"
    finally:
        finished.set()
    reports = [results.get(timeout=60) for _ in consumers]
    for proc in consumers:
        proc.join(timeout=30)
    received = [i for _, got, _ in reports for i in got]
    failures = [f for _, _, fs in reports for f in fs]
    assert failures == []
    assert sorted(received) == list(range(MESSAGES))
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]
    assert not list((folder / CLAIMED_FOLDER).iterdir())


def test_the_embedded_configuration_uses_the_atomic_transport(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", broker_url=None, result_backend=None, database_url=None)
    config = celery_config(settings)
    assert config["broker_url"] == "filesystem://"
    assert config["broker_transport"] == TRANSPORT
    assert (settings.broker_folder() / CLAIMED_FOLDER).is_dir()


def test_a_stall_report_says_where_the_messages_are(tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    (folder / "control").mkdir(parents=True)
    assert "no message is waiting" in stall_report(folder)
    with Connection("filesystem://", transport=TRANSPORT, transport_options=_options(folder)) as conn:
        conn.default_channel._put("nobody-listens", {"i": 1})
        queued = stall_report(folder)
        assert "1 message(s) still queued for queue 'nobody-listens'" in queued
        assert str(queued_messages(folder, "nobody-listens")[0]) in queued
        assert conn.default_channel._get("nobody-listens") == {"i": 1}
    assert "no message is waiting" in stall_report(folder)


def test_a_client_timeout_on_the_embedded_broker_says_where_the_message_is(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home", graphs="memories=workers.memories:graph", default_queue="lgdist-no-worker",
        broker_url=None, result_backend=None, database_url=None, store_url=None,
    )  # fmt: skip
    client = Client(settings)
    client.backend.runs.setup()
    try:
        run_id = client.submit("memories", {"user": "ada", "question": "cello"})
        with pytest.raises(TimeoutError, match="still queued for queue 'lgdist-no-worker'"):
            client.wait(run_id, timeout=0.5)
        with pytest.raises(TimeoutError, match="still queued for queue 'lgdist-no-worker'"):
            list(client.events(run_id, timeout=0.5))
    finally:
        client.backend.saver.engine.dispose()
