"""Identifiers: time-ordered checkpoint ids and deterministic task ids.

Checkpoint ids sort by creation time as strings (UUIDv6 layout), so "latest
checkpoint" is an ORDER BY. Task ids are a hash of where the task sits in the
thread (checkpoint, namespace, step, node, path): a task that is re-planned
after a crash or delivered twice gets the same id, which is what makes its
saved writes idempotent.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

_lock = threading.Lock()
_last = 0


def new_checkpoint_id() -> str:
    """A UUIDv6-layout id, strictly increasing within this process."""
    global _last
    with _lock:
        # 100 ns intervals since the Gregorian epoch, like UUIDv1/v6.
        now = time.time_ns() // 100 + 0x01B21DD213814000
        if now <= _last:
            now = _last + 1
        _last = now
    time_high = (now >> 28) & 0xFFFFFFFF
    time_mid = (now >> 12) & 0xFFFF
    time_low = now & 0x0FFF
    rand = int.from_bytes(os.urandom(8), "big")
    clock_seq = (rand >> 48) & 0x3FFF | 0x8000
    node = rand & 0xFFFFFFFFFFFF
    return (
        f"{time_high:08x}-{time_mid:04x}-{0x6000 | time_low:04x}-"
        f"{clock_seq:04x}-{node:012x}"
    )


def task_id(*parts: object) -> str:
    """A stable id for a task from the parts that locate it."""
    # str(uuid.UUID(bytes=digest[:16], version=5)), without building a UUID.
    raw = bytearray(hashlib.sha1("\x00".join(map(str, parts)).encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def interrupt_id(checkpoint_ns: str, task: str, index: int) -> str:
    return hashlib.sha256(f"{checkpoint_ns}|{task}|{index}".encode()).hexdigest()[:32]
