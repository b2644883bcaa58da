"""What ``invoke``/``ainvoke`` return, folded from the stream they run."""

from __future__ import annotations

from typing import Any

from lgdist.constants import INTERRUPT


class InvokeResult:
    """The last values chunk plus any interrupts (``values`` mode), or every
    chunk (other modes). ``stream_modes`` is what to stream to get them."""

    def __init__(self, stream_mode: Any) -> None:
        self.values_mode = stream_mode == "values"
        self.stream_modes = ["updates", "values"] if self.values_mode else stream_mode
        self.chunks: list = []
        self.latest: Any = None
        self.interrupts: list = []

    def add(self, chunk: Any) -> None:
        if not self.values_mode:
            self.chunks.append(chunk)
            return
        mode, payload = chunk
        if mode == "values":
            self.latest = payload
        elif isinstance(payload, dict) and INTERRUPT in payload:
            self.interrupts.extend(payload[INTERRUPT])

    def value(self) -> Any:
        return _with_interrupts(self.latest, self.interrupts) if self.values_mode else self.chunks


def _with_interrupts(latest: Any, interrupts: list) -> Any:
    if interrupts and isinstance(latest, dict):
        return {**latest, INTERRUPT: interrupts}
    if interrupts and latest is None:
        return {INTERRUPT: interrupts}
    return latest
