"""A run's task states and planned tasks stay compact per mapped child, and read the same."""
from __future__ import annotations

import tracemalloc

from taskflow.engine.steps import PlannedTask, RunInfo, SentChild, TaskRunSpec
from taskflow.engine.task_table import TaskTable
from taskflow.state_columns import NameSet, RunStates, TaskStates, child_of
from taskflow.states import State, StateType
from tests import map_flows as mf


def test_a_child_reads_back_the_state_it_was_given_with_its_times_and_attempts():
    states = RunStates()
    given = State(StateType.SUCCESS, attempts=2, started_at=10.5, ended_at=11.25)
    states.set("sq[7]", given)
    assert states.get("sq[7]") == given
    assert states.get("sq[7]").started_at == 10.5 and states.get("sq[7]").attempts == 2
    assert states.get("sq[6]") is None and states.get("sq[8]") is None


def test_a_failed_child_keeps_its_message_exception_and_traceback():
    states = RunStates()
    err = ValueError("two is bad")
    failed = State(StateType.FAILED, message="attempt 1 of 1 failed: two is bad", exception=err,
                   traceback="Traceback ...", attempts=1)
    states.set("sq[2]", failed)
    states.set("sq[3]", State(StateType.SUCCESS, attempts=1))
    got = states.get("sq[2]")
    assert got.message == failed.message and got.exception is err
    assert got.traceback == "Traceback ..."
    states.set("sq[2]", State(StateType.SUCCESS, attempts=2))  # a later plain state replaces it
    assert states.get("sq[2]").message == "" and states.get("sq[2]").exception is None


def test_a_range_filled_with_one_state_reads_that_state_for_each_child():
    states = RunStates()
    states.set("sq[0]", State(StateType.SUCCESS, attempts=1))
    cancelled = State(StateType.CANCELLED, message="cancelled: asked")
    states.fill("sq", 1, 5, cancelled)
    assert states.get("sq[0]").type is StateType.SUCCESS
    assert [states.get(f"sq[{i}]") for i in range(1, 5)] == [cancelled] * 4
    assert states.get("sq[5]") is None


def test_finished_task_states_read_as_a_mapping_in_plan_order():
    states = RunStates()
    states.set("numbers", State(StateType.SUCCESS, attempts=1))
    for i in range(3):
        states.set(f"sq[{i}]", State(StateType.SUCCESS if i != 1 else StateType.FAILED,
                                     message="boom" if i == 1 else "", attempts=1))
    states.set("total", State(StateType.TRIGGER_FAILED, message="upstream failed"))
    parent = State(StateType.FAILED, message="1 of 3 mapped children did not succeed")
    final = TaskStates(states, [("numbers", None), ("sq", 3), ("total", None)], {"sq": parent})
    assert list(final) == ["numbers", "sq", "sq[0]", "sq[1]", "sq[2]", "total"]
    assert len(final) == 6 and "sq[2]" in final and "sq[3]" not in final
    assert final["sq"] is parent and final["sq[1]"].message == "boom"
    as_dict = dict(final.items())
    assert as_dict == {name: final[name] for name in final}
    assert final == as_dict and list(final.values()) == list(as_dict.values())
    assert final.counts([StateType.SUCCESS, StateType.FAILED]) == {
        StateType.SUCCESS: 3, StateType.FAILED: 2}


def test_a_name_set_holds_children_and_other_names():
    ended = NameSet()
    for name in ("load", "sq[0]", "sq[2]", "sub/sq[1]", "sq[2]"):
        ended.add(name)
    assert len(ended) == 4
    assert "load" in ended and "sq[0]" in ended and "sq[2]" in ended and "sub/sq[1]" in ended
    assert "sq[1]" not in ended and "sq" not in ended and "sub/sq[0]" not in ended
    assert child_of("sq[01x]") is None and child_of("[3]") is None


def test_a_wide_maps_task_states_are_all_there_after_the_run(executor2):
    run = mf.map_runtime.run(n=300, executor=executor2)
    s = run.task_states
    assert run.result() == sum(2 * i for i in range(300))
    assert len(s) == 300 + 3  # numbers, double and its children, total
    assert all(s[f"double[{i}]"].type is StateType.SUCCESS for i in range(300))
    assert all(s[f"double[{i}]"].attempts == 1 for i in range(300))
    assert all(s[f"double[{i}]"].ended_at >= s[f"double[{i}]"].started_at for i in range(300))
    assert list(s)[:4] == ["numbers", "double", "double[0]", "double[1]"]
    assert s["double"].type is StateType.SUCCESS and "300 mapped children" in s["double"].message
    assert [r.name for r in run.task_records][:3] == ["numbers", "double", "double[0]"]


def test_a_failed_child_keeps_its_message_after_the_run(executor2):
    run = mf.map_with_failure.run(n=4, executor=executor2)
    s = run.task_states
    assert s["fragile[2]"].type is StateType.FAILED
    assert "two is bad" in s["fragile[2]"].message
    assert s["fragile[2]"].traceback and "ValueError" in s["fragile[2]"].traceback
    assert s["double[2]"].type is StateType.TRIGGER_FAILED and s["double[2]"].message


def _children(n: int) -> list[PlannedTask]:
    run = RunInfo("f", "r", "t", 1, "h", 20)
    up = ("numbers",)
    return [PlannedTask(TaskRunSpec(run, f"sq[{i}]", ("sq-abc", i), None, (), {}, up,
                                    map_index=i), ["numbers-abc"]) for i in range(n)]


def test_children_sent_read_back_as_sent_children_in_order():
    table = TaskTable()
    kids = _children(5)
    for k in kids:
        table.add(k)
    for k in kids[:3]:
        table.sent(k)
    got = list(table.values())
    assert [type(t) for t in got] == [SentChild] * 3 + [PlannedTask] * 2
    assert [t.key for t in got] == [k.key for k in kids] and len(table) == 5
    assert table[("sq-abc", 1)].name == "sq[1]" and table[("sq-abc", 1)].dep_keys() == ["numbers-abc"]
    assert ("sq-abc", 5) not in table and ("sq-abc", 4) in table


def test_the_client_keeps_a_few_bytes_per_mapped_child():
    n = 20_000
    kids = _children(n)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        table, states, ended = TaskTable(), RunStates(), NameSet()
        for k in kids:
            table.add(k)
        for k in kids:
            table.sent(k)
        kids.clear()  # the window's steps go: only the table keeps anything of them
        for i in range(n):
            name = f"sq[{i}]"
            states.set(name, State(StateType.SUCCESS, attempts=1, started_at=1.0 + i, ended_at=2.0 + i))
            ended.add(name)
        per_child = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert len(table) == n and states.get(f"sq[{n - 1}]").ended_at == 1.0 + n
    assert per_child < 100, f"{per_child:.0f} bytes per mapped child"  # a dict of States: ~350
