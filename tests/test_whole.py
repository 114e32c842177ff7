"""A long list a map runs over is held whole on its worker (taskflow.executors.dask_whole).

Dask sends a plain list between workers element by element (about 35 us an element,
on the sending worker's event loop, where no task starts meanwhile); held as a
``Whole`` it travels as one pickle.  Every reader sees the list itself.
"""
from __future__ import annotations

import pickle

import pytest
from distributed.protocol import to_serialize
from distributed.protocol.core import dumps

from taskflow import StateType
from taskflow.engine.plan import Length, PlannedTask, build_plan
from taskflow.executors import dask_graph
from taskflow.executors.dask_whole import _WHOLE_FROM, Whole, hold, length_of, unwrap
from tests import map_flows as mf


def test_a_long_list_held_whole_leaves_its_worker_as_one_frame_not_one_per_element():
    numbers = list(range(20_000))
    as_dask_sends = len(dumps({"data": {"k": to_serialize(numbers)}}))
    held = len(dumps({"data": {"k": to_serialize(hold(numbers))}}))
    assert as_dask_sends > 20_000 and held < 10  # frames of the get_data message
    assert unwrap(pickle.loads(pickle.dumps(hold(numbers)))) == numbers
    assert length_of(hold(numbers)) == length_of(numbers)
    short = list(range(_WHOLE_FROM - 1))
    assert hold(short) is short and hold("x" * 5000) == "x" * 5000  # only long lists, tuples


def test_only_the_output_a_map_runs_over_is_held_whole():
    plan = build_plan(mf.over_a_long_list.graph, {"n": 5}, "r1")
    steps = plan.start().steps
    (length,) = [s for s in steps if type(s) is Length]
    graph = dask_graph.to_dask_graph(steps, {})
    held = {s.key for s in steps if type(s) is PlannedTask and graph[s.key].func.whole}
    assert held == {length.of}
    sent = pickle.loads(pickle.dumps(graph[length.of].func))
    assert sent.whole  # it travels with its task


@pytest.mark.timeout(120)
def test_a_map_over_a_long_list_gives_every_reader_the_list_itself(process_executor):
    n = 3 * _WHOLE_FROM
    run = mf.over_a_long_list.run(n=n, executor=process_executor)
    assert run.state.type is StateType.SUCCESS, run.state
    nums, doubled_total, nums_total, seen = run.result()
    assert type(nums) is list and nums == list(range(n))  # returned: the list, not a Whole
    assert doubled_total == 2 * nums_total == n * (n - 1)
    assert seen == ["list"] * 3  # in a group of values too
    assert not isinstance(nums, Whole)
