"""The plan (engine/plan.py), without a cluster: what it emits, in which order, and
what set-up decided it persists."""
from __future__ import annotations

import uuid

from taskflow.engine.plan import Length, build_plan
from taskflow.engine.setup import decide_persistence
from taskflow.results.policy import PersistSettings
from taskflow.results.store import ResultStore
from tests.plan_flows import chain, mapped, mapped_kept, mapped_over_constants
from tests.plan_flows import planned_tasks as _tasks


def test_the_plan_of_a_chain_lists_each_task_run_after_its_upstream():
    plan = build_plan(chain.graph, {"x": 1}, "r1")
    tasks = _tasks(plan.start())
    assert [t.name for t in tasks] == ["inc", "inc-2"]
    assert tasks[1].dep_keys() == [tasks[0].key]
    assert plan.done


def test_a_map_over_a_task_output_waits_for_its_length_then_plans_one_run_per_element():
    plan = build_plan(mapped.graph, {"n": 3}, "r1")
    first = plan.start()
    (length,) = [s for s in first.steps if isinstance(s, Length)]
    assert [t.name for t in _tasks(first)] == ["numbers"] and not plan.done
    children = _tasks(plan.add_lengths({length.key: (3, 100)}))
    assert [t.name for t in children] == ["inc[0]", "inc[1]", "inc[2]"]
    assert plan.done


def test_the_plan_takes_what_a_node_persists_from_set_up_and_only_names_each_child_s_path():
    store = ResultStore(f"memory://plans-{uuid.uuid4().hex}")
    results = decide_persistence(mapped_kept.graph, PersistSettings(store=store))
    assert results.nodes is not None
    assert "numbers" not in results.nodes and results.nodes["kept"].checkpoint  # none: not kept
    plan = build_plan(mapped_kept.graph, {"n": 2}, "r1", results)
    first = plan.start()
    (length,) = [s for s in first.steps if isinstance(s, Length)]
    assert [t.spec.persist for t in _tasks(first)] == [None]
    children = _tasks(plan.add_lengths({length.key: (2, 100)}))
    specs = [t.spec.persist for t in children]
    assert [s.write for s in specs] == ["mapped_kept/r1/kept/0.pkl", "mapped_kept/r1/kept/1.pkl"]
    assert all(s.store is store for s in specs)


def test_a_plan_whose_set_up_decided_a_node_stores_nothing_plans_it_storing_nothing():
    store = ResultStore(f"memory://plans-{uuid.uuid4().hex}")
    results = decide_persistence(mapped_kept.graph, PersistSettings(store=store))
    nothing = PersistSettings(store=store, nodes={name: None for name in results.nodes or {}})
    plan = build_plan(mapped_kept.graph, {"n": 1}, "r1", nothing)
    (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
    (child,) = _tasks(plan.add_lengths({length.key: (1, 100)}))
    assert child.spec.persist is None


def test_argument_slots_and_picks_pickle_small_and_come_back_equal():
    import pickle

    from taskflow.engine.steps import Pick, Slot

    for obj in (Slot(3), Pick(1, 7), Pick(0, (2, 5))):
        data = pickle.dumps(obj, protocol=5)
        assert pickle.loads(data) == obj
        # a bare constructor call: not the dataclass's state dict of field names
        assert b"index" not in data and b"slot" not in data


def test_the_children_of_a_map_over_one_value_share_their_parts_and_each_picks_its_element():
    plan = build_plan(mapped.graph, {"n": 3}, "r1")
    (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
    children = _tasks(plan.add_lengths({length.key: (3, 100)}))
    first = children[0]
    assert [c.alike for c in children] == [True] * 3
    assert all(c.spec.args is first.spec.args and c.deps is first.deps
               and c.spec.upstream is first.spec.upstream for c in children)
    assert [(c.name, c.key[1], c.spec.map_index) for c in children] == [
        ("inc[0]", 0, 0), ("inc[1]", 1, 1), ("inc[2]", 2, 2)]
    assert [c.spec.build_arguments([[10, 20, 30]]) for c in children] == [
        ((10,), {}), ((20,), {}), ((30,), {})]


def test_children_with_elements_of_their_own_or_paths_of_their_own_are_not_alike():
    plan = build_plan(mapped_over_constants.graph, {}, "r1")
    children = _tasks(plan.start())
    assert [c.spec.args for c in children] == [(5,), (6,), (7,)]
    assert not any(c.alike for c in children)
    store = ResultStore(f"memory://plans-{uuid.uuid4().hex}")
    kept = build_plan(mapped_kept.graph, {"n": 2}, "r1",
                      decide_persistence(mapped_kept.graph, PersistSettings(store=store)))
    (length,) = [s for s in kept.start().steps if isinstance(s, Length)]
    assert not any(c.alike for c in _tasks(kept.add_lengths({length.key: (2, 100)})))


def test_a_pick_of_the_run_s_own_element_pickles_without_its_index():
    import pickle

    from taskflow.engine.steps import AT_MAP_INDEX, Pick

    mine = Pick(2)
    assert mine.index is AT_MAP_INDEX
    data = pickle.dumps(mine, protocol=5)
    assert pickle.loads(data) == mine and pickle.loads(data).index is AT_MAP_INDEX
    assert len(data) < len(pickle.dumps(Pick(2, 7), protocol=5)) + 4
