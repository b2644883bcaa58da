"""The embedded broker: kombu's filesystem transport, made safe for several
processes sending to and consuming from one folder.

kombu's own transport loses messages under concurrency. Its sender creates
``<ms>_<uuid>.<queue>.msg`` with ``open("wb")`` and only then locks and
writes it; the lock is advisory and its reader never takes it. A worker
polling the folder in that window moves the still-empty file away, fails to
parse ``b""`` and drops it: the run waits forever for a task no worker will
ever see. Under CPU load the window is wide (a loaded 2-core machine lost
about one message in thirty in a two-consumer stress loop). Its reader also
moves claimed files with ``shutil.move`` to the system temp folder, which is
a copy and a delete, not an atomic claim, when that folder is on another
filesystem than the broker folder.

Here a message becomes visible only when complete: it is written under a
name no reader matches (``.<name>.tmp``) and renamed into place, which is
atomic in one folder. A reader claims a message by renaming it into
``claimed/`` beside the queue files (same filesystem: atomic, so exactly one
reader wins), then reads and deletes it.
"""

from __future__ import annotations

import os
import time
import uuid
from queue import Empty
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

CLAIMED_FOLDER = "claimed"


def message_suffix(queue: str) -> str:
    return f".{queue}.msg"


def queued_messages(folder: Path, queue: str) -> list[Path]:
    """The message files waiting in ``queue`` (written, not yet claimed)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(folder / n for n in names if not n.startswith(".") and n.partition(".")[2] == f"{queue}.msg")


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}{message_suffix(queue)}"
        final = os.path.join(self.data_folder_out, name)
        staging = os.path.join(self.data_folder_out, f".{name}.tmp")
        try:
            with open(staging, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.rename(staging, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: str) -> Any:
        folder = Path(self.data_folder_in)
        claimed = folder / CLAIMED_FOLDER
        for path in queued_messages(folder, queue):
            target = claimed / f"{path.name}.{os.getpid()}"
            try:
                os.rename(path, target)
            except FileNotFoundError:
                if not claimed.is_dir():
                    claimed.mkdir(exist_ok=True)
                    try:
                        os.rename(path, target)
                    except FileNotFoundError:
                        continue
                else:
                    continue  # another reader claimed it first
            try:
                payload = target.read_bytes()
                target.unlink()
            except OSError as exc:
                raise ChannelError(f"Cannot read file {str(target)!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel


def stall_report(folder: Path) -> str:
    """Where the embedded broker's messages are, for a run that made no
    progress: still queued (no worker takes that queue), being read by a
    worker, or none left (a worker took them: its log says what happened)."""
    try:
        names = sorted(n for n in os.listdir(folder) if not n.startswith(".") and n.endswith(".msg"))
    except FileNotFoundError:
        return f"the embedded broker folder {folder} does not exist"
    by_queue: dict[str, list[str]] = {}
    for name in names:
        by_queue.setdefault(name.partition(".")[2][: -len(".msg")], []).append(name)
    parts = []
    for queue, files in by_queue.items():
        try:
            age = f", written {max(0.0, time.time() - (folder / files[0]).stat().st_mtime):.0f}s ago"
        except OSError:
            age = ""
        parts.append(
            f"{len(files)} message(s) still queued for queue {queue!r} (oldest {folder / files[0]}{age}): "
            "no worker has taken them - is a worker running with this LGDIST_HOME and consuming that queue?"
        )
    claimed = folder / CLAIMED_FOLDER
    for name in sorted(os.listdir(claimed)) if claimed.is_dir() else []:
        parts.append(f"{claimed / name} is being read by worker process {name.rpartition('.')[2]}")
    if not parts:
        return (
            f"no message is waiting in the embedded broker {folder}: workers took every message sent; "
            "their logs say what became of the run's (a worker that logged 'Unrecoverable error' has stopped)"
        )
    return "; ".join(parts)
