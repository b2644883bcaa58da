"""The wire and the store are JSON only; settings never leak credentials."""

from __future__ import annotations

import pathlib

from lgdist.distributed.app import celery_config
from lgdist.settings import Settings, mask_url

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_celery_accepts_and_emits_json_only():
    config = celery_config(Settings(broker_url="redis://127.0.0.1:6379/0"))
    assert config["accept_content"] == ["json"]
    assert config["result_accept_content"] == ["json"]
    assert config["task_serializer"] == config["result_serializer"] == config["event_serializer"] == "json"


def test_late_acks_and_single_prefetch_for_at_least_once_delivery():
    config = celery_config(Settings(broker_url="redis://127.0.0.1:6379/0"))
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1


def test_no_runtime_module_mentions_pickle():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("lgdist", "workers")
        for path in (ROOT / folder).rglob("*.py")
        if "pickle" in path.read_text()
    ]
    assert offenders == []


def test_safe_dict_masks_passwords_in_urls():
    settings = Settings(
        broker_url="redis://:s3cret@redis.internal:6379/0",
        database_url="postgresql://app:hunter2@db:5432/lgdist",
    )
    text = repr(settings.safe_dict())
    assert "s3cret" not in text and "hunter2" not in text
    assert mask_url("postgresql://app:hunter2@db/x") == "postgresql://app:***@db/x"
    assert mask_url("sentinel://:pw@h1:26379;sentinel://:pw@h2:26379") == "sentinel://***"
