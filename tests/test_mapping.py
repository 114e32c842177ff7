"""Mapping, conditionals and subflows, on LocalExecutor and a processes LocalCluster."""
import pytest

from taskflow import FlowDefinitionError, StateType, flow
from tests import map_flows as mf


def test_map_over_a_run_time_list_runs_one_child_per_element(executor2):
    run = mf.map_runtime.run(n=4, executor=executor2)
    assert run.result() == 12
    assert [run.task_states[f"double[{i}]"].type for i in range(4)] == [StateType.SUCCESS] * 4
    assert run.task_states["double"].type is StateType.SUCCESS
    assert "4 mapped children" in run.task_states["double"].message


def test_a_chain_of_maps_links_children_element_by_element(executor2):
    assert mf.map_chain.run(n=4, executor=executor2).result() == [100, 102, 104, 106]


def test_map_over_a_constant_with_an_unmapped_argument(executor2):
    assert mf.map_constant.run(executor=executor2).result() == [10, 20, 30]


def test_several_mapped_arguments_are_zipped(executor2):
    assert mf.map_zip.run(executor=executor2).result() == [10, 21, 32]


def test_map_over_a_parameter(executor2):
    assert mf.map_param.run(xs=[5, 6], executor=executor2).result() == [10, 12]


def test_flatten_maps_over_the_concatenation_of_a_list_of_lists(executor2):
    # nested(4) == [[], [0], [0, 1], [0, 1, 2]]
    assert mf.map_flatten.run(executor=executor2).result() == [0, 0, 2, 0, 2, 4]


def test_flatten_over_mapped_children(executor2):
    # numbers.map([1, 2, 3]) gives [[0], [0, 1], [0, 1, 2]]
    run = mf.map_flatten_children.run(executor=executor2)
    assert run.result() == [0, 0, 2, 0, 2, 4]
    assert len([n for n in run.task_states if n.startswith("double[")]) == 6


def test_an_empty_map_produces_no_children_and_an_empty_list(executor2):
    run = mf.map_chain.run(n=0, executor=executor2)
    assert run.result() == []
    assert not any(n.startswith("double[") for n in run.task_states)
    assert run.task_states["double"].is_successful()


def test_a_failed_child_does_not_stop_its_siblings(executor2):
    run = mf.map_with_failure.run(n=4, executor=executor2)
    s = run.task_states
    assert s["fragile[2]"].type is StateType.FAILED
    assert s["double[2]"].type is StateType.TRIGGER_FAILED
    assert [s[f"double[{i}]"].type for i in (0, 1, 3)] == [StateType.SUCCESS] * 3
    assert s["collect"].type is StateType.TRIGGER_FAILED
    assert s["fragile"].type is StateType.FAILED and "1 of 4" in s["fragile"].message


def test_mapped_arguments_of_different_run_time_lengths_fail_the_mapped_task(executor2):
    run = mf.map_mismatch.run(n=3, executor=executor2)
    s = run.task_states["add"]
    assert s.type is StateType.FAILED
    assert "different lengths" in s.message and "3" in s.message and "4" in s.message
    assert run.task_states["collect"].type is StateType.TRIGGER_FAILED
    assert run.state.type is StateType.FAILED


def test_mapping_over_something_without_a_length_fails_clearly(executor2):
    run = mf.map_not_a_list.run(executor=executor2)
    s = run.task_states["double"]
    assert s.type is StateType.FAILED and "not_a_list" in s.message and "int" in s.message


def test_a_flow_may_return_a_mapped_handle_as_a_list(executor2):
    assert mf.map_returned.run(n=3, executor=executor2).result() == [0, 2, 4]


def test_mapped_arguments_of_different_known_lengths_fail_at_trace_time():
    @flow
    def bad():
        return mf.add.map([1, 2], [1, 2, 3])

    with pytest.raises(FlowDefinitionError, match="argument 1 has 2, argument 2 has 3"):
        _ = bad.graph


def test_map_needs_something_to_map_over():
    @flow
    def bad():
        return mf.double.map(3)

    with pytest.raises(FlowDefinitionError, match="needs at least one argument to map over"):
        _ = bad.graph


def test_map_outside_a_flow_runs_eagerly():
    assert mf.add.map([1, 2], [10, 20]) == [11, 22]


def test_case_runs_only_the_branch_whose_condition_holds(executor2):
    small = mf.branching.run(n=3, executor=executor2)
    assert small.result() == "small:3"
    assert small.task_states["label"].type is StateType.SKIPPED
    assert small.task_states["label-2"].type is StateType.SUCCESS
    big = mf.branching.run(n=10, executor=executor2)
    assert big.result() == "big:10"
    assert big.task_states["label-2"].type is StateType.SKIPPED
    assert big.state.is_successful()


def test_subflows_embed_their_tasks_with_prefixed_names(executor2):
    run = mf.outer.run(n=3, executor=executor2)
    assert run.result() == (0 + 2 + 4) + (0 + 2 + 4 + 6)
    assert "inner/double[0]" in run.task_states and "inner-2/double[3]" in run.task_states


@pytest.mark.parametrize("flow_, params, expected", [
    (mf.map_chain, {"n": 3}, [100, 102, 104]),
    (mf.map_flatten, {"n": 4}, [0, 0, 2, 0, 2, 4]),
    (mf.map_flatten_children, {}, [0, 0, 2, 0, 2, 4]),
])
def test_elements_of_large_sources_are_taken_out_by_tasks_next_to_the_data(
    executor2, flow_, params, expected
):
    import dask

    # every source counts as large: each element goes through its own item step
    with dask.config.set({"taskflow.map.split-above": 0}):
        run = flow_.run(executor=executor2, **params)
    assert run.result() == expected


def test_the_plan_takes_elements_out_next_to_the_data_only_for_large_sources():
    import dask

    from taskflow.engine.plan import Item, Length, build_plan

    def items_for(limit):
        with dask.config.set({"taskflow.map.split-above": limit}):
            plan = build_plan(mf.map_runtime.graph, {"n": 3}, "r1")
            (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
            batch = plan.add_lengths({length.key: (3, 1000)})
        return [s for s in batch.steps if isinstance(s, Item)]

    assert items_for(10_000) == []
    assert [s.index for s in items_for(10)] == [0, 1, 2]
