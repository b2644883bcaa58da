"""Channel kinds: what one step's writes do to each, and the checkpoint
round trip. Pure values, no I/O."""

import operator

import pytest

from lgdist.engine.channels import (
    MISSING,
    BinaryOperatorAggregate,
    EphemeralValue,
    LastValue,
    NamedBarrierValue,
    Topic,
)
from lgdist.errors import EmptyChannelError, InvalidUpdateError
from lgdist.types import Overwrite


def test_last_value_keeps_the_single_write_of_a_step():
    chan = LastValue(str, key="k")
    assert not chan.is_available()
    assert chan.update(["a"]) is True
    assert chan.get() == "a"
    assert chan.update([]) is False  # a step without writes keeps the value
    assert chan.get() == "a"


def test_last_value_rejects_two_writes_in_one_step_naming_the_key():
    chan = LastValue(str, key="winner")
    with pytest.raises(InvalidUpdateError, match="At key 'winner': Can receive only one value per step"):
        chan.update(["a", "b"])


def test_empty_channel_raises_on_get_and_checkpoints_as_missing():
    chan = LastValue(int)
    with pytest.raises(EmptyChannelError):
        chan.get()
    assert chan.checkpoint() is MISSING
    assert not chan.from_checkpoint(MISSING).is_available()


def test_reducer_folds_writes_in_order_from_the_types_empty_value():
    chan = BinaryOperatorAggregate(list, operator.add, key="log")
    assert chan.get() == []
    chan.update([["a"], ["b"]])
    chan.update([["c"]])
    assert chan.get() == ["a", "b", "c"]


def test_reducer_overwrite_replaces_the_value_and_only_once_per_step():
    chan = BinaryOperatorAggregate(list, operator.add, key="log")
    chan.update([["a"]])
    chan.update([["b"], Overwrite(["x"]), ["ignored after overwrite"]])
    assert chan.get() == ["x"]
    with pytest.raises(InvalidUpdateError, match="only one Overwrite"):
        chan.update([Overwrite([1]), Overwrite([2])])


def test_ephemeral_value_clears_on_a_step_without_writes():
    chan = EphemeralValue(str)
    chan.update(["go"])
    assert chan.get() == "go"
    assert chan.update([]) is True
    assert not chan.is_available()
    assert chan.update([]) is False


def test_guarded_ephemeral_value_takes_one_write_per_step():
    with pytest.raises(InvalidUpdateError):
        EphemeralValue(str, guard=True).update(["a", "b"])
    unguarded = EphemeralValue(str, guard=False)
    unguarded.update(["a", "b"])
    assert unguarded.get() == "b"


def test_topic_collects_a_steps_writes_and_flattens_lists():
    chan = Topic()
    chan.update(["a", ["b", "c"]])
    assert chan.get() == ["a", "b", "c"]
    chan.update(["d"])  # a new step replaces the previous step's values
    assert chan.get() == ["d"]
    assert chan.update([]) is True
    assert not chan.is_available()


def test_named_barrier_is_available_once_every_source_wrote_and_resets_when_consumed():
    chan = NamedBarrierValue(str, names={"a", "b"}, key="join")
    chan.update(["a"])
    assert not chan.is_available()
    chan.update(["a"])  # the same source twice changes nothing
    assert not chan.is_available()
    chan.update(["b"])
    assert chan.is_available()
    assert chan.consume() is True
    assert not chan.is_available()
    assert chan.consume() is False


def test_named_barrier_rejects_an_unknown_source():
    with pytest.raises(InvalidUpdateError, match="not in"):
        NamedBarrierValue(str, names={"a"}, key="join").update(["z"])


@pytest.mark.parametrize(
    "chan, writes",
    [
        (LastValue(int), [[1]]),
        (BinaryOperatorAggregate(list, operator.add), [[[1]], [[2]]]),
        (EphemeralValue(str), [["x"]]),
        (Topic(), [["a", "b"]]),
        (NamedBarrierValue(str, names={"a", "b"}), [["a"]]),
    ],
)
def test_checkpoint_round_trip_restores_an_equal_independent_channel(chan, writes):
    for step in writes:
        chan.update(step)
    copy = chan.from_checkpoint(chan.checkpoint())
    assert copy.checkpoint() == chan.checkpoint()
    assert copy.is_available() == chan.is_available()
    assert copy is not chan
