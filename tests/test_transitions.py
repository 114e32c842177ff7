"""The state decisions, tested without a cluster."""
import pickle

import pytest

from taskflow import FAIL, SKIP, triggers
from taskflow.engine.transitions import (
    RetryPolicy,
    after_exception,
    after_success,
    crashed,
    decide_trigger,
    flow_state,
    retry_delay,
)
from taskflow.exceptions import TaskflowError, TaskTimeoutError
from taskflow.states import State, StateType

OK, FAILED, SKIPPED = State(StateType.SUCCESS), State(StateType.FAILED), State(StateType.SKIPPED)


def test_default_trigger_runs_only_when_every_upstream_succeeded():
    assert decide_trigger(triggers.all_successful, {"a": OK, "b": State(StateType.CACHED)}) is None


def test_default_trigger_skips_when_an_upstream_was_skipped():
    s = decide_trigger(triggers.all_successful, {"a": OK, "b": SKIPPED})
    assert s.type is StateType.SKIPPED and "'b'" in s.message


def test_default_trigger_fails_when_an_upstream_failed_even_if_another_was_skipped():
    s = decide_trigger(triggers.all_successful, {"a": FAILED, "b": SKIPPED})
    assert s.type is StateType.TRIGGER_FAILED and "'a'" in s.message


@pytest.mark.parametrize(
    "trigger, upstream, runs",
    [
        (triggers.all_failed, [FAILED, FAILED], True),
        (triggers.all_failed, [FAILED, OK], False),
        (triggers.any_failed, [OK, FAILED], True),
        (triggers.any_failed, [OK, OK], False),
        (triggers.any_successful, [FAILED, OK], True),
        (triggers.any_successful, [FAILED, FAILED], False),
        (triggers.all_finished, [FAILED, SKIPPED, OK], True),
        (triggers.always_run, [FAILED], True),
    ],
)
def test_triggers_decide_from_upstream_states(trigger, upstream, runs):
    decided = decide_trigger(trigger, {f"t{i}": s for i, s in enumerate(upstream)})
    assert (decided is None) == runs


def test_an_unmet_trigger_without_failed_upstreams_ends_skipped():
    s = decide_trigger(triggers.any_failed, {"a": OK})
    assert s.type is StateType.SKIPPED and "any_failed" in s.message


def test_retry_delay_accepts_seconds_lists_and_callables():
    assert retry_delay(1.5, 1) == 1.5
    assert [retry_delay([1, 2], a) for a in (1, 2, 3)] == [1.0, 2.0, 2.0]
    assert retry_delay(lambda a: a * 10, 2) == 20.0
    assert retry_delay(-1, 1) == 0.0


def test_a_failed_attempt_is_retried_until_attempts_run_out():
    policy = RetryPolicy(retries=2, delay=[1, 4])
    s1, d1 = after_exception(ValueError("x"), attempt=1, policy=policy, started_at=0.0)
    s2, d2 = after_exception(ValueError("x"), attempt=2, policy=policy, started_at=0.0)
    s3, d3 = after_exception(ValueError("x"), attempt=3, policy=policy, started_at=0.0)
    assert (s1.type, d1) == (StateType.RETRYING, 1.0)
    assert (s2.type, d2) == (StateType.RETRYING, 4.0)
    assert (s3.type, d3) == (StateType.FAILED, None)
    assert s3.attempts == 3 and "attempt 3 of 3" in s3.message and "ValueError" in s3.message


def test_only_exceptions_named_in_retry_on_are_retried():
    policy = RetryPolicy(retries=3, retry_on=(KeyError,))
    s, d = after_exception(ValueError("x"), attempt=1, policy=policy, started_at=0.0)
    assert s.type is StateType.FAILED and d is None and "retry_on" in s.message
    s, d = after_exception(KeyError("k"), attempt=1, policy=policy, started_at=0.0)
    assert s.type is StateType.RETRYING


def test_skip_and_fail_signals_end_at_once_without_retries():
    policy = RetryPolicy(retries=5)
    s, d = after_exception(SKIP("later"), attempt=1, policy=policy, started_at=0.0)
    assert (s.type, s.message, d) == (StateType.SKIPPED, "later", None)
    s, d = after_exception(FAIL("stop"), attempt=1, policy=policy, started_at=0.0)
    assert (s.type, s.message, d) == (StateType.FAILED, "stop", None)


def test_a_timeout_is_retried_like_a_failure_and_ends_timed_out():
    policy = RetryPolicy(retries=1)
    exc = TaskTimeoutError("task 'x' ran longer than its timeout of 2 s")
    s, d = after_exception(exc, attempt=1, policy=policy, started_at=0.0)
    assert s.type is StateType.RETRYING
    s, d = after_exception(exc, attempt=2, policy=policy, started_at=0.0)
    assert s.type is StateType.TIMED_OUT and "timeout of 2 s" in s.message


def test_success_records_attempts_and_times():
    s = after_success(2, started_at=10.0, now=12.5)
    assert s.type is StateType.SUCCESS and s.attempts == 2 and s.duration == 2.5


def test_flow_succeeds_when_reference_tasks_succeeded_or_were_skipped():
    assert flow_state({"a": OK, "b": SKIPPED}).is_successful()


def test_flow_fails_naming_the_tasks_that_did_not_succeed():
    s = flow_state({"a": OK, "b": FAILED, "c": crashed("worker died")})
    assert s.type is StateType.FAILED and "'b'" in s.message and "'c'" in s.message
    s = flow_state({"c": crashed("worker died")})
    assert s.message == "task 'c' crashed: worker died"


def test_engine_errors_keep_their_context_through_pickling():
    e = TaskflowError("bad", task="load", address="tcp://x")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is TaskflowError and str(back) == "bad"
    assert (back.task, back.address) == ("load", "tcp://x")
    t = pickle.loads(pickle.dumps(TaskTimeoutError("slow", task="t", timeout=2)))
    assert isinstance(t, TimeoutError) and t.timeout == 2


def test_no_finished_state_may_change_and_every_run_starts_pending():
    from taskflow.engine.transitions import ALLOWED, check_transition
    from taskflow.exceptions import InvalidTransition
    from taskflow.states import FINISHED_TYPES

    assert not [pair for pair in ALLOWED if pair[0] in FINISHED_TYPES]
    check_transition(StateType.PENDING, StateType.RUNNING)
    check_transition(StateType.RETRYING, StateType.RUNNING)
    with pytest.raises(InvalidTransition) as info:
        check_transition(StateType.CACHED, StateType.FAILED, task="load")
    err = pickle.loads(pickle.dumps(info.value))
    assert (err.task, err.old, err.new) == ("load", "CACHED", "FAILED")
    assert "'load' cannot go from CACHED to FAILED" in str(err)


def test_a_mapped_parent_fails_when_any_child_failed_and_is_cancelled_when_the_rest_were_cancelled():
    from taskflow.engine.transitions import mapped_parent

    assert mapped_parent([]) == (StateType.SUCCESS, "0 mapped children")
    assert mapped_parent(["CACHED", "SKIPPED"])[0] is StateType.SUCCESS
    assert mapped_parent([StateType.SUCCESS, StateType.CANCELLED]) == (
        StateType.CANCELLED, "1 of 2 mapped children were cancelled")
    assert mapped_parent([StateType.FAILED, StateType.CANCELLED]) == (
        StateType.FAILED, "2 of 2 mapped children did not succeed")


def test_a_flow_run_whose_infrastructure_went_away_is_crashed_whatever_its_tasks_reached():
    reason = "the connection to the Dask scheduler at tcp://10.0.0.5:8786 was lost"
    for reference in ({"a": State(StateType.SUCCESS)}, {"a": State(StateType.FAILED)}, {}):
        state = flow_state(reference, started_at=1.0, now=2.0, crashed=reason)
        assert state.type is StateType.CRASHED and state.message == reason
        assert (state.started_at, state.ended_at) == (1.0, 2.0)
    assert flow_state({"a": State(StateType.SUCCESS)}).type is StateType.SUCCESS
