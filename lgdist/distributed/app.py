"""The Celery application: JSON only, late acks, one message at a time.

Why these settings: ``task_acks_late`` + ``task_reject_on_worker_lost`` give
at-least-once delivery when a worker dies mid-task (lgdist makes that
exactly-once for state); ``worker_prefetch_multiplier=1`` keeps a busy worker
from hoarding messages other workers could run; JSON-only ``accept_content``
refuses every non-JSON serializer on the wire.
"""

from __future__ import annotations

from typing import Optional

from celery import Celery
from celery.app.amqp import AMQP
from kombu import Queue

from lgdist.distributed.filesystem_broker import CLAIMED_FOLDER
from lgdist.settings import Settings, get_settings


def celery_config(settings: Settings) -> dict:
    broker = settings.resolved_broker_url()
    config: dict = {
        "broker_url": broker,
        "result_backend": settings.resolved_result_backend(),
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # No traffic no one reads: no STARTED results (nothing waits on
        # them), and task events only while Flower runs (it switches them
        # on in the workers with a broadcast every few seconds).
        "task_track_started": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "result_expires": 3600,
        "task_default_queue": settings.default_queue,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
    }
    if settings.embedded:
        folder = settings.broker_folder()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "processed").mkdir(exist_ok=True)
        (folder / "control").mkdir(exist_ok=True)
        (folder / CLAIMED_FOLDER).mkdir(exist_ok=True)
        # kombu's filesystem transport, with atomic sends and claims: its
        # own loses messages when a worker polls while a client writes
        # (see filesystem_broker). The URL stays ``filesystem://``.
        config["broker_transport"] = "lgdist.distributed.filesystem_broker:Transport"
        config["broker_transport_options"] = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"),
            # kombu writes its exchange tables to ./control unless told:
            # every embedded-broker file stays under LGDIST_HOME.
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
        # Non-Redis result backends join chords by polling (chord_unlock).
        config["result_chord_retry_interval"] = 0.1
        settings.home.mkdir(parents=True, exist_ok=True)
    elif broker.startswith(("redis://", "rediss://")):
        config["broker_transport_options"] = {"visibility_timeout": settings.visibility_timeout}
        config["result_backend_transport_options"] = {"visibility_timeout": settings.visibility_timeout}
    return config


class _ShadowNamedAMQP(AMQP):
    """Celery's AMQP, except that a task's ``task-sent`` event carries its
    shadow name (``lgdist.run_node[agent]``) like the worker's events do.
    Events of one task come from different processes and may arrive out of
    order; Flower merges a late ``task-sent`` over the others, so without
    this a node task sometimes shows as plain ``lgdist.run_node``."""

    def as_task_v2(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        message = super().as_task_v2(*args, **kwargs)
        shadow = message.headers.get("shadow")
        if shadow and message.sent_event:
            message.sent_event["name"] = shadow
        return message


def create_app(settings: Optional[Settings] = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("lgdist", amqp=_ShadowNamedAMQP)
    app.conf.update(celery_config(settings))
    # Each queue gets its own routing key: without one Celery binds every
    # queue with the default key, so a message routed by exchange + key to
    # the default queue would also be copied into every node queue.
    app.conf.task_queues = [Queue(q, routing_key=q) for q in settings.worker_queues()]
    app.conf.lgdist_settings = settings
    return app
