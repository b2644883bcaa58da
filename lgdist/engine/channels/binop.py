"""``BinaryOperatorAggregate``: a state key with a reducer, e.g.
``Annotated[list, operator.add]`` or ``add_messages``."""

from __future__ import annotations

import collections.abc
from typing import Any, Callable, Sequence

from lgdist.engine.channels.base import MISSING, ValueChannel
from lgdist.errors import InvalidUpdateError
from lgdist.types import Overwrite


def _initial_value(typ: Any) -> Any:
    origin = getattr(typ, "__origin__", None) or typ
    if origin in (collections.abc.Sequence, collections.abc.MutableSequence):
        origin = list
    elif origin in (collections.abc.Set, collections.abc.MutableSet):
        origin = set
    elif origin in (collections.abc.Mapping, collections.abc.MutableMapping):
        origin = dict
    if isinstance(origin, type):
        try:
            return origin()
        except Exception:
            return MISSING
    return MISSING


class BinaryOperatorAggregate(ValueChannel):
    """Folds every write into the current value with ``operator``; starts from
    the type's empty value (``[]`` for lists) when it has one."""

    __slots__ = ("operator",)

    def __init__(self, typ: Any, operator: Callable[[Any, Any], Any], key: str = "") -> None:
        super().__init__(typ, key)
        self.operator = operator
        self.value = _initial_value(typ)

    def _reset(self) -> None:
        self.value = _initial_value(self.typ)

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        overwritten = False
        for value in values:
            if isinstance(value, Overwrite):
                if overwritten:
                    raise InvalidUpdateError(
                        f"At key '{self.key}': Can receive only one Overwrite value per step."
                    )
                overwritten = True
                self.value = value.value
            elif overwritten:
                continue
            elif self.value is MISSING:
                self.value = value
            else:
                self.value = self.operator(self.value, value)
        return True
