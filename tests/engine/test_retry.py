"""Retry rules: a worker's time limit is never retried, whatever the
policy says; the first matching policy applies; the delay grows and is
capped. (LangGraph parity of the rules is in tests/differential.)"""

import asyncio

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from celery.exceptions import SoftTimeLimitExceeded as CelerySoftTimeLimitExceeded

from lgdist.engine.execute import arun_task, make_fresh_reader, run_task
from lgdist.engine.spec import NodeSpec
from lgdist.engine.task_context import TaskContext
from lgdist.engine.tasks import Task
from lgdist.retry import as_policies, default_retry_on, is_time_limit, matching_policy, retry_delay
from lgdist.types import RetryPolicy

ANYTHING = RetryPolicy(retry_on=Exception, max_attempts=5, initial_interval=0.0, jitter=False)


class _Failing:
    def __init__(self, exc: BaseException, times: int) -> None:
        self.exc, self.times, self.calls = exc, times, 0

    def invoke(self, input, config):
        self.calls += 1
        if self.calls <= self.times:
            raise self.exc
        return "done"

    async def ainvoke(self, input, config):
        return self.invoke(input, config)


def _task(bound, policies) -> Task:
    node = NodeSpec(
        name="n",
        bound=bound,
        triggers=("t",),
        read_input=lambda chans: None,
        write_output=lambda output, read_fresh: [("out", output)],
        retry_policy=as_policies(policies),
    )
    return Task("task-1", "n", ("__pregel_pull", "n"), None, ("t",), node)


def _ctx() -> TaskContext:
    return TaskContext(task_id="task-1", node="n", checkpoint_ns="", config={})


@pytest.mark.parametrize("exc_class", [SoftTimeLimitExceeded, CelerySoftTimeLimitExceeded])
def test_soft_time_limit_is_never_retried_even_by_a_policy_that_retries_anything(exc_class):
    assert is_time_limit(exc_class())
    assert matching_policy((ANYTHING,), exc_class()) is None
    assert default_retry_on(Exception()) and not matching_policy((RetryPolicy(),), exc_class())
    bound = _Failing(exc_class(), times=1)
    with pytest.raises(exc_class):
        run_task(_task(bound, ANYTHING), {}, _ctx(), make_fresh_reader({}))
    assert bound.calls == 1


def test_a_subclass_of_the_time_limit_is_not_retried_either():
    class MyLimit(SoftTimeLimitExceeded):
        pass

    assert matching_policy((ANYTHING,), MyLimit()) is None


def test_a_user_class_of_the_same_name_elsewhere_is_retried():
    class SoftTimeLimitExceeded(Exception):  # noqa: N818 - same name, not Celery's
        pass

    assert matching_policy((ANYTHING,), SoftTimeLimitExceeded()) is ANYTHING


def test_sync_and_async_runs_retry_with_the_first_matching_policy():
    policies = [RetryPolicy(retry_on=KeyError, max_attempts=1), RetryPolicy(retry_on=OSError, max_attempts=3, initial_interval=0.0, jitter=False)]
    bound = _Failing(OSError("flaky"), times=2)
    task = _task(bound, policies)
    run_task(task, {}, _ctx(), make_fresh_reader({}))
    assert (bound.calls, task.writes) == (3, [("out", "done")])

    bound = _Failing(OSError("flaky"), times=2)
    task = _task(bound, policies)
    asyncio.run(arun_task(task, {}, _ctx(), make_fresh_reader({})))
    assert (bound.calls, task.writes) == (3, [("out", "done")])


def test_a_given_up_failure_names_its_task_in_a_note():
    task = _task(_Failing(OSError("flaky"), times=9), ANYTHING._replace(max_attempts=2))
    with pytest.raises(OSError) as info:
        run_task(task, {}, _ctx(), make_fresh_reader({}))
    assert "During task with name 'n' and id 'task-1'" in info.value.__notes__


def test_retry_delay_grows_by_the_backoff_factor_and_is_capped():
    policy = RetryPolicy(initial_interval=1.0, backoff_factor=3.0, max_interval=5.0, jitter=False)
    assert [retry_delay(policy, n) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]
    jittered = retry_delay(policy._replace(jitter=True), 1)
    assert 1.0 <= jittered <= 2.0


def test_retry_on_of_an_unsupported_kind_is_a_type_error():
    with pytest.raises(TypeError, match="retry_on must be"):
        matching_policy((RetryPolicy(retry_on=42),), ValueError())
