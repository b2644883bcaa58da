"""The ``lgdist`` command: run workers and Flower, submit, resume and inspect
threads. Configuration comes from ``LGDIST_*`` environment variables."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional, Sequence

APP = "lgdist.distributed.worker:app"


def _exec_celery(args: list[str]) -> int:
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", "-A", APP, *args]
    return celery_main() or 0


def _plain(value: Any) -> Any:
    """A value as plain JSON data for people: models and dataclasses as
    their fields, tuples and sets as lists, timestamps as ISO 8601."""
    import dataclasses
    import datetime

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if hasattr(value, "_asdict"):
        return _plain(value._asdict())
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def _iso(timestamp: Optional[float]) -> Optional[str]:
    import datetime

    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).isoformat(timespec="seconds")


def _json(value: Any) -> None:
    """One JSON document on stdout."""
    print(json.dumps(_plain(value), indent=2))


def _run_for_people(run: dict) -> dict:
    return {**run, "created_at": _iso(run.get("created_at")), "updated_at": _iso(run.get("updated_at"))}


def _parse_value(text: Optional[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _check_worker_settings() -> Optional[str]:
    """What makes a worker unable to work, said before it starts: every
    graph in ``LGDIST_GRAPHS`` is imported now (forked pool processes
    inherit them). Warns loudly when the broker is the embedded one."""
    from lgdist.distributed.registry import GraphRegistry
    from lgdist.errors import GraphLoadError
    from lgdist.settings import get_settings

    settings = get_settings()
    try:
        registry = GraphRegistry.from_spec(settings.graphs)
        registry.load_all()
    except (ValueError, GraphLoadError) as exc:
        return str(exc)
    if not registry.names():
        return (
            "no graphs to run: set LGDIST_GRAPHS=name=module:attribute[,...] "
            "(the seed program: support-agent=lgdist.examples.support_agent:graph)"
        )
    if settings.embedded:
        print(
            f"lgdist worker: WARNING: no LGDIST_BROKER_URL; using the embedded broker in {settings.broker_folder()} "
            "(one machine only, slow chords; set LGDIST_BROKER_URL=redis://... for a real cluster)",
            file=sys.stderr,
        )
    print(f"lgdist worker: graphs {', '.join(registry.names())} loaded", file=sys.stderr)
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="lgdist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run a Celery worker (extra options go to celery, e.g. -c 4 -Q lgdist,io -n w1@%%h)")
    w.add_argument("celery_args", nargs=argparse.REMAINDER)
    f = sub.add_parser("flower", help="run Flower (basic auth from LGDIST_FLOWER_AUTH=user:pass)")
    f.add_argument("celery_args", nargs=argparse.REMAINDER)
    b = sub.add_parser("beat", help="run Celery beat (schedules the stalled-step sweeper)")
    b.add_argument("celery_args", nargs=argparse.REMAINDER)
    s = sub.add_parser("submit", help="start a run")
    s.add_argument("graph")
    s.add_argument("input", help="JSON input (a bare string is taken as text)")
    s.add_argument("--thread", dest="thread_id")
    s.add_argument("--wait", action="store_true", help="wait for the run to end; exit 1 if it ends in error")
    s.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits")
    s.add_argument("--enqueue", action="store_true", help="queue behind a busy thread instead of failing")
    r = sub.add_parser("resume", help="publish a lgdist.resume message")
    r.add_argument("thread_id")
    r.add_argument("--value", help="JSON resume value for interrupt()")
    r.add_argument("--update", help="JSON state update")
    r.add_argument("--as-node")
    st = sub.add_parser("state", help="show a thread's state")
    st.add_argument("graph")
    st.add_argument("thread_id")
    h = sub.add_parser("history", help="show a thread's checkpoints")
    h.add_argument("graph")
    h.add_argument("thread_id")
    h.add_argument("--json", action="store_true", help="one JSON document instead of one line per checkpoint")
    ru = sub.add_parser("runs", help="list runs")
    ru.add_argument("thread_id", nargs="?")
    c = sub.add_parser("cancel", help="cancel a run")
    c.add_argument("run_id")
    sw = sub.add_parser("sweep", help="reschedule stalled steps now")
    sw.add_argument("--older-than", type=float, default=None)
    ck = sub.add_parser("check", help="check a thread's history invariants")
    ck.add_argument("thread_id")
    sub.add_parser("config", help="print the effective settings (secrets masked)")
    sv = sub.add_parser("serve", help="serve the LangGraph Server API (needs the 'server' extra)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (non-loopback needs LGDIST_API_KEYS)")
    sv.add_argument("--port", type=int, default=2024)
    sv.add_argument("--log-level", default="info")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command not in ("worker", "flower", "beat"):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.celery_args = [*unknown, *args.celery_args]

    if args.command == "worker":
        problem = _check_worker_settings()
        if problem:
            print(f"lgdist worker: {problem}", file=sys.stderr)
            return 2
        # No -E: task events cost a broker publish per task state change,
        # and only Flower reads them; a running Flower switches them on.
        extra = [a for a in args.celery_args if a != "--"]
        if not any(a.startswith("-Q") or a.startswith("--queues") for a in extra):
            from lgdist.settings import get_settings

            extra += ["-Q", ",".join(get_settings().worker_queues())]
        return _exec_celery(["worker", *extra])
    if args.command == "flower":
        extra = [a for a in args.celery_args if a != "--"]
        auth = os.environ.get("LGDIST_FLOWER_AUTH")
        given = any(a.startswith(("--basic-auth", "--auth")) for a in extra) or os.environ.get("FLOWER_BASIC_AUTH")
        if not auth and not given:
            # Flower's UI can launch any task with any arguments: never open.
            print(
                "lgdist flower: refusing to serve Flower without authentication; "
                "set LGDIST_FLOWER_AUTH=user:pass (or pass --basic-auth / --auth)",
                file=sys.stderr,
            )
            return 2
        if auth and not given:
            # Through the environment, not argv, so the password is not in `ps`.
            os.environ["FLOWER_BASIC_AUTH"] = auth
        return _exec_celery(["flower", *extra])
    if args.command == "beat":
        return _exec_celery(["beat", *[a for a in args.celery_args if a != "--"]])
    if args.command == "serve":
        try:
            from lgdist.server.serve import serve
        except ImportError as exc:
            print(f"lgdist serve needs the server extra: pip install 'lgdist[server]' ({exc})", file=sys.stderr)
            return 2
        return serve(args.host, args.port, log_level=args.log_level)
    if args.command == "config":
        from lgdist.settings import get_settings

        _json(get_settings().safe_dict())
        return 0

    from lgdist.distributed.transient import TRANSIENT_ERRORS
    from lgdist.errors import LgdistError

    try:
        return _client_command(args)
    except TRANSIENT_ERRORS as exc:
        # A refused connection is a sentence, not a 129-line traceback.
        print(f"lgdist {args.command}: cannot reach the broker or the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    except LgdistError as exc:
        print(f"lgdist {args.command}: {exc}", file=sys.stderr)
        return 1


def _client_command(args: argparse.Namespace) -> int:
    from lgdist.client import Client

    client = Client()
    if args.command == "submit":
        run_id = client.submit(
            args.graph, _parse_value(args.input), args.thread_id,
            multitask_strategy="enqueue" if args.enqueue else None,
        )
        print(run_id)
        if args.wait:
            run = client.wait(run_id, timeout=args.timeout)
            _json(_run_for_people(run))
            return 0 if run["status"] in ("success", "interrupted") else 1
    elif args.command == "resume":
        from lgdist.errors import InvalidThreadIdError, ThreadNotFoundError

        try:
            run_id = client.resume(args.thread_id, _parse_value(args.value), update=_parse_value(args.update), as_node=args.as_node)
        except (ThreadNotFoundError, InvalidThreadIdError) as exc:
            print(f"lgdist resume: {exc}", file=sys.stderr)
            return 1
        print(run_id)
    elif args.command == "state":
        snap = client.get_state(args.graph, args.thread_id)
        _json({
            "values": snap.values, "next": snap.next, "interrupts": snap.interrupts, "metadata": snap.metadata,
            "created_at": snap.created_at, "checkpoint_id": snap.config["configurable"].get("checkpoint_id"),
        })  # fmt: skip
    elif args.command == "history":
        history = [
            {
                "checkpoint_id": snap.config["configurable"]["checkpoint_id"], "step": snap.metadata.get("step"),
                "source": snap.metadata.get("source"), "next": snap.next, "created_at": snap.created_at,
            }
            for snap in client.get_state_history(args.graph, args.thread_id)
        ]  # fmt: skip
        if args.json:
            _json(history)
        else:
            for item in history:
                print(f"{item['step']:>4}  {item['source'] or '-':<6}  {item['checkpoint_id']}  {item['created_at']}  next: {', '.join(item['next']) or '-'}")
    elif args.command == "runs":
        _json([_run_for_people(r) for r in client.runs(args.thread_id)])
    elif args.command == "cancel":
        print("cancelled" if client.cancel(args.run_id) else "not running")
    elif args.command == "sweep":
        from lgdist.distributed.coordinator import sweep

        _json(sweep(client.backend, args.older_than))
    elif args.command == "check":
        from lgdist.distributed.check import check_thread

        problems = check_thread(client.backend, args.thread_id)
        _json({"thread_id": args.thread_id, "ok": not problems, "problems": problems})
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
