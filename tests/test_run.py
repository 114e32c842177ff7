"""Running flows: the same behaviour on LocalExecutor, threads and processes clusters."""
import logging
import time

import pytest

from taskflow import FlowRunError, StateType, flow, task, triggers
from tests import flows


def test_a_flow_run_succeeds_with_its_result_and_task_states(executor):
    run = flows.etl.run(n=100, executor=executor)
    assert run.state.is_successful()
    assert run.result() == 4950
    assert set(run.task_states) == {"extract", "total"}
    assert all(s.type is StateType.SUCCESS and s.attempts == 1 for s in run.task_states.values())
    assert len(run.run_id) == 32 and run.parameters == {"n": 100}


def test_calling_a_flow_runs_it_and_returns_its_result(executor):
    @flow(executor=executor)
    def small(n: int = 3):
        return flows.total(flows.extract(n))

    assert small(n=4) == 6
    assert small(5) == 10


def test_the_builder_flow_runs_like_a_decorated_one(executor):
    assert flows.builder_flow.run(executor=executor).result() == 3
    assert flows.builder_flow.run(n=5, executor=executor).result() == 10


def test_return_values_may_be_structures_of_handles_and_parameters(executor):
    run = flows.returns_structure.run(x=1, executor=executor)
    assert run.result() == {"a": 2, "b": [2, 5], "p": 1}


def test_handles_nested_in_list_arguments_are_resolved(executor):
    assert flows.nested_args.run(x=1, executor=executor).result() == 4


def test_diamond_and_chain_pass_values_along_edges(executor):
    assert flows.diamond.run(x=1, executor=executor).result() == 6
    assert flows.chain.run(x=0, executor=executor).result() == 3


def test_a_failing_task_fails_the_flow_and_downstream_is_trigger_failed(executor):
    run = flows.fails_in_middle.run(x=1, executor=executor)
    states = run.task_states
    assert states["inc"].type is StateType.SUCCESS
    assert states["boom"].type is StateType.FAILED
    assert isinstance(states["boom"].exception, ValueError)
    assert "boom 2" in states["boom"].message and "ValueError" in states["boom"].traceback
    assert states["inc-2"].type is StateType.TRIGGER_FAILED
    assert "'boom'" in states["inc-2"].message
    assert run.state.type is StateType.FAILED and "'inc-2'" in run.state.message
    with pytest.raises(FlowRunError, match="ended FAILED") as info:
        run.result()
    assert info.value.state is run.state


def test_a_task_that_admits_failures_receives_the_upstream_exception(executor):
    run = flows.with_cleanup.run(x=1, executor=executor)
    assert run.task_states["report"].type is StateType.SUCCESS
    # report received the ValueError from boom and the int from inc
    assert run.task_states["boom"].type is StateType.FAILED
    assert run.state.type is StateType.SUCCESS  # report is the only terminal task
    assert run.result() == ["ValueError", "int"]


def test_any_failed_handler_is_skipped_when_nothing_failed(executor):
    @flow
    def guarded(x: int = 1):
        return flows.on_failure(flows.inc(x))

    run = guarded.run(executor=executor)
    assert run.task_states["on_failure"].type is StateType.SKIPPED
    assert run.state.is_successful() and run.result() is None


def test_skip_signal_skips_the_task_and_its_default_trigger_dependents(executor):
    @flow
    def skipping(x: int = 1):
        return flows.inc(flows.skipper(x))

    run = skipping.run(executor=executor)
    assert run.task_states["skipper"].type is StateType.SKIPPED
    assert run.task_states["skipper"].message == "nothing to do today"
    assert run.task_states["inc"].type is StateType.SKIPPED
    assert run.state.is_successful()


def test_fail_signal_fails_at_once_without_retries(executor):
    @flow
    def failing():
        return flows.fail_now()

    run = failing.run(executor=executor)
    s = run.task_states["fail_now"]
    assert s.type is StateType.FAILED and s.attempts == 1 and s.message == "give up at once"


def test_retries_run_up_to_one_plus_retries_attempts(executor, tmp_path):
    @flow
    def retrying(path: str, fail_times: int):
        return flows.flaky(path, fail_times)

    path = str(tmp_path / "ok")
    run = retrying.run(path=path, fail_times=2, executor=executor)
    assert run.result() == 3 and run.task_states["flaky"].attempts == 3
    path = str(tmp_path / "never")
    run = retrying.run(path=path, fail_times=5, executor=executor)
    s = run.task_states["flaky"]
    assert s.type is StateType.FAILED and s.attempts == 3 and "attempt 3 of 3" in s.message
    assert flows.count(path) == 3


def test_retry_delay_is_honoured(executor, tmp_path):
    slow_retry = flows.flaky.with_options(retries=1, retry_delay=0.6)

    @flow
    def delayed(path: str):
        return slow_retry(path, 1)

    start = time.monotonic()
    run = delayed.run(path=str(tmp_path / "c"), executor=executor)
    assert run.result() == 2
    assert time.monotonic() - start >= 0.6


def test_a_timeout_ends_the_attempt_timed_out_with_the_limit_in_the_message(executor):
    @flow
    def slow():
        return flows.sleepy(3.0)

    start = time.monotonic()
    run = slow.run(executor=executor)
    s = run.task_states["sleepy"]
    assert s.type is StateType.TIMED_OUT and "timeout of 0.5 s" in s.message
    assert time.monotonic() - start < 2.5
    assert run.state.type is StateType.FAILED


def test_a_fast_task_with_a_timeout_succeeds(executor):
    @flow
    def quick():
        return flows.sleepy(0.01)

    assert quick.run(executor=executor).result() == 0.01


def test_wait_for_orders_tasks_without_passing_data(executor, tmp_path):
    @flow
    def ordered(path: str):
        first = flows.record(path, "first")
        second = flows.record(path, "second", wait_for=[first])
        return flows.record(path, "third", wait_for=[second])

    path = str(tmp_path / "order")
    run = ordered.run(path=path, executor=executor)
    assert run.result() == "third"
    with open(path) as f:
        assert f.read().split() == ["first", "second", "third"]


def test_wait_for_on_a_failed_task_trigger_fails_the_waiter(executor, tmp_path):
    @flow
    def ordered(path: str):
        b = flows.boom(1)
        return flows.record(path, "after", wait_for=[b])

    run = ordered.run(path=str(tmp_path / "x"), executor=executor)
    assert run.task_states["record"].type is StateType.TRIGGER_FAILED


def test_run_logger_records_carry_flow_run_and_task_names(executor, caplog):
    caplog.set_level(logging.INFO, logger="taskflow")
    run = flows.etl.run(n=10, executor=executor)
    records = [r for r in caplog.records if r.getMessage() == "summing 10 numbers"]
    assert len(records) == 1
    r = records[0]
    assert (r.flow_name, r.flow_run_id, r.task_run_name) == ("etl", run.run_id, "total")


def test_subflow_tasks_run_in_the_parent_run(executor):
    @flow
    def outer(x: int = 0):
        return flows.inc(flows.chain(x))

    run = outer.run(x=0, executor=executor)
    assert run.result() == 4
    assert set(run.task_states) == {"chain/inc", "chain/inc-2", "chain/inc-3", "inc"}


def test_an_empty_flow_succeeds_with_its_constant_return(executor):
    @flow
    def empty(x: int = 7):
        return x

    run = empty.run(executor=executor)
    assert run.state.is_successful() and run.result() == 7 and run.task_states == {}


def test_unknown_parameters_fail_before_anything_runs(executor):
    from taskflow import ParameterError

    with pytest.raises(ParameterError, match="no parameter 'm'"):
        flows.etl.run(m=3, executor=executor)


def test_a_task_returning_none_succeeds_and_passes_none(executor):
    @task
    def nothing():
        return None

    @flow
    def nones():
        return flows.report(nothing())

    assert nones.run(executor=executor).result() == ["NoneType"]


def test_trigger_options_override_per_call_with_with_options(executor):
    lenient = flows.inc.with_options(trigger=triggers.all_finished, name="lenient")

    @flow
    def f():
        return lenient(flows.boom(0))

    run = f.run(executor=executor)
    # inc received the exception object and failed on `exception + 1`
    assert run.task_states["lenient"].type is StateType.FAILED
    assert "TypeError" in run.task_states["lenient"].message
