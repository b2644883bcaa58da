"""Public channel classes (same import path as LangGraph)."""

from lgdist.engine.channels import (
    AnyValue,
    BaseChannel,
    BinaryOperatorAggregate,
    EphemeralValue,
    LastValue,
    NamedBarrierValue,
    Topic,
)

__all__ = [
    "BaseChannel",
    "LastValue",
    "AnyValue",
    "BinaryOperatorAggregate",
    "EphemeralValue",
    "Topic",
    "NamedBarrierValue",
]
