"""One rule says what a task's saved writes mean."""

from lgdist.constants import ERROR, INTERRUPT, NO_WRITES, RESUME
from lgdist.engine.outcomes import Outcome, completed_tasks, task_outcome, task_outcomes
from lgdist.types import Interrupt


def test_a_state_write_or_the_no_writes_marker_means_completed():
    assert task_outcome([("x", 1)]).kind is Outcome.COMPLETED
    marker = task_outcome([(NO_WRITES, None)])
    assert marker.completed and marker.state_writes == []


def test_records_alone_do_not_complete_a_task():
    i = Interrupt(value="ask", id="i1")
    interrupted = task_outcome([(RESUME, ["a"]), (INTERRUPT, [i])])
    assert interrupted.kind is Outcome.INTERRUPTED and interrupted.interrupts == [i]
    assert interrupted.writes == [(INTERRUPT, [i])]
    failed = task_outcome([(ERROR, "ValueError('x')")])
    assert failed.kind is Outcome.FAILED and failed.error == "ValueError('x')"
    assert task_outcome([(RESUME, ["a"])]).kind is Outcome.PENDING
    assert task_outcome([]).kind is Outcome.PENDING


def test_output_after_an_interrupt_wins_and_keeps_the_interrupt_for_snapshots():
    i = Interrupt(value="ask", id="i1")
    outcome = task_outcome([(INTERRUPT, [i]), ("x", 2)])
    assert outcome.completed and outcome.writes == [("x", 2)] and outcome.interrupts == [i]


def test_outcomes_group_rows_per_task():
    rows = [("a", "x", 1), ("b", ERROR, "boom"), ("c", RESUME, [1])]
    outcomes = task_outcomes(rows)
    assert {t: o.kind for t, o in outcomes.items()} == {
        "a": Outcome.COMPLETED, "b": Outcome.FAILED, "c": Outcome.PENDING,
    }
    assert completed_tasks(rows) == {"a"}
