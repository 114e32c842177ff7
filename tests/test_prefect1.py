"""Flows written as Prefect 1 users write them behave as they expect (or are refused, documented)."""
from __future__ import annotations

import pytest

from taskflow import FlowDefinitionError, StateType, case, flatten, flow, task
from taskflow.executors import LocalExecutor
from tests import prefect1_flows as p1
from tests.flows import count


def test_task_of_a_function_with_options_is_accepted():
    t = task(len, name="count", retries=2)
    assert (t.name, t.retries, t([1, 2])) == ("count", 2, 2)
    with pytest.raises(FlowDefinitionError, match="unknown option"):
        task(len, nmae="count")


def test_arithmetic_comparisons_and_indexing_on_handles_and_parameters_become_named_tasks(executor):
    names = [node.name for node in p1.arithmetic.graph.nodes]
    for op in ("add", "sub", "mul", "pow", "truediv", "floordiv", "mod", "getitem", "gt", "ge",
               "le", "and", "or", "twice"):
        assert op in names, names
    assert "getitem-2" in names and "gt-2" in names  # 3 < n is n > 3: a second gt
    run = p1.arithmetic.run(n=4, executor=executor)
    assert run.state.is_successful(), run.state
    assert run.result() == {
        "shifted": 14, "reversed": 6, "scaled": 48, "ratio": (0.5, 2, 1), "first": 0,
        "window": [1, 2], "path": "/data/in", "size": 5, "compared": (True, False, True, True),
        "logic": (True, False),
        "doubled": 8,
    }
    assert run.task_states["add"].type is StateType.SUCCESS


def test_if_on_a_comparison_points_to_case_and_equality_keeps_its_python_meaning():
    @flow
    def branching(n: int = 1):
        if n > 3:
            pass

    with pytest.raises(FlowDefinitionError, match=r"output of task 'gt' in `if`.*taskflow\.case"):
        _ = branching.graph

    @flow
    def comparing(n: int = 1):
        xs = p1.numbers(n)
        assert xs == xs and xs != n and len({xs, n}) == 2  # identity, hashable
        with case(xs[0] > 0, True):
            return p1.inner(xs)

    assert [node.name for node in comparing.graph.nodes] == ["numbers", "getitem", "gt", "case",
                                                              "inner"]


def test_a_plain_task_receives_a_flattened_list(executor):
    run = p1.flattened.run(n=3, executor=executor)
    assert run.result() == (33, 6)
    assert "flatten" in run.task_states


def test_flatten_inside_a_list_argument_is_refused():
    @flow
    def nested(n: int = 2):
        return p1.total([flatten(p1.pairs(n))])

    with pytest.raises(FlowDefinitionError, match="wrap a whole argument"):
        _ = nested.graph


def test_a_mapped_task_whose_children_were_all_skipped_is_skipped_and_so_is_its_downstream_map(
        executor):
    run = p1.all_skipped.run(n=3, executor=executor)
    states = run.task_states
    assert states["skip_all"].type is StateType.SKIPPED, states["skip_all"]
    assert states["skip_all"].message == "all 3 mapped children were skipped"
    assert states["after"].type is StateType.SKIPPED, states["after"]
    assert run.state.is_successful()  # skipped reference tasks do not fail the flow


def test_a_cache_scope_shares_entries_across_tasks_and_flows(store_url, counts):
    first = p1.first_user.run(x=3, counts=counts, executor=LocalExecutor())
    second = p1.second_user.run(x=3, counts=counts, executor=LocalExecutor())
    assert first.result() == second.result() == 9
    assert second.task_states["square_b"].type is StateType.CACHED
    assert count(f"{counts}/square") == 1
    with pytest.raises(FlowDefinitionError, match="cache_scope needs cache_key_fn"):
        task(len, cache_scope="x")
    with pytest.raises(FlowDefinitionError, match="cache_scope must be a name"):
        task(len, cache_key_fn=p1._inputs_only, cache_scope="a/b")


def test_mapped_arguments_of_different_lengths_stay_refused():
    plus = task(lambda a, b: a + b, name="plus")

    @flow
    def zipped():
        return plus.map([1, 2, 3], [1, 2])

    with pytest.raises(FlowDefinitionError, match="different lengths: argument 1 has 3, "
                                                  "argument 2 has 2. They are not zipped to the "
                                                  "shortest"):
        _ = zipped.graph
