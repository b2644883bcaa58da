"""Channel kinds, one module each."""

from lgdist.engine.channels.after_finish import LastValueAfterFinish, NamedBarrierValueAfterFinish
from lgdist.engine.channels.barrier import NamedBarrierValue
from lgdist.engine.channels.base import MISSING, BaseChannel
from lgdist.engine.channels.binop import BinaryOperatorAggregate
from lgdist.engine.channels.ephemeral import EphemeralValue
from lgdist.engine.channels.last_value import AnyValue, LastValue
from lgdist.engine.channels.topic import Topic

__all__ = [
    "MISSING",
    "BaseChannel",
    "LastValue",
    "AnyValue",
    "BinaryOperatorAggregate",
    "EphemeralValue",
    "Topic",
    "NamedBarrierValue",
    "LastValueAfterFinish",
    "NamedBarrierValueAfterFinish",
]
