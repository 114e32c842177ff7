"""What each task key carries to a worker: its own parts, and its window's facts once.

The facts a flow run's tasks share (the run, the Task objects) travel whole in a
few tasks only, and as a token in the others (taskflow.executors.dask_spec).  A
worker that has not seen them asks the scheduler.  These scenarios run against
real processes: a ``dask scheduler`` of its own (so the scheduler pickles each
task in a process of its own, as on any deployed cluster) and ``dask worker``
processes, one joining late or restarted, and a LocalCluster running two flows at
once.
"""
from __future__ import annotations

import os
import pickle
import signal
import threading

import dask
import pytest
from distributed import Client

from taskflow import StateType
from taskflow.engine.steps import RunInfo
from taskflow.executors import DaskExecutor, dask_graph
from taskflow.executors.dask_spec import RunFacts
from tests import sent_flows as sf
from tests.dask_processes import START_TIMEOUT, DaskProcesses
from tests.polling import wait_for


def _run_in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def _finished(thread: threading.Thread, out: list):
    thread.join(START_TIMEOUT * 2)
    assert not thread.is_alive(), "the flow run did not finish"
    return out[0]


def _seen_by(run, flow_name: str) -> list:
    assert run.state.type is StateType.SUCCESS, (run.state, run.task_states)
    results = run.result()
    assert {(r[1], r[2]) for r in results} == {(flow_name, run.run_id)}
    return results


def test_run_facts_pickle_whole_from_the_client_and_as_one_copy_where_unpickled():
    facts = RunFacts(RunInfo("f", "r1", "taskflow", 1, "h", 30), (sf.start,))
    copy = pickle.loads(pickle.dumps(facts))
    assert copy is not facts and not copy.origin
    assert (copy.token, copy.run, copy.tasks) == (facts.token, facts.run, (sf.start,))
    assert pickle.loads(pickle.dumps(facts)) is copy  # one copy per process and token


def test_a_window_of_alike_children_sends_one_function_for_all_of_them_but_its_carriers():
    from taskflow.engine.plan import Length, PlannedTask, build_plan

    plan = build_plan(sf.alike_children.graph, {"n": 40, "tag": "t"}, "r1")
    (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
    steps = plan.add_lengths({length.key: (40, 100)}).steps
    assert len(steps) == 40 and all(type(s) is PlannedTask and s.alike for s in steps)
    graph = dask_graph.to_dask_graph(steps, {})
    carriers = dask_graph._CARRIERS_AT_MOST
    assert len({id(t.func) for t in graph.values()}) == carriers + 1
    shared = [(k, t) for k, t in graph.items() if not t.func.carrier]
    assert len(shared) == 40 - carriers
    assert all(t.args[-1] == k[1] for k, t in shared)  # each passes its own index
    one = pickle.dumps(graph[steps[-1].key].func)
    assert b"own[" not in one  # no child's own name in the shared function


def test_in_a_wide_maps_first_window_every_task_that_can_start_at_once_carries_the_facts():
    from taskflow.engine.plan import Length, PlannedTask, build_plan

    plan = build_plan(sf.alike_counted.graph, {"n": 40, "tag": "t"}, "r1")
    (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
    steps = plan.add_lengths({length.key: (40, 100)}).steps
    graph = dask_graph.to_dask_graph(steps, {}, carry_all=True)
    children = [graph[s.key].func for s in steps if type(s) is PlannedTask and s.alike]
    (count,) = [graph[s.key].func for s in steps if type(s) is PlannedTask and s.name == "count"]
    # the scheduler may start any child first on a worker: none waits to ask for the facts
    assert len(children) == 40 and all(f.carrier for f in children)
    assert not count.carrier  # it waits on the children: a worker has the facts by then

    def to_a_worker(f):  # pickled again by the scheduler, which unpickled its own copy
        return pickle.dumps(pickle.loads(pickle.dumps(f)))

    assert all(b"alike_counted" in to_a_worker(f) for f in children)  # the run's facts whole
    assert b"alike_counted" not in to_a_worker(count)  # their token


def test_a_runs_later_windows_send_its_earlier_facts_again_unless_they_hold_a_new_task():
    from taskflow.engine.plan import Length, PlannedTask, build_plan

    plan = build_plan(sf.alike_counted.graph, {"n": 40, "tag": "t"}, "r1")
    (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
    steps = [s for s in plan.add_lengths({length.key: (40, 100)}).steps if type(s) is PlannedTask]
    children = [s for s in steps if s.alike]
    (count,) = [s for s in steps if s.name == "count"]
    shared: dask_graph.Shared = {}

    def facts_of(window):
        graph = dask_graph.to_dask_graph(window, {}, shared=shared)
        return {graph[s.key].func.facts for s in window}

    (first,) = facts_of(children[:10])
    assert facts_of(children[10:20]) == {first}  # the same object: the same token
    (new,) = facts_of(children[20:30] + [count]) - {first}  # a Task the first do not hold
    assert [len(first.tasks), len(new.tasks)] == [1, 1] and new.token != first.token
    assert facts_of(children[30:]) == {first}
    alone = dask_graph.to_dask_graph(children[:10], {})
    tokens = {alone[s.key].func.facts.token for s in children[:10]}
    assert len(tokens) == 1 and tokens != {first.token}  # without shared: facts of its own


@pytest.mark.timeout(120)
def test_alike_children_run_as_themselves_and_a_wide_fan_in_goes_with_its_order_given(
    process_executor, monkeypatch,
):
    run = sf.alike_children.run(n=40, tag="t", executor=process_executor)
    assert run.state.type is StateType.SUCCESS, run.state
    results = run.result()
    assert [r[:3] for r in results] == [(i, "t", f"own[{i}]") for i in range(40)]
    assert len({r[3] for r in results}) == 40 and all(r[3][1] == i for i, r in enumerate(results))
    assert set(run.task_states) == {"numbers", "own", *(f"own[{i}]" for i in range(40))}
    # a fan-in wider than this is sent with its order given (no dask.order on the scheduler)
    monkeypatch.setattr(dask_graph, "_ORDER_GIVEN_ABOVE", 10)
    assert dask_graph._takes_order(type(process_executor.client))
    run = sf.alike_counted.run(n=40, tag="t", executor=process_executor)
    assert run.state.type is StateType.SUCCESS and run.result() == 40, run.state


def test_a_window_is_sent_with_its_order_given_only_when_it_depends_on_a_wide_group(monkeypatch):
    from taskflow.engine.plan import Length, build_plan

    monkeypatch.setattr(dask_graph, "_ORDER_GIVEN_ABOVE", 10)
    for n, given in ((10, False), (11, True)):
        plan = build_plan(sf.alike_counted.graph, {"n": n, "tag": "t"}, "r1")
        (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
        steps = plan.add_lengths({length.key: (n, 100)}).steps
        order = dask_graph.given_order(steps, "hold")
        assert (order is not None) is given
        if given:
            assert list(order) == [s.key for s in steps] + ["hold"]
            assert list(order.values()) == list(range(len(steps) + 1))


def test_a_fan_in_over_a_maps_children_is_sent_as_their_key_base_and_count():
    from taskflow.engine.plan import Length, PlannedTask, build_plan
    from taskflow.executors.dask_groups import GroupTask, Siblings

    sizes = []
    for n in (40, 4000):
        plan = build_plan(sf.alike_counted.graph, {"n": n, "tag": "t"}, "r1")
        (length,) = [s for s in plan.start().steps if isinstance(s, Length)]
        steps = plan.add_lengths({length.key: (n, 100)}).steps
        (fan_in,) = [s for s in steps if type(s) is PlannedTask and s.name == "count"]
        task = dask_graph.to_dask_graph(steps, {})[fan_in.key]
        assert type(task) is GroupTask
        (group,) = [a for a in task.args if isinstance(a, Siblings)]
        assert (group.n, set(task.dependencies)) == (n, {(group.base, i) for i in range(n)})
        sizes.append(len(pickle.dumps(task)))
    assert sizes[1] - sizes[0] < 16  # not one reference per child: the same size at 100x


@pytest.mark.timeout(120)
def test_a_map_sent_in_windows_never_makes_its_worker_ask_for_the_facts(own_cluster):
    client = own_cluster(n_workers=1)
    ex = DaskExecutor(client=client)
    small = {"taskflow.dask.submit-window": 7, "taskflow.dask.first-window": 3}
    with dask.config.set(small):  # the children over several windows, the fan-in last
        run = sf.alike_counted.run(n=40, tag="t", executor=ex)
    assert run.state.type is StateType.SUCCESS and run.result() == 40, run.state
    # the first window's children all carry the facts, and the later windows send the
    # same facts again, under their token: the worker has them for every child
    assert client.run_on_scheduler(sf.fetches) == 0


@pytest.mark.timeout(120)
def test_a_fan_in_sent_after_its_children_gets_their_values_in_order(process_executor):
    small = {"taskflow.dask.submit-window": 7, "taskflow.dask.first-window": 3}
    with dask.config.set(small):  # children over several windows, the fan-in last
        run = sf.alike_children_listed.run(n=30, executor=process_executor)
    assert run.state.type is StateType.SUCCESS, run.state
    assert run.result() == [f"own[{i}]" for i in range(30)]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_worker_that_joins_after_the_run_started_asks_for_its_facts_and_runs_its_tasks(
    tmp_path,
):
    cluster = DaskProcesses(tmp_path)
    try:
        address = cluster.scheduler("--port", "0")
        cluster.worker(address, "--nthreads", "1")
        with Client(address, timeout=START_TIMEOUT) as client, \
                dask.config.set({"taskflow.executor.check-resources": False}), \
                DaskExecutor(client=client) as ex:
            cluster.wait_for_workers(client, 1)
            before = client.run_on_scheduler(sf.fetches)
            thread, out = _run_in_thread(lambda: sf.joins_late.run(executor=ex))
            # the LATE tasks are on the scheduler, waiting for a worker that can run them
            wait_for(lambda: client.run_on_scheduler(sf.unrunnable) >= 1, START_TIMEOUT,
                     "a task waiting for the LATE worker")
            cluster.worker(address, "--nthreads", "1", "--resources", "LATE=1")
            run = _finished(thread, out)
            late = {a for a, w in client.run(lambda dask_worker: dask_worker.state.total_resources).items()
                    if w.get("LATE")}
            results = _seen_by(run, "joins_late")
            assert sorted(r[0] for r in results) == [0, 1, 2, 3]
            assert {r[3] for r in results} == late
            # none of those tasks could carry the facts (each waits on another task)
            assert client.run_on_scheduler(sf.fetches) > before
    finally:
        cluster.stop()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_worker_restarted_in_the_middle_of_a_run_asks_for_the_facts_again(
    tmp_path, monkeypatch,
):
    monkeypatch.setattr(dask_graph, "_CARRIERS_AT_MOST", 0)  # every task sends the token
    cluster = DaskProcesses(tmp_path)
    path = str(tmp_path / "release")
    try:
        address = cluster.scheduler("--port", "0")
        cluster.worker(address, "--nthreads", "1")  # under a nanny, which restarts it
        with Client(address, timeout=START_TIMEOUT) as client, DaskExecutor(client=client) as ex:
            cluster.wait_for_workers(client, 1)
            thread, out = _run_in_thread(lambda: sf.gated.run(path=path, executor=ex))
            wait_for(lambda: os.path.exists(path + ".running"), START_TIMEOUT, "the gate to run")
            (first_pid,) = client.run(os.getpid).values()
            asked = client.run_on_scheduler(sf.fetches)
            assert asked >= 1
            os.remove(path + ".running")
            os.kill(first_pid, signal.SIGKILL)
            wait_for(lambda: os.path.exists(path + ".running"), START_TIMEOUT,
                     "the gate to run again on the restarted worker")
            assert set(client.run(os.getpid).values()) != {first_pid}
            open(path, "w").close()
            results = _seen_by(_finished(thread, out), "gated")
            assert sorted(r[0] for r in results) == list(range(6))
            assert client.run_on_scheduler(sf.fetches) > asked
    finally:
        cluster.stop()


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("carriers", [dask_graph._CARRIERS_AT_MOST, 0])
def test_two_runs_of_different_flows_at_once_on_the_same_workers_keep_their_own_facts(
    own_cluster, tmp_path, monkeypatch, carriers,
):
    monkeypatch.setattr(dask_graph, "_CARRIERS_AT_MOST", carriers)
    client = own_cluster(n_workers=2)
    ex = DaskExecutor(client=client)
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    first = _run_in_thread(lambda: sf.gated.run(path=one, executor=ex))
    second = _run_in_thread(lambda: sf.gated_too.run(path=two, executor=ex))
    # both gates hold a worker each: the runs' other tasks interleave once they open
    wait_for(lambda: os.path.exists(one + ".running") and os.path.exists(two + ".running"),
             START_TIMEOUT, "both gates to run")
    open(one, "w").close()
    open(two, "w").close()
    a = _seen_by(_finished(*first), "gated")
    b = _seen_by(_finished(*second), "gated_too")
    assert sorted(r[0] for r in a) == list(range(6))
    assert sorted(r[0] for r in b) == [i * 10 for i in range(6)]
    assert len({r[3] for r in a + b}) == 2  # both workers ran tasks of the runs
