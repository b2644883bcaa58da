"""The base class of every channel: a named slot that takes writes at the end
of a superstep and is read by the nodes of the next one."""

from __future__ import annotations

from typing import Any, Generic, Sequence, TypeVar

from lgdist.errors import EmptyChannelError

Value = TypeVar("Value")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# Every slot of a channel class, through its bases (computed once per class).
_SLOTS: dict[type, tuple[str, ...]] = {}


class BaseChannel(Generic[Value]):
    """A channel holds one value derived from the writes it received.

    Subclasses implement ``update`` (fold a step's writes in; return whether
    the value changed), ``get`` and the checkpoint round trip.
    """

    __slots__ = ("key", "typ")

    def __init__(self, typ: Any = Any, key: str = "") -> None:
        self.typ = typ
        self.key = key

    def fresh(self) -> "BaseChannel":
        """An empty channel of the same kind and configuration."""
        cls = type(self)
        new = object.__new__(cls)
        slots = _SLOTS.get(cls)
        if slots is None:
            slots = _SLOTS[cls] = tuple(
                slot for klass in cls.__mro__ for slot in getattr(klass, "__slots__", ())
            )
        for slot in slots:
            try:
                object.__setattr__(new, slot, getattr(self, slot))
            except AttributeError:
                pass
        new._reset()
        return new

    def _reset(self) -> None:
        raise NotImplementedError

    def copy(self) -> "BaseChannel":
        return self.from_checkpoint(self.checkpoint())

    def checkpoint(self) -> Any:
        """The value to store, or ``MISSING`` when the channel is empty."""
        try:
            return self.get()
        except EmptyChannelError:
            return MISSING

    def from_checkpoint(self, value: Any) -> "BaseChannel":
        new = self.fresh()
        if value is not MISSING:
            new._restore(value)
        return new

    def _restore(self, value: Any) -> None:
        raise NotImplementedError

    def get(self) -> Value:
        raise NotImplementedError

    def is_available(self) -> bool:
        try:
            self.get()
            return True
        except EmptyChannelError:
            return False

    def update(self, values: Sequence[Value]) -> bool:
        raise NotImplementedError

    def consume(self) -> bool:
        """Called when a task triggered by this channel ran; barrier channels
        reset here. Returns whether the value changed."""
        return False

    def finish(self) -> bool:
        return False


class ValueChannel(BaseChannel):
    """A channel whose whole state is one value, ``MISSING`` while empty;
    subclasses say how a step's writes replace or fold into it."""

    __slots__ = ("value",)

    def __init__(self, typ: Any = Any, key: str = "") -> None:
        super().__init__(typ, key)
        self.value = MISSING

    def _reset(self) -> None:
        self.value = MISSING

    def _restore(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        if self.value is MISSING:
            raise EmptyChannelError()
        return self.value

    def is_available(self) -> bool:
        return self.value is not MISSING

    def checkpoint(self) -> Any:
        return self.value
